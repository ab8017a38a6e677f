"""Letters at the desk: the ones waiting for a person's approval, a letter's preview (its stored HTML) and its
PDF, approval (audited with the user). Read from the files the reminder run wrote, never re-decided.

A letter's PDF is its own file when the run wrote one (single-PDF mode), else made from its stored HTML:
never the day's print batch, which holds other patients' letters. The stored HTML is checked against the
SHA-256 recorded with the letter before it is shown.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine

from recouvrement.audit import append_event
from recouvrement.db import letter_desk
from recouvrement.db.letter_desk import BatchRow, LetterRow
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError

RECENT_DAYS = 31


def letters_to_approve(engine: Engine, today: date) -> list[LetterRow]:
    with engine.connect() as conn:
        return letter_desk.letters_to_approve(conn, today - timedelta(days=RECENT_DAYS))


def letter_row(engine: Engine, letter_id: str) -> LetterRow | None:
    with engine.connect() as conn:
        return letter_desk.letter(conn, letter_id)


def _html_path(row: LetterRow) -> Path:
    if not row.folder:
        raise RecouvrementError("les fichiers de ce courrier ne sont pas connus", field="courrier")
    return Path(row.folder) / f"{row.letter_id}.html"


def letter_html(engine: Engine, row: LetterRow) -> str:
    """The letter's HTML as written by the run; refused when missing or changed since (the SHA-256 recorded
    with the letter, or in the run's audit event for an e-mailed letter)."""
    path = _html_path(row)
    try:
        data = path.read_bytes()
    except OSError:
        raise RecouvrementError("le fichier de ce courrier est introuvable (dossier déplacé ?)", field="courrier") from None
    expected: str | None
    if row.file == path.name:
        expected = row.sha256
    else:
        with engine.connect() as conn:
            expected = letter_desk.recorded_digests(conn, row.letter_id, row.patient_id).get(path.name)
    if hashlib.sha256(data).hexdigest() != expected:
        raise RecouvrementError("le fichier de ce courrier a été modifié depuis son envoi : il n'est pas montré",
                                field="courrier")
    return data.decode("utf-8")


def letter_pdf(engine: Engine, row: LetterRow) -> bytes:
    """The letter's own PDF: the file the run wrote, else made from its (checked) HTML."""
    own = _html_path(row).with_suffix(".pdf")
    if own.is_file():
        data = own.read_bytes()
        with engine.connect() as conn:
            expected = letter_desk.recorded_digests(conn, row.letter_id, row.patient_id).get(own.name)
        if hashlib.sha256(data).hexdigest() != expected:
            raise RecouvrementError("le PDF de ce courrier a été modifié depuis son envoi : il n'est pas montré",
                                    field="courrier")
        return data
    from recouvrement.render.pdf import render_pdf
    return render_pdf(letter_html(engine, row))


def approve_letters(engine: Engine, letter_ids: list[str], *, actor: str, now: datetime | None = None) -> int:
    """Approve these letters (each audited); returns how many were newly approved."""
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    done = 0
    with writing(engine) as conn:
        for letter_id in dict.fromkeys(letter_ids):
            row = letter_desk.letter(conn, letter_id)
            if row is None:
                raise RecouvrementError(f"courrier inconnu {letter_id!r}", field="courrier")
            if letter_desk.record_approval(conn, letter_id, actor, at):
                append_event(conn, "letter_approved", {"letter_id": letter_id, "sha256": row.sha256},
                             patient_id=row.patient_id, at=at, actor=actor)
                done += 1
    return done


def print_batches(engine: Engine, days: list[date]) -> list[BatchRow]:
    with engine.connect() as conn:
        return letter_desk.print_batches(conn, days)


def batch_pdf(engine: Engine, name: str) -> bytes | None:
    """The day's print batch PDF as written (checked against its recorded SHA-256); None for an unknown batch."""
    with engine.connect() as conn:
        batch = letter_desk.print_batch(conn, name)
    if batch is None:
        return None
    try:
        data = (Path(batch.folder) / batch.name).read_bytes()
    except OSError:
        raise RecouvrementError("le PDF de ce lot est introuvable (dossier déplacé ?)", field="lot") from None
    if hashlib.sha256(data).hexdigest() != batch.sha256:
        raise RecouvrementError("le PDF de ce lot a été modifié depuis qu'il a été écrit : il n'est pas montré",
                                field="lot")
    return data
