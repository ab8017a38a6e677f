"""Instalment plans in the store: named reads (dates as `date`) and named writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from recouvrement.core.plans import Instalment, PlanStatus, plan_status, proposal_status
from recouvrement.db.values import as_date
from recouvrement.rules import Rules


@dataclass(frozen=True)
class PlanRow:
    id: int
    patient_id: str
    status: str                       # proposed | lapsed | active | broken | completed | cancelled
    proposed_on: date
    accepted_on: date | None
    ended_on: date | None
    total_cents: int
    invoice_numbers: tuple[str, ...]


_PLAN = "SELECT id, patient_id, status, proposed_on, accepted_on, ended_on, total_cents, invoice_numbers FROM plan"


def _row(r) -> PlanRow:
    return PlanRow(int(r[0]), r[1], r[2], as_date(r[3]), as_date(r[4]), as_date(r[5]), int(r[6]), tuple(r[7].split()))


def plan(conn: Connection, plan_id: int) -> PlanRow | None:
    found = conn.execute(text(_PLAN + " WHERE id = :i"), {"i": plan_id}).first()
    return None if found is None else _row(found)


def plans_of(conn: Connection, patient_id: str) -> list[PlanRow]:
    """The patient's plans, newest first."""
    rows = conn.execute(text(_PLAN + " WHERE patient_id = :p ORDER BY proposed_on DESC, id DESC"), {"p": patient_id})
    return [_row(r) for r in rows]


def plans_with_status(conn: Connection, status: str) -> list[PlanRow]:
    return [_row(r) for r in conn.execute(text(_PLAN + " WHERE status = :s ORDER BY id"), {"s": status})]


def active_plan_id(conn: Connection, patient_id: str) -> int | None:
    return conn.execute(text("SELECT id FROM plan WHERE patient_id = :p AND status = 'active'"),
                        {"p": patient_id}).scalar_one_or_none()


def active_plan_invoices(conn: Connection, patient_id: str | None = None) -> set[str]:
    """Invoices of the active plans (of one patient, if named; as stored now)."""
    mine = "" if patient_id is None else " AND patient_id = :p"
    numbers = conn.execute(text("SELECT invoice_numbers FROM plan WHERE status = 'active'" + mine),
                           {"p": patient_id}).scalars()
    return {number for row in numbers for number in row.split()}


def proposed_plan_invoices(conn: Connection, as_of: date) -> dict[str, date]:
    """invoice -> the day the latest plan not accepted (proposed, or lapsed since) was offered over it, by as_of."""
    rows = conn.execute(text("SELECT invoice_numbers, proposed_on FROM plan WHERE status IN ('proposed', 'lapsed') "
                             "AND proposed_on <= :d ORDER BY proposed_on"), {"d": as_of}).all()
    return {number: as_date(day) for numbers, day in rows for number in numbers.split()}


def instalments(conn: Connection, plan_id: int) -> tuple[Instalment, ...]:
    rows = conn.execute(text("SELECT due_date, amount_cents FROM plan_instalment WHERE plan_id = :p ORDER BY seq"),
                        {"p": plan_id}).all()
    return tuple(Instalment(as_date(d), int(a)) for d, a in rows)


def plan_payments(conn: Connection, plan: PlanRow, as_of: date) -> tuple[tuple[date, int], ...]:
    """The patient's own payments to the plan's invoices, dated after the proposal and by as_of, per day."""
    numbers = plan.invoice_numbers
    if not numbers:
        return ()
    marks = ", ".join(f":n{k}" for k in range(len(numbers)))
    rows = conn.execute(text(
        "SELECT p.payment_date, SUM(a.amount_cents) FROM allocation a JOIN payment p ON p.payment_id = a.payment_id "
        f"WHERE a.payer_type = 'patient' AND p.payer_type = 'patient' AND a.invoice_number IN ({marks}) "
        "AND p.payment_date > :start AND p.payment_date <= :d GROUP BY p.payment_date ORDER BY p.payment_date"),
        {"start": plan.proposed_on, "d": as_of, **{f"n{k}": n for k, n in enumerate(numbers)}}).all()
    return tuple((as_date(d), int(c)) for d, c in rows)


@dataclass(frozen=True)
class PlanSummary:
    plan_id: int
    patient_id: str
    status: str  # as stored: proposed | lapsed | active | broken | completed | cancelled
    proposed_on: date
    accepted_on: date | None
    ended_on: date | None
    total_cents: int
    invoice_numbers: tuple[str, ...]
    instalments: tuple[Instalment, ...]
    payments: tuple[tuple[date, int], ...]
    standing: PlanStatus  # where the schedule stands on as_of (core.plans.plan_status)


def plan_summary(conn: Connection, plan: PlanRow, as_of: date, rules: Rules) -> PlanSummary:
    """The plan with its instalments, the payments that count toward it, and where it stands on as_of."""
    schedule = instalments(conn, plan.id)
    payments = plan_payments(conn, plan, as_of)
    return PlanSummary(plan.id, plan.patient_id, plan.status, plan.proposed_on, plan.accepted_on, plan.ended_on,
                       plan.total_cents, plan.invoice_numbers, schedule, payments,
                       _standing(plan, schedule, payments, as_of, rules))


def _standing(plan: PlanRow, schedule: tuple[Instalment, ...], payments: tuple[tuple[date, int], ...], as_of: date,
              rules: Rules) -> PlanStatus:
    """The schedule's standing once accepted; before, only 'proposed' or 'lapsed' (never active nor broken)."""
    if plan.status in ("proposed", "lapsed"):
        return proposal_status(plan.proposed_on, as_of, rules)
    return plan_status(schedule, payments, as_of, rules.plans.grace_days)


def patient_plan_summaries(conn: Connection, patient_id: str, as_of: date, rules: Rules) -> list[PlanSummary]:
    """Every plan of the patient (newest first), with where each stands on as_of."""
    return [plan_summary(conn, found, as_of, rules) for found in plans_of(conn, patient_id)]


# -- writes ---------------------------------------------------------------------------------------

def insert_plan(conn: Connection, patient_id: str, proposed_on: date, total_cents: int,
                invoice_numbers: tuple[str, ...], schedule: tuple[Instalment, ...]) -> int:
    """A proposed plan and its instalments; returns its id."""
    plan_id = conn.execute(text(
        "INSERT INTO plan (patient_id, status, proposed_on, total_cents, invoice_numbers) "
        "VALUES (:p, 'proposed', :d, :t, :n) RETURNING id"),
        {"p": patient_id, "d": proposed_on, "t": total_cents, "n": " ".join(invoice_numbers)}).scalar_one()
    conn.execute(text("INSERT INTO plan_instalment (plan_id, seq, due_date, amount_cents) VALUES (:p, :s, :d, :a)"),
                 [{"p": plan_id, "s": k + 1, "d": i.due_date, "a": i.amount_cents} for k, i in enumerate(schedule)])
    return int(plan_id)


def mark_accepted(conn: Connection, plan_id: int, on: date) -> None:
    conn.execute(text("UPDATE plan SET status = 'active', accepted_on = :d WHERE id = :i"), {"d": on, "i": plan_id})


def mark_ended(conn: Connection, plan_id: int, status: str, on: date) -> None:
    """lapsed | cancelled | broken | completed, on the day it ended."""
    conn.execute(text("UPDATE plan SET status = :s, ended_on = :d WHERE id = :i"),
                 {"s": status, "d": on, "i": plan_id})
