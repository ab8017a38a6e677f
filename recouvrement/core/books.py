"""The books: what recouvrement's money movements are in double entry, as journal entries of a period.

Pure: movements and the accounting rules in, balanced entries out (no SQL, no file, no clock).

- A **receipt** (bank journal, on the payment's date): the bank account is debited with what the
  payment brought; each share it settled credits that share's customer account (patient, AMO, mutuelle),
  and what it brought beyond that credits the credit account (a trop-perçu, until it is refunded). An
  insurer's clawback (a negative allocation) is the same entry the other way round: the bank credited,
  the insurer's account debited.
- A **refund** of a credit (bank journal, on the day the statement shows the transfer): the credit
  account is debited, the bank credited.
- A **write-off** (admission en non-valeur; transfer journal, on its day): the loss account (654) is
  debited, the customer account of the share credited.
- The **collection agency's commission** on what it collected (transfer journal, on the return line's day):
  the commission account (622) is debited, the agency's supplier account (401) credited. The agency's
  collection itself is a receipt like any other; the commission is the clinic's expense, never the patient's.
- A **share moved to the patient** after an insurer's rejection (transfer journal, on the rejection's
  date): the patient's account is debited, the insurer's credited; if the insurer pays after all, the
  reverse entry on that day.

Invoices themselves are not booked: the practice software books the sales; recouvrement books how
they are paid. A payment waiting in the queue (nobody's yet) is not booked either.

>>> from datetime import date
>>> from recouvrement.rules import AccountingRules
>>> p = Party("P1", "Martin", "Anne", "MGEN")
>>> day = date(2026, 3, 2)
>>> entries = book_entries([ReceiptLine("PAY-1", day, "amc", "amc", "F1", 2000, day, p)],
...                        [PaymentCredit("PAY-1", day, "amc", 500, Party(None))], [],
...                        AccountingRules(), date(2026, 1, 1), date(2026, 12, 31))
>>> [(l.account.number, l.debit_cents, l.credit_cents) for l in entries[0].lines]
[('512000', 2500, 0), ('411300', 0, 2000), ('419100', 0, 500)]
>>> entries[0].lines[1].aux_number, entries[0].lines[1].aux_label
('MUT-MGEN', 'MGEN')
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from typing import Iterable

from recouvrement.rules import Account, AccountingRules, Journal


@dataclass(frozen=True)
class Party:
    """Whom a customer-account line is about: the patient, and the mutuelle of the invoice."""

    patient_id: str | None
    last_name: str = ""
    first_name: str = ""
    amc_payer: str | None = None


@dataclass(frozen=True)
class ReceiptLine:
    """One allocation of a payment to one share of one invoice."""

    payment_id: str
    payment_date: date
    payer_type: str            # amo | amc | patient | agency: who paid
    share: str                 # amo | amc | patient: the share settled
    invoice_number: str
    amount_cents: int
    booked_on: date            # when the allocation was recorded
    party: Party


@dataclass(frozen=True)
class PaymentCredit:
    """What a payment brought beyond what it settled: a credit to refund or use (the whole of it, refunded
    or not)."""

    payment_id: str
    payment_date: date
    payer_type: str
    amount_cents: int
    party: Party


@dataclass(frozen=True)
class ShareMove:
    """An insurer's share moved to the patient after a rejection, and its reversal if the insurer paid."""

    transfer_id: int
    invoice_number: str
    from_payer: str            # amo | amc
    amount_cents: int
    transfer_date: date
    rejection_payment_id: str
    reversed_on: date | None
    reversed_by: str | None
    party: Party


@dataclass(frozen=True)
class RefundDone:
    """A credit paid back, as the bank statement shows it."""

    refund_id: int
    payment_id: str
    amount_cents: int
    end_to_end_id: str
    done_on: date
    party: Party


@dataclass(frozen=True)
class WrittenOff:
    """A debt written off (admission en non-valeur)."""

    write_off_id: int
    invoice_number: str
    share: str                 # amo | amc | patient
    amount_cents: int
    reason: str                # time_barred | deceased | agency_uncollectable | under_cost
    written_off_on: date
    party: Party


@dataclass(frozen=True)
class Commission:
    """The collection agency's commission on one collected return line (an expense of the clinic)."""

    line_id: str               # the return line's id, that of its agency payment
    case_id: str
    booked_on: date
    amount_cents: int


WRITE_OFF_REASONS = {"time_barred": "créance prescrite", "deceased": "débiteur décédé",
                     "agency_uncollectable": "irrécouvrable selon l'agence",
                     "under_cost": "inférieure au coût du recouvrement"}


@dataclass(frozen=True)
class OutgoingTransfer:
    """A booked debit of a bank statement carrying the end-to-end id of a transfer we ordered (a refund)."""

    end_to_end_id: str
    booked: str                # ISO date
    amount_cents: int
    bank_reference: str


SHARE_NAMES = {"amo": "Assurance Maladie", "amc": "mutuelle", "patient": "patient", "agency": "agence"}


@dataclass(frozen=True)
class Line:
    account: Account
    aux_number: str
    aux_label: str
    label: str
    debit_cents: int = 0
    credit_cents: int = 0


@dataclass(frozen=True)
class Entry:
    journal: Journal
    entry_date: date
    piece_ref: str
    piece_date: date
    valid_date: date
    lines: tuple[Line, ...]
    kind: str                 # receipt | transfer | reversal | refund | write_off
    number: str = ""          # EcritureNum: given once the period's entries are in order

    @property
    def debit_cents(self) -> int:
        return sum(line.debit_cents for line in self.lines)

    @property
    def credit_cents(self) -> int:
        return sum(line.credit_cents for line in self.lines)


class Unbalanced(ValueError):
    """An entry whose debits and credits differ: a bug, never written."""


def aux_of(share: str, party: Party) -> tuple[str, str]:
    """The auxiliary account (number, label) of a customer-account line: the patient, the mutuelle, the AMO.

    >>> aux_of("patient", Party("P7", "Lefèvre", "Éloïse"))
    ('P7', 'Lefèvre Éloïse')
    >>> aux_of("amc", Party("P7", amc_payer="Harmonie Mutuelle"))
    ('MUT-HARMONIEMUTUELLE', 'Harmonie Mutuelle')
    """
    if share == "amo":
        return "AMO", "Assurance Maladie obligatoire"
    if share == "amc":
        name = (party.amc_payer or "").strip()
        compact = re.sub(r"[^A-Z0-9]", "", name.upper())[:16]
        return (f"MUT-{compact}", name) if compact else ("MUT", "Organisme complémentaire")
    if party.patient_id is None:
        return "", ""
    return party.patient_id, f"{party.last_name} {party.first_name}".strip()


def _positive(line: Line) -> Line:
    """A negative amount is written as the opposite side's positive one (the FEC holds no negative amount).

    >>> _positive(Line(Account("512000", "Banque"), "", "", "Reprise", debit_cents=-500)).credit_cents
    500
    """
    if line.debit_cents < 0:
        return replace(line, debit_cents=0, credit_cents=line.credit_cents - line.debit_cents)
    if line.credit_cents < 0:
        return replace(line, credit_cents=0, debit_cents=line.debit_cents - line.credit_cents)
    return line


def _share_account(share: str, rules: AccountingRules) -> Account:
    return {"amo": rules.amo, "amc": rules.amc}.get(share, rules.patient)


def _receipts(receipts: Iterable[ReceiptLine], credits: Iterable[PaymentCredit], rules: AccountingRules,
              start: date, end: date) -> list[Entry]:
    settled: dict[str, list[ReceiptLine]] = defaultdict(list)
    for line in receipts:
        settled[line.payment_id].append(line)
    left = {credit.payment_id: credit for credit in credits}
    entries = []
    for payment_id in dict.fromkeys([*settled, *left]):
        parts, credit = settled.get(payment_id, []), left.get(payment_id)
        first = parts[0] if parts else left[payment_id]
        if not start <= first.payment_date <= end:
            continue
        lines = [Line(_share_account(p.share, rules), *aux_of(p.share, p.party),
                      f"Règlement {SHARE_NAMES[p.share]} facture {p.invoice_number}", credit_cents=p.amount_cents)
                 for p in parts]
        if credit is not None:
            lines.append(Line(rules.credit, *aux_of("patient", credit.party),
                              f"Trop-perçu {SHARE_NAMES.get(credit.payer_type, '')} à rembourser".replace("  ", " "),
                              credit_cents=credit.amount_cents))
        total = sum(line.credit_cents for line in lines)
        bank = Line(rules.bank, "", "", f"Encaissement {SHARE_NAMES.get(first.payer_type, first.payer_type)} "
                                        f"{payment_id}", debit_cents=total)
        booked = max([p.booked_on for p in parts] + [first.payment_date])
        if total < 0:             # an insurer's clawback: money taken back, booked on the other sides
            bank = replace(bank, label=bank.label.replace("Encaissement", "Reprise", 1))
        entries.append(Entry(rules.bank_journal, first.payment_date, payment_id, first.payment_date, booked,
                             tuple(_positive(line) for line in (bank, *lines)), "receipt"))
    return entries


def _moves(moves: Iterable[ShareMove], rules: AccountingRules, start: date, end: date) -> list[Entry]:
    entries = []
    for move in moves:
        insurer = (_share_account(move.from_payer, rules), *aux_of(move.from_payer, move.party))
        patient = (rules.patient, *aux_of("patient", move.party))
        who = SHARE_NAMES[move.from_payer]
        if start <= move.transfer_date <= end:
            label = f"Rejet {who} facture {move.invoice_number} : part reportée sur le patient"
            entries.append(Entry(rules.transfer_journal, move.transfer_date, move.rejection_payment_id,
                                 move.transfer_date, move.transfer_date,
                                 (Line(*patient, label, debit_cents=move.amount_cents),
                                  Line(*insurer, label, credit_cents=move.amount_cents)), "transfer"))
        if move.reversed_on is not None and start <= move.reversed_on <= end:
            label = f"Reprise {who} facture {move.invoice_number} : part réglée par l'organisme"
            entries.append(Entry(rules.transfer_journal, move.reversed_on, move.reversed_by or move.rejection_payment_id,
                                 move.reversed_on, move.reversed_on,
                                 (Line(*insurer, label, debit_cents=move.amount_cents),
                                  Line(*patient, label, credit_cents=move.amount_cents)), "reversal"))
    return entries


def _refunds(refunds: Iterable[RefundDone], rules: AccountingRules, start: date, end: date) -> list[Entry]:
    entries = []
    for done in refunds:
        if not start <= done.done_on <= end:
            continue
        label = f"Remboursement trop-perçu {done.payment_id}"
        entries.append(Entry(rules.bank_journal, done.done_on, done.end_to_end_id, done.done_on, done.done_on,
                             (Line(rules.credit, *aux_of("patient", done.party), label, debit_cents=done.amount_cents),
                              Line(rules.bank, "", "", label, credit_cents=done.amount_cents)), "refund"))
    return entries


def _write_offs(write_offs: Iterable[WrittenOff], rules: AccountingRules, start: date, end: date) -> list[Entry]:
    entries = []
    for done in write_offs:
        if not start <= done.written_off_on <= end:
            continue
        label = f"Admission en non-valeur facture {done.invoice_number} : {WRITE_OFF_REASONS[done.reason]}"
        entries.append(Entry(rules.transfer_journal, done.written_off_on, f"ANV-{done.write_off_id}",
                             done.written_off_on, done.written_off_on,
                             (Line(rules.write_off, "", "", label, debit_cents=done.amount_cents),
                              Line(_share_account(done.share, rules), *aux_of(done.share, done.party), label,
                                   credit_cents=done.amount_cents)), "write_off"))
    return entries


def _commissions(commissions: Iterable[Commission], rules: AccountingRules, start: date, end: date) -> list[Entry]:
    entries = []
    for done in commissions:
        if not start <= done.booked_on <= end or not done.amount_cents:
            continue
        label = f"Commission agence de recouvrement dossier {done.case_id}"
        entries.append(Entry(rules.transfer_journal, done.booked_on, done.line_id, done.booked_on, done.booked_on,
                             (Line(rules.commission, "", "", label, debit_cents=done.amount_cents),
                              Line(rules.agency, "", "", label, credit_cents=done.amount_cents)), "commission"))
    return entries


_KIND_ORDER = {"receipt": 0, "reversal": 1, "transfer": 2, "refund": 3, "write_off": 4, "commission": 5}


def numbered(entries: Iterable[Entry]) -> list[Entry]:
    """The entries in date order, numbered on one continuous sequence (EcritureNum 000001, 000002 …);
    Unbalanced if any entry's debits and credits differ."""
    ordered = sorted(entries, key=lambda e: (e.entry_date, _KIND_ORDER[e.kind], e.piece_ref))
    result = []
    for rank, entry in enumerate(ordered, 1):
        if entry.debit_cents != entry.credit_cents or not entry.lines:
            raise Unbalanced(f"écriture {entry.piece_ref} du {entry.entry_date:%d/%m/%Y} déséquilibrée")
        result.append(Entry(entry.journal, entry.entry_date, entry.piece_ref, entry.piece_date, entry.valid_date,
                            entry.lines, entry.kind, f"{rank:06d}"))
    return result


def book_entries(receipts: Iterable[ReceiptLine], credits: Iterable[PaymentCredit], moves: Iterable[ShareMove],
                 rules: AccountingRules, start: date, end: date, *, refunds: Iterable[RefundDone] = (),
                 write_offs: Iterable[WrittenOff] = (), commissions: Iterable[Commission] = ()) -> list[Entry]:
    """Every entry of the period from `start` to `end`, balanced and numbered in date order."""
    return numbered([*_receipts(receipts, credits, rules, start, end), *_moves(moves, rules, start, end),
                     *_refunds(refunds, rules, start, end), *_write_offs(write_offs, rules, start, end),
                     *_commissions(commissions, rules, start, end)])
