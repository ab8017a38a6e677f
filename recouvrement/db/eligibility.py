"""The dated facts every collection decision reads (core.eligibility): holds, promises, plans, disputes, handovers,
mises en demeure, the patient's coverage and age, and the payments waiting in the queue.

Every date is a `datetime.date`; a pause is a `core.eligibility.Span` from its start to its end, whatever
the day asked: the core judges it on that day. Only what is known by `as_of` is read (a hold placed, a
plan proposed, a dispute received, a case handed over, a payment dated after it does not exist yet).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.core.eligibility import Patient, PlanFacts, Span
from recouvrement.core.reconcile import payer_candidates
from recouvrement.db.bulk import read_frame
from recouvrement.db.values import as_date


@dataclass(frozen=True)
class DecisionFacts:
    """The facts of the patients asked for (all when none was named), read on `as_of`."""

    patients: dict[str, Patient] = field(default_factory=dict)
    disputes: dict[str, tuple[Span, ...]] = field(default_factory=dict)   # invoice -> its complaints
    handed_over_on: dict[str, date] = field(default_factory=dict)         # invoice -> first handover day

    def patient(self, patient_id: str) -> Patient:
        return self.patients.get(patient_id, Patient())


# The audited changes that may stop or change a patient's letter (app.holds, promises, disputes, plans, agency,
# write_offs, calls): a plan proposed or accepted, a hold's review, a dispute's every step, a case handed over
# or returned, a write-off, a call's outcome. Also those that only UPDATE a row (a plan accepted, a case's status).
PAUSING_EVENTS = ("hold", "hold_review", "promise", "dispute_open", "dispute_forward", "dispute_answer",
                  "dispute_close", "plan_proposed", "plan_accepted", "agency_handover", "agency_return", "write_off",
                  "call")


def pauses_mark(conn: Connection) -> tuple[int, int, int, int]:
    """The row ids of the last hold placed, dispute received and promise recorded, and the last audit event's
    sequence number: see `patients_paused_since`."""
    hold, dispute, promise, seq = conn.execute(text(
        "SELECT (SELECT MAX(id) FROM hold), (SELECT MAX(id) FROM dispute), (SELECT MAX(id) FROM promise), "
        "(SELECT MAX(seq) FROM audit_event)")).one()
    return int(hold or 0), int(dispute or 0), int(promise or 0), int(seq or 0)


def patients_paused_since(conn: Connection, mark: tuple[int, int, int, int]) -> set[str]:
    """The patients a hold, a dispute (on one of their invoices) or a promise was recorded for after `mark`
    (`pauses_mark`), or whom an audited change of PAUSING_EVENTS names (or names one of their invoices): what a
    night's reading did not know of them may stop their letters. The audit's sequence is given under the writer
    lock, so it follows the commits' order."""
    hold, dispute, promise, seq = mark
    kinds = ", ".join(f"'{kind}'" for kind in PAUSING_EVENTS)
    return {r[0] for r in conn.execute(text(
        "SELECT patient_id FROM hold WHERE id > :h UNION SELECT patient_id FROM promise WHERE id > :p "
        "UNION SELECT i.patient_id FROM dispute d JOIN invoice i ON i.invoice_number = d.invoice_number "
        "WHERE d.id > :d "
        "UNION SELECT COALESCE(a.patient_id, i.patient_id) FROM audit_event a "
        "LEFT JOIN invoice i ON i.invoice_number = a.invoice_number "
        f"WHERE a.seq > :s AND a.kind IN ({kinds})"), {"h": hold, "d": dispute, "p": promise, "s": seq})
        if r[0] is not None}


def _where_patient(patient_id: str | None, column: str = "patient_id") -> str:
    return f" AND {column} = :p" if patient_id is not None else ""


def hold_spans(conn: Connection, as_of: date, patient_id: str | None = None) -> dict[str, tuple[Span, ...]]:
    """patient -> every hold placed by as_of, from its first day to its release day (free again)."""
    rows = conn.execute(text("SELECT patient_id, since, released_on FROM hold WHERE since <= :d"
                             + _where_patient(patient_id) + " ORDER BY since, id"), {"d": as_of, "p": patient_id})
    spans: dict[str, tuple[Span, ...]] = defaultdict(tuple)
    for patient, since, released in rows:
        spans[patient] += (Span(as_date(since), as_date(released)),)
    return dict(spans)


def promise_spans(conn: Connection, as_of: date, patient_id: str | None = None) -> dict[str, tuple[Span, ...]]:
    """patient -> every promise to pay made by as_of, from the day it was made through its date (the day after,
    or its cancellation day, it no longer holds anything)."""
    rows = conn.execute(text("SELECT patient_id, made_on, pay_by, cancelled_on FROM promise WHERE made_on <= :d"
                             + _where_patient(patient_id) + " ORDER BY made_on, id"), {"d": as_of, "p": patient_id})
    spans: dict[str, tuple[Span, ...]] = defaultdict(tuple)
    for patient, made, pay_by, cancelled in rows:
        ends = [as_date(pay_by) + timedelta(days=1)] + ([as_date(cancelled)] if cancelled is not None else [])
        spans[patient] += (Span(as_date(made), min(ends)),)
    return dict(spans)


def plan_facts(conn: Connection, as_of: date, patient_id: str | None = None) -> dict[str, tuple[PlanFacts, ...]]:
    """patient -> every plan proposed by as_of, with its dates (what happened after as_of is not known yet)."""
    rows = conn.execute(text("SELECT patient_id, proposed_on, accepted_on, ended_on, invoice_numbers FROM plan "
                             "WHERE proposed_on <= :d" + _where_patient(patient_id) + " ORDER BY proposed_on, id"),
                        {"d": as_of, "p": patient_id})
    plans: dict[str, tuple[PlanFacts, ...]] = defaultdict(tuple)
    for patient, proposed, accepted, ended, numbers in rows:
        accepted, ended = as_date(accepted), as_date(ended)
        plans[patient] += (PlanFacts(as_date(proposed), frozenset(numbers.split()),
                                     accepted if accepted is not None and accepted <= as_of else None,
                                     ended if ended is not None and ended <= as_of else None),)
    return dict(plans)


def dispute_spans(conn: Connection, as_of: date, patient_id: str | None = None) -> dict[str, tuple[Span, ...]]:
    """invoice -> every complaint received by as_of, from its receipt to its closing day (chased again)."""
    rows = conn.execute(text("SELECT d.invoice_number, d.received_on, d.status, d.closed_on FROM dispute d "
                             "JOIN invoice i ON i.invoice_number = d.invoice_number WHERE d.received_on <= :d"
                             + _where_patient(patient_id, "i.patient_id") + " ORDER BY d.received_on, d.id"),
                        {"d": as_of, "p": patient_id})
    spans: dict[str, tuple[Span, ...]] = defaultdict(tuple)
    for number, received, status, closed in rows:
        start = as_date(received)
        # A closed complaint without its day (older data) is over since it was received.
        end = as_date(closed) if closed is not None else (start if status == "closed" else None)
        spans[number] += (Span(start, end),)
    return dict(spans)


def handover_days(conn: Connection, as_of: date, patient_id: str | None = None) -> dict[str, date]:
    """invoice -> the first day a case handed it to the agency, by as_of (whatever the case became)."""
    rows = conn.execute(text("SELECT invoice_numbers, handed_on FROM agency_case WHERE handed_on <= :d"
                             + _where_patient(patient_id) + " ORDER BY handed_on"), {"d": as_of, "p": patient_id})
    days: dict[str, date] = {}
    for numbers, handed in rows:
        for number in numbers.split():
            days.setdefault(number, as_date(handed))
    return days


def patients_with_pending_payment(conn: Connection, as_of: date, patient_id: str | None = None) -> set[str]:
    """Patients with a payment in their name (dated by as_of) still waiting in the queue to be matched."""
    rows = conn.execute(text("SELECT DISTINCT e.patient_id FROM payment_exception e JOIN payment p "
                             "ON p.payment_id = e.payment_id WHERE e.kind <> 'credit' AND e.remaining_cents > 0 "
                             "AND e.patient_id IS NOT NULL AND p.payment_date <= :d"
                             + _where_patient(patient_id, "e.patient_id")), {"d": as_of, "p": patient_id})
    return {r[0] for r in rows}


_QUEUED = ("SELECT e.payment_id, e.remaining_cents AS amount_cents, p.payer_name, p.payment_date "
           "FROM payment_exception e JOIN payment p ON p.payment_id = e.payment_id "
           "WHERE e.kind <> 'credit' AND e.patient_id IS NULL AND p.payer_type = 'patient' AND p.payment_date <= :d")
_NAMES = ("SELECT patient_id, last_name, first_name, guarantor_last_name, guarantor_first_name FROM patient")


def queued_payment_patients(conn: Connection, as_of: date, shares: pd.DataFrame) -> dict[str, list[str]]:
    """patient -> the payments waiting in nobody's name (dated by as_of) that may be theirs: the payer's name
    is theirs and one of their open shares equals the amount (core.reconcile.payer_candidates).

    `shares`: the open patient shares on as_of, columns patient_id, amount_cents, issue_date (a date)."""
    queued = read_frame(conn, _QUEUED, {"d": as_of})
    if queued.empty or shares.empty:
        return {}
    queued["payment_date"] = queued["payment_date"].map(as_date)
    queued["amount_cents"] = queued["amount_cents"].astype("int64")
    found = payer_candidates(queued, read_frame(conn, _NAMES), shares[["patient_id", "amount_cents", "issue_date"]])
    return {patient: list(group["payment_id"]) for patient, group in found.groupby("patient_id")}


def _patients(conn: Connection, patient_id: str | None) -> list[tuple]:
    sql = "SELECT patient_id, coverage, birth_date, guarantor_last_name, guarantor_address FROM patient"
    if patient_id is not None:
        sql += " WHERE patient_id = :p"
    return list(conn.execute(text(sql), {"p": patient_id}))


def decision_facts(conn: Connection, as_of: date, patient_id: str | None = None,
                   queued: dict[str, list[str]] | None = None) -> DecisionFacts:
    """Every dated fact core.eligibility decides on, for one patient or for all; `queued`: the patients a
    queued payment may belong to (queued_payment_patients), read by the caller who holds the open shares."""
    holds, plans = hold_spans(conn, as_of, patient_id), plan_facts(conn, as_of, patient_id)
    promises = promise_spans(conn, as_of, patient_id)
    pending = patients_with_pending_payment(conn, as_of, patient_id)
    queued = queued or {}
    patients = {
        pid: Patient(coverage=str(coverage or "none"), holds=holds.get(pid, ()),
                     promises=promises.get(pid, ()), plans=plans.get(pid, ()),
                     birth_date=as_date(born) if born else None,
                     has_guarantor=bool((last or "").strip() and (address or "").strip()),
                     pending_payment=pid in pending, queued_payment_may_be_theirs=pid in queued)
        for pid, coverage, born, last, address in _patients(conn, patient_id)}
    return DecisionFacts(patients, dispute_spans(conn, as_of, patient_id), handover_days(conn, as_of, patient_id))
