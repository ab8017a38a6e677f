"""The whitelist view a letter renders from: frozen records of plain str, int and date, nothing medical.

Privacy by construction: the caller copies into these records only what a letter may show, so a
template cannot print a care description, an act code, a specialty or a NIR: no field holds one.
The types are checked on construction, so an ORM row or a dict cannot slip in with extra attributes.

>>> from datetime import date
>>> line = LetterLine("F2025-000123", date(2025, 3, 1), date(2025, 3, 31), 2500, "RF39F2025000123")
>>> line.amount_cents
2500
>>> LetterLine("F1", date(2025, 3, 1), date(2025, 3, 31), "25,00", "RF")
Traceback (most recent call last):
...
TypeError: LetterLine.amount_cents must be int, not str
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import types
import typing
from dataclasses import dataclass

KINDS = ("avis_rejet", "relance_1", "relance_2", "mise_en_demeure", "proposition_echeancier", "avant_echeance")


def _allowed(annotation: object) -> tuple[type, ...]:
    """The plain types an annotation permits (a union with None permits NoneType too)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for arg in typing.get_args(annotation) for t in _allowed(arg))
    if typing.get_origin(annotation) is tuple:
        return (tuple,)
    return (annotation,)  # type: ignore[return-value]


def _check_field(owner: object, name: str, value: object, allowed: tuple[type, ...]) -> None:
    # bool is an int and datetime is a date: both would render wrongly, so refuse them explicitly.
    wrong = (isinstance(value, bool) and bool not in allowed) or (
        isinstance(value, dt.datetime) and dt.datetime not in allowed)
    if wrong or not isinstance(value, allowed):
        raise TypeError(f"{type(owner).__name__}.{name} must be "
                        f"{' or '.join(t.__name__ for t in allowed)}, not {type(value).__name__}")


@functools.cache
def _field_types(cls: type) -> tuple[tuple[str, tuple[type, ...]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _allowed(hints[f.name])) for f in dataclasses.fields(cls))


class _Checked:
    """Refuses, at construction, any field value that is not of the declared plain type."""

    __slots__ = ()

    def __post_init__(self) -> None:
        for name, allowed in _field_types(type(self)):  # type: ignore[arg-type]  # a class is hashable
            _check_field(self, name, getattr(self, name), allowed)


@dataclass(frozen=True, slots=True)
class Creditor(_Checked):
    """The provider who sends the letter, as printed in its header and payment instructions."""

    name: str
    address: str
    postal_code: str
    city: str
    phone: str
    email: str
    siret: str
    iban: str
    bic: str


@dataclass(frozen=True, slots=True)
class Recipient(_Checked):
    """Who the letter is addressed to: the patient, or the guarantor of a minor or protected patient."""

    name: str
    address: str
    postal_code: str
    city: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class LetterLine(_Checked):
    """One unpaid invoice as the letter lists it: number, dates, amount due, its RF reference and its own
    ladder level in this letter (0 outside the ladder: notice, plan proposal, specimen)."""

    invoice_number: str
    issue_date: dt.date
    due_date: dt.date
    amount_cents: int
    rf_reference: str
    level: int = 0


@dataclass(frozen=True, slots=True)
class LetterView(_Checked):
    """Everything one letter may show, and nothing else.

    `patient_display_name` is "Prénom Nom" of the patient when the letter goes to a guarantor: the
    letter then says whose account it concerns ("le compte de <patient>") and nothing more about the patient. When the
    letter goes to the patient, pass "" or the recipient's name: nothing is added.
    `payer_rejected` names the insurer for an avis_rejet ("l'Assurance Maladie", "votre mutuelle"), and
    `pay_within_days` its deadline: the ladder counts from that date afterwards.
    `instalments` is the proposed schedule (due date, cents) for a proposition_echeancier.
    `lines` are the invoices the letter demands at its level, `credits_cents` deducted from them first;
    `also_due` the patient's other overdue invoices, listed apart at their own lower level with no
    formal demand, less `also_due_credits_cents` (what the credits leave over): `also_due_total_cents`.
    """

    letter_id: str
    kind: str
    level: int
    date: dt.date
    creditor: Creditor
    recipient: Recipient
    patient_display_name: str
    lines: tuple[LetterLine, ...]
    credits_cents: int
    total_due_cents: int
    offer_plan_first: bool
    payer_rejected: str | None
    instalments: tuple[tuple[dt.date, int], ...] = ()
    also_due: tuple[LetterLine, ...] = ()
    also_due_credits_cents: int = 0
    also_due_total_cents: int = 0
    pay_within_days: int = 30  # an avis_rejet's deadline, from the letter's date
    # The letter's own RF reference (core.references.letter_reference), printed once with the total and
    # carried by the QR code: one transfer settles all its invoices. "": one reference per invoice
    # (a plan proposal, whose instalments quote its first invoice's).
    payment_reference: str = ""
    # A mise en demeure names the collection agency its debt may be handed to ("": not named).
    agency_name: str = ""
    # An avis_rejet's insurer reason in the rules' neutral words (rules/reject_reasons.toml), "" when the
    # insurer's reason is not listed there: it is then never printed.
    rejection_reason: str = ""

    def __post_init__(self) -> None:
        _Checked.__post_init__(self)
        if self.kind not in KINDS:
            raise ValueError(f"unknown letter kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        _check_items(self)
        _check_amounts(self)


def _check_items(view: LetterView) -> None:
    """The tuples hold only LetterLine records and (date, int) pairs."""
    for line in view.lines:
        _check_field(view, "lines[]", line, (LetterLine,))
    for line in view.also_due:
        _check_field(view, "also_due[]", line, (LetterLine,))
    for instalment in view.instalments:
        _check_field(view, "instalments[]", instalment, (tuple,))
        if len(instalment) != 2:
            raise TypeError("LetterView.instalments[] must be (date, int) pairs")
        _check_field(view, "instalments[].due", instalment[0], (dt.date,))
        _check_field(view, "instalments[].amount", instalment[1], (int,))


def _check_amounts(view: LetterView) -> None:
    """A letter's figures add up: what it asks is the invoices less the credits, and the plan sums to it."""
    if not view.lines:
        raise ValueError(f"letter {view.letter_id}: no invoice to mention")
    owed = sum(line.amount_cents for line in view.lines) - view.credits_cents
    if view.total_due_cents != owed or owed <= 0:
        raise ValueError(f"letter {view.letter_id}: total_due_cents {view.total_due_cents} is not the "
                         f"invoices less the credits ({owed}), or nothing is due")
    also_owed = sum(line.amount_cents for line in view.also_due) - view.also_due_credits_cents
    if view.also_due_total_cents != also_owed or view.also_due_credits_cents < 0 or also_owed < 0:
        raise ValueError(f"letter {view.letter_id}: also_due_total_cents {view.also_due_total_cents} is not the "
                         f"other invoices less the credits left ({also_owed})")
    if view.kind == "avis_rejet" and not view.payer_rejected:
        raise ValueError(f"letter {view.letter_id}: an avis_rejet names the payer that rejected")
    if view.kind == "proposition_echeancier" and (
            not view.instalments or sum(cents for _, cents in view.instalments) != owed):
        raise ValueError(f"letter {view.letter_id}: the instalments must add up to the total due")


SPECIMEN_CREDITOR = Creditor(
    name="Centre de santé des Lilas", address="12 rue de Paris", postal_code="93260", city="Les Lilas",
    phone="01 43 62 00 00", email="facturation@cds-lilas.example", siret="73282932000074",
    iban="FR7630006000011234567890189", bic="AGRIFRPPXXX")


def specimen(kind: str = "relance_1", letter_id: str = "SPECIMEN-0001", *, invoices: int = 1,
             guarantor: bool = False, offer_plan_first: bool = False, also_due: int = 0,
             on: dt.date = dt.date(2026, 11, 23)) -> LetterView:
    """A fictitious letter of any kind, for template previews, tests and benchmarks.

    >>> view = specimen("proposition_echeancier", invoices=2)
    >>> sum(cents for _, cents in view.instalments) == view.total_due_cents
    True
    """
    from recouvrement.core.references import letter_reference, rf_reference  # only specimens compute references

    lines = tuple(
        LetterLine(number, on - dt.timedelta(days=90 - 20 * i), on - dt.timedelta(days=60 - 20 * i),
                   2500 + 1234 * i, rf_reference(number))
        for i, number in ((i, f"F{on.year}-{i + 123:06d}") for i in range(invoices)))
    credits = 500 if invoices > 1 else 0
    total = sum(line.amount_cents for line in lines) - credits
    name = "Mme Claire Martin"
    recipient = Recipient(name, "4 allée des Tilleuls\nBâtiment B", "93260", "Les Lilas",
                          "claire.martin@example.org")
    instalments: tuple[tuple[dt.date, int], ...] = ()
    if kind == "proposition_echeancier":
        first, rest = total - 2 * (total // 3), total // 3
        instalments = tuple((on + dt.timedelta(days=15 + 30 * i), first if i == 0 else rest)
                            for i in range(3))
    return LetterView(
        letter_id=letter_id, kind=kind, level=KINDS.index(kind), date=on, creditor=SPECIMEN_CREDITOR,
        recipient=recipient, patient_display_name="Léo Martin" if guarantor else name, lines=lines,
        credits_cents=credits, total_due_cents=total, offer_plan_first=offer_plan_first,
        payer_rejected="l'Assurance Maladie" if kind == "avis_rejet" else None, instalments=instalments,
        also_due=tuple(LetterLine(number, on - dt.timedelta(days=30), on - dt.timedelta(days=5), 1500 + 100 * i,
                                  rf_reference(number), 1)
                       for i, number in ((i, f"F{on.year}-{i + 456:06d}") for i in range(also_due))),
        also_due_total_cents=sum(1500 + 100 * i for i in range(also_due)),
        payment_reference="" if kind == "proposition_echeancier" else letter_reference(letter_id),
        agency_name="Recouvrement Conseil Île-de-France" if kind == "mise_en_demeure" else "",
        rejection_reason="vos droits n'étaient pas ouverts à cette date auprès de votre caisse"
        if kind == "avis_rejet" else "")
