"""The French words a clinic person reads for the matching engine's own names: the rule that matched a payment
and the kind of a payment left in the queue. Unknown names are shown as they are (a new rule reads in English
until it is named here, never hidden).

>>> rule_label("name_amount"), queue_label("unmatched"), rule_label("new_rule")
('nom et montant', 'sans correspondance', 'new_rule')
"""

from __future__ import annotations

RULE_LABELS = {
    "explicit": "facture indiquée",
    "rf": "référence RF de la facture",
    "rf_letter": "référence RF du courrier",
    "text": "numéro de facture dans le libellé",
    "name_amount": "nom et montant",
    "clawback": "reprise de l'assureur",
    "agency": "encaissement de l'agence",
    "manual": "à la main",
}

QUEUE_LABELS = {
    "unmatched": "sans correspondance",
    "ambiguous": "ambigu",
    "held": "en attente (démêlé à la main)",
    "credit": "avoir",
    "dismissed": "écarté",
}


def rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, rule)


def queue_label(kind: str) -> str:
    return QUEUE_LABELS.get(kind, kind)
