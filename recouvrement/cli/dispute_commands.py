"""`recouvrement dispute ...` (the complaints register) and `recouvrement hold` (pausing a patient)."""

from __future__ import annotations

from datetime import date

import click
from rich.table import Table

from recouvrement.app.disputes import (CATEGORIES, CHANNELS, NEAR_DAYS, add_note, answer_dispute, close_dispute,
                                       dispute_notes, forward_dispute, get_dispute, list_disputes, open_dispute)
from recouvrement.app.holds import place_hold, release_hold
from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.errors import RecouvrementError

DATE = click.DateTime(["%Y-%m-%d", "%d/%m/%Y"])


def _day(value) -> date | None:
    return value.date() if value else None


@cli.group()
def dispute() -> None:
    """The complaints register: a dispute pauses its invoice's collection until it is closed.

    Status: open → forwarded (to the practitioner) → answered → closed; the desk may answer
    without forwarding, and close at any time. The answer is due 60 days after receipt.
    """


@dispute.command("open")
@click.argument("invoice_number")
@click.option("--reason", required=True, help="What the patient contests (internal: never in letters or exports).")
@click.option("--channel", type=click.Choice(CHANNELS), default="desk", show_default=True)
@click.option("--category", type=click.Choice(CATEGORIES), default="other", show_default=True)
@click.option("--received", type=DATE, help="Day the complaint was received (default today).")
@pass_context
def dispute_open(ctx: Context, invoice_number: str, reason: str, channel: str, category: str, received) -> None:
    """Register a complaint about INVOICE_NUMBER."""
    dispute_id = open_dispute(ctx.engine, invoice_number, reason, channel=channel, category=category,
                              received=_day(received))
    with ctx.engine.connect() as conn:
        row = get_dispute(conn, dispute_id)
    out.print(f"dispute #{dispute_id} opened on {invoice_number}; answer due {row.answer_due:%d/%m/%Y}; "
              "its collection is paused until the dispute is closed")


@dispute.command("note")
@click.argument("dispute_id", metavar="ID", type=int)
@click.argument("note", metavar="TEXT")
@pass_context
def dispute_note(ctx: Context, dispute_id: int, note: str) -> None:
    """Add a note to dispute ID."""
    add_note(ctx.engine, dispute_id, note)
    out.print(f"note added to dispute #{dispute_id}")


@dispute.command("forward")
@click.argument("dispute_id", metavar="ID", type=int)
@click.option("--note", help="What was forwarded, to whom.")
@pass_context
def dispute_forward(ctx: Context, dispute_id: int, note: str | None) -> None:
    """Forward dispute ID to the practitioner (open → forwarded)."""
    out.print(f"dispute #{dispute_id} is now {forward_dispute(ctx.engine, dispute_id, note)}")


@dispute.command("answer")
@click.argument("dispute_id", metavar="ID", type=int)
@click.option("--note", required=True, help="What the patient was answered.")
@pass_context
def dispute_answer(ctx: Context, dispute_id: int, note: str) -> None:
    """Record the answer given to the patient (open or forwarded → answered)."""
    out.print(f"dispute #{dispute_id} is now {answer_dispute(ctx.engine, dispute_id, note)}")


@dispute.command("close")
@click.argument("dispute_id", metavar="ID", type=int)
@click.option("--note", help="Why it is closed.")
@pass_context
def dispute_close(ctx: Context, dispute_id: int, note: str | None) -> None:
    """Close dispute ID: its invoice's collection resumes."""
    out.print(f"dispute #{dispute_id} is now {close_dispute(ctx.engine, dispute_id, note)}")


@dispute.command("list")
@click.option("--overdue", is_flag=True, help="Only disputes whose answer is overdue.")
@click.option("--as-of", type=DATE, help="Day the deadlines are counted from (default today).")
@click.option("--all", "show_all", is_flag=True, help="Closed disputes too.")
@pass_context
def dispute_list(ctx: Context, overdue: bool, as_of, show_all: bool) -> None:
    """Disputes by answer deadline: days left, "nears" within 10 days, "overdue" past it.

    The reasons are not shown here (see `dispute show ID`): this list may be printed or shared.
    """
    day = _day(as_of) or date.today()
    with ctx.engine.connect() as conn:
        rows = list_disputes(conn, include_closed=show_all)
    if overdue:
        rows = [r for r in rows if r.is_overdue(day)]
    table = Table(title=f"Réclamations au {day:%d/%m/%Y}")
    for column in ("#", "invoice", "patient", "received", "channel", "category", "status", "answer due",
                   "days left", "deadline"):
        table.add_column(column, justify="right" if column in ("#", "days left") else "left")
    for r in rows:
        state = r.deadline(day)
        style = {"overdue": "bold red", "nears": "yellow"}.get(state, "")
        table.add_row(str(r.id), r.invoice_number, r.patient_id, f"{r.received_on:%d/%m/%Y}", r.channel, r.category,
                      r.status, f"{r.answer_due:%d/%m/%Y}",
                      "" if r.status in ("answered", "closed") else str(r.days_left(day)), state, style=style)
    out.print(table)
    out.print(f"{len(rows)} dispute(s); nears = answer due within {NEAR_DAYS} days")


@dispute.command("show")
@click.argument("dispute_id", metavar="ID", type=int)
@pass_context
def dispute_show(ctx: Context, dispute_id: int) -> None:
    """One dispute in full, reason and notes included (internal screen)."""
    with ctx.engine.connect() as conn:
        row = get_dispute(conn, dispute_id)
        notes = dispute_notes(conn, dispute_id)
    out.print(f"dispute #{row.id} on {row.invoice_number} (patient {row.patient_id}): {row.status}; "
              f"received {row.received_on:%d/%m/%Y} by {row.channel}; category {row.category}; "
              f"answer due {row.answer_due:%d/%m/%Y}"
              + (f"; closed {row.closed_on:%d/%m/%Y}" if row.closed_on else ""))
    out.print(f"reason: {row.reason}", markup=False)
    for note in notes:
        out.print(f"  {note.at:%d/%m/%Y %H:%M} {note.action}" + (f": {note.text}" if note.text else ""), markup=False)


@cli.command()
@click.argument("patient_id")
@click.option("--reason", help="Why (hardship, death, legal protection…); internal, kept out of the audit log.")
@click.option("--release", is_flag=True, help="End the patient's hold: collection resumes.")
@click.option("--on", "on", type=DATE, help="Day the hold begins or ends (default today).")
@pass_context
def hold(ctx: Context, patient_id: str, reason: str | None, release: bool, on) -> None:
    """Pause every reminder to PATIENT_ID (--reason TEXT), or resume them (--release)."""
    if release == bool(reason):
        raise RecouvrementError("give either --reason TEXT to place a hold or --release to end it",
                                field="--reason/--release")
    if release:
        release_hold(ctx.engine, patient_id, on=_day(on))
        out.print(f"patient {patient_id}: hold released, collection resumes")
    else:
        place_hold(ctx.engine, patient_id, reason, since=_day(on))
        out.print(f"patient {patient_id} on hold: no reminder will be sent")
