"""Splitting one queued payment across several invoices: may this split be made, and what stays in the queue.

What is not allocated stays on the payment, waiting in the queue for a person: it never becomes a patient's
credit (the payer may be a family paying for two people, or a payment half of which is not a patient's).

>>> split_refusal([("F1", 400), ("F2", 300)], remaining_cents=1000, dues={"F1": 1000, "F2": 4500}) is None
True
>>> print(split_refusal([("F1", 800), ("F2", 300)], remaining_cents=1000, dues={"F1": 1000, "F2": 4500}))
la répartition (11,00 €) dépasse ce qui reste sur le paiement (10,00 €)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recouvrement.money import format_eur


def split_refusal(parts: Sequence[tuple[str, int]], *, remaining_cents: int, dues: Mapping[str, int]) -> str | None:
    """Why these (invoice, cents) parts may not be allocated from a payment with `remaining_cents` left, the
    invoices' shares owing `dues` (French, one line), or None."""
    if not parts:
        return "indiquez au moins une facture et son montant"
    seen: set[str] = set()
    for number, cents in parts:
        if number in seen:
            return f"la facture {number} figure deux fois"
        seen.add(number)
        if number not in dues:
            return f"facture inconnue {number!r}"
        if cents <= 0:
            return f"le montant pour la facture {number} doit être positif"
        if cents > dues[number]:
            return f"impossible d'affecter {format_eur(cents)} à la facture {number} : il n'y reste que {format_eur(dues[number])} dus"
    total = sum(cents for _, cents in parts)
    if total > remaining_cents:
        return f"la répartition ({format_eur(total)}) dépasse ce qui reste sur le paiement ({format_eur(remaining_cents)})"
    return None
