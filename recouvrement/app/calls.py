"""The call list: the phone steps the night listed (the ladder's stored decision), their script, and each
call's outcome (audited with the user).

The list is what the nightly run stored (`db.calls`), never the ladder run again on a page load. An outcome
moves the ladder (core.ladder): *reached* makes the step done that day; *promise* and *dispute* are first
recorded through their own use cases (`app.promises.record_promise`, `app.disputes.open_dispute`, composed by
the web app and the CLI) and then close the call, the step done too; *wrong_number* marks the number unusable
and the next night sends that level's letter; *no_answer* is noted and the call stays on the list until the
level's `call_within_days`, after which the next night sends the letter instead.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape
from sqlalchemy import Engine

from recouvrement.audit import append_event
from recouvrement.core.promises import promise_in_force
from recouvrement.db import calls as store
from recouvrement.db import desk
from recouvrement.db.calls import CallRow
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError
from recouvrement.scanner import ensure_clean

SCRIPTS = Path(__file__).resolve().parents[1] / "templates" / "calls"
OUTCOMES = {"reached": "joint", "promise": "promesse de paiement", "dispute": "contestation",
            "wrong_number": "faux numéro", "no_answer": "pas de réponse"}
CLOSING = ("reached", "promise", "dispute", "wrong_number")  # no_answer leaves the call open


def call_list(engine: Engine) -> list[CallRow]:
    """The calls still to make, as the nights stored them (oldest list first)."""
    with engine.connect() as conn:
        return store.open_call_rows(conn)


def call_script(script: str, creditor) -> list[str]:
    """The script's lines (templates/calls/<script>.txt.j2), French, privacy-scanned; it reads only the creditor."""
    env = Environment(loader=FileSystemLoader(str(SCRIPTS)), autoescape=select_autoescape(default=False),
                      trim_blocks=True, lstrip_blocks=True)
    try:
        text = env.get_template(f"{script}.txt.j2").render(creditor=creditor)
    except TemplateNotFound:
        raise RecouvrementError(f"script d'appel introuvable : {script}", field="script") from None
    ensure_clean(text, f"{script}.txt.j2")
    return [line.strip() for line in text.splitlines() if line.strip()]


def record_call(engine: Engine, call_id: str, outcome: str, today: date, *, actor: str,
                now: datetime | None = None) -> None:
    """Record a call's outcome (audited). A promise or a dispute must be recorded first (their own use cases):
    the call only notes it. RecouvrementError (French) when refused."""
    if outcome not in OUTCOMES:
        raise RecouvrementError("issue d'appel inconnue", field="issue")
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with writing(engine) as conn:
        call = store.get_call(conn, call_id)
        if call is None:
            raise RecouvrementError(f"appel inconnu {call_id!r}", field="appel")
        if call.status != "open":
            raise RecouvrementError(f"cet appel a déjà son issue ({call.status})", field="appel")
        if outcome == "promise" and promise_in_force(desk.promises_of(conn, call.patient_id), today) is None:
            raise RecouvrementError("aucune promesse de paiement en cours pour ce patient : notez-la d'abord "
                                    "(sa date)", field="issue")
        if outcome == "dispute" and not any(desk.dispute_open_on(conn, n) for n in call.invoice_numbers):
            raise RecouvrementError("aucune contestation ouverte sur les factures de cet appel : ouvrez-la "
                                    "d'abord", field="issue")
        if outcome == "wrong_number":
            phone = desk.patient_contacts(conn, [call.patient_id]).get(call.patient_id, ("", "", ""))[2]
            if phone.strip():
                store.mark_phone_unusable(conn, call.patient_id, phone, today)
        if outcome in CLOSING and not store.close_call(conn, call_id, outcome, today):
            raise RecouvrementError("cet appel vient de recevoir son issue par quelqu'un d'autre", field="appel")
        append_event(conn, "call", {"call_id": call_id, "on": today, "outcome": outcome, "level": call.level},
                     patient_id=call.patient_id, at=at, actor=actor)


def call_of(engine: Engine, call_id: str):
    """The stored call (patient, level, invoices, status), or None."""
    with engine.connect() as conn:
        return store.get_call(conn, call_id)
