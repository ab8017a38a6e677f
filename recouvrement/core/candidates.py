"""Candidate invoices for a payment of the exceptions queue, ranked, each with why (pure).

Three clues, the ones an accountant looks for by hand: the payer's name is like a patient's or a
guarantor's (accents, order and initials aside, a typo tolerated), the amount is exactly one open share,
and a fragment of the reference is in an invoice number. A suggestion only: the accountant decides.

>>> shares = [OpenShare("F-2026-0042", "P1", "patient", 1625, ("ANDRE MARTIN",))]
>>> [(c.invoice_number, c.reasons) for c in rank_candidates("ANDRE M", "VIR 0042", "patient", 1625, shares)]
[('F-2026-0042', ('nom proche de ANDRE MARTIN', 'montant exact de la part patient ouverte', 'référence : « 0042 »'))]
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable

from recouvrement.core.names import TITLES, normalise_name

SHARE_OF_PAYER = {"amo": "amo", "amc": "amc", "patient": "patient", "agency": "patient"}
SHARE_LABELS = {"amo": "part AMO", "amc": "part mutuelle", "patient": "part patient"}
MIN_FRAGMENT = 4             # digits/letters of an invoice number a reference must carry to count
NAME_SIMILARITY = 0.8
WEIGHTS = {"name": 3, "amount": 2, "reference": 4}


@dataclass(frozen=True)
class OpenShare:
    invoice_number: str
    patient_id: str
    payer_type: str                   # the share: amo | amc | patient
    due_cents: int
    names: tuple[str, ...]            # the patient's and the guarantor's "FIRST LAST", normalised


@dataclass(frozen=True)
class Candidate:
    invoice_number: str
    patient_id: str
    due_cents: int
    score: int
    reasons: tuple[str, ...]


def _words(text: str) -> list[str]:
    return [w for w in normalise_name(text).split() if w not in TITLES]


def name_likeness(payer_name: str, person: str) -> float:
    """How much a payer's name looks like a person's: each of the payer's words against the person's best word
    (an initial matches a word it begins), averaged; order ignored."""
    payer, words = _words(payer_name), _words(person)
    if not payer or not words:
        return 0.0
    scores = []
    for token in payer:
        if len(token) == 1:
            scores.append(1.0 if any(w.startswith(token) for w in words) else 0.0)
        else:
            scores.append(max(difflib.SequenceMatcher(None, token, w).ratio() for w in words))
    if all(len(t) == 1 for t in payer):
        return 0.0
    return sum(scores) / len(scores)


def reference_fragment(reference: str, invoice_number: str) -> str | None:
    """The longest ending of the invoice number (its distinctive part: at least MIN_FRAGMENT letters and
    digits, with a digit other than 0) found in the reference, or None. "FACT 0042" names F-2026-0042."""
    compact = re.sub(r"[^0-9A-Za-z]", "", invoice_number).upper()
    ref = re.sub(r"[^0-9A-Z]", "", (reference or "").upper())
    for start in range(0, len(compact) - MIN_FRAGMENT + 1):
        piece = compact[start:]
        if any(c in "123456789" for c in piece) and piece in ref:
            return piece
    return None


def rank_candidates(payer_name: str, reference: str, payer_type: str, remaining_cents: int,
                    shares: Iterable[OpenShare], limit: int = 5) -> list[Candidate]:
    """The open shares this payment could settle (the payer's own share kind), best first, each with why."""
    share_kind = SHARE_OF_PAYER.get(payer_type, "patient")
    found = []
    for share in shares:
        if share.payer_type != share_kind or share.due_cents <= 0:
            continue
        reasons, score = [], 0
        if share_kind == "patient" and payer_name:
            likeness, person = max(((name_likeness(payer_name, n), n) for n in share.names), default=(0.0, ""))
            if likeness >= NAME_SIMILARITY:
                reasons.append(f"nom proche de {person}")
                score += WEIGHTS["name"]
        if share.due_cents == remaining_cents:
            reasons.append(f"montant exact de la {SHARE_LABELS[share_kind]} ouverte")
            score += WEIGHTS["amount"]
        fragment = reference_fragment(reference or "", share.invoice_number)
        if fragment:
            reasons.append(f"référence : « {fragment} »")
            score += WEIGHTS["reference"]
        if reasons:
            found.append(Candidate(share.invoice_number, share.patient_id, share.due_cents, score, tuple(reasons)))
    found.sort(key=lambda c: (-c.score, c.invoice_number))
    return found[:limit]
