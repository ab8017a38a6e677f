"""The outboxes in the store: letters' e-mails and SMS queued, being sent (claimed by one sender), sent or failed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from recouvrement.db.values import as_utc


def letters_being_sent(conn: Connection) -> list[tuple[str, str | None, datetime | None]]:
    """(letter_id, claimed_by, claimed_at as aware UTC) of the letters marked 'sending'."""
    return [(r[0], r[1], as_utc(r[2])) for r in
            conn.execute(text("SELECT letter_id, claimed_by, claimed_at FROM letter WHERE status = 'sending'"))]


def requeue_letter(conn: Connection, letter_id: str) -> None:
    """A letter being sent goes back to the queue, unclaimed."""
    conn.execute(text("UPDATE letter SET status = 'queued', claimed_by = NULL, claimed_at = NULL "
                      "WHERE letter_id = :l AND status = 'sending'"), {"l": letter_id})


def queued_letter_ids(conn: Connection) -> list[str]:
    """The queued letters, oldest first."""
    return list(conn.execute(text("SELECT letter_id FROM letter WHERE status = 'queued' "
                                  "ORDER BY as_of, letter_id")).scalars())


def claim_letter(conn: Connection, letter_id: str, sender: str, at: datetime) -> tuple[str, str] | None:
    """Mark a queued letter as being sent by `sender` (one more attempt): its (patient_id, folder), or None when
    it was no longer queued (another sender took it)."""
    got = conn.execute(text("UPDATE letter SET status = 'sending', claimed_by = :me, claimed_at = :t, "
                            "attempts = attempts + 1 WHERE letter_id = :l AND status = 'queued'"),
                       {"me": sender, "t": at, "l": letter_id}).rowcount
    if got != 1:
        return None
    row = conn.execute(text("SELECT patient_id, folder FROM letter WHERE letter_id = :l"), {"l": letter_id}).one()
    return row[0], row[1] or ""


def mark_letter_sent(conn: Connection, letter_id: str, sender: str, at: datetime) -> None:
    conn.execute(text("UPDATE letter SET status = 'sent', sent_at = :t, claimed_by = NULL, claimed_at = NULL, "
                      "last_error = NULL WHERE letter_id = :l AND claimed_by = :me"),
                 {"t": at, "l": letter_id, "me": sender})


def give_letter_back(conn: Connection, letter_id: str, sender: str, error: str, permanent: bool,
                     max_attempts: int) -> str:
    """The claimed letter goes back to the queue, or to 'failed' when the refusal is permanent and it had
    `max_attempts` attempts; its status."""
    conn.execute(text("UPDATE letter SET status = CASE WHEN :p AND attempts >= :cap THEN 'failed' ELSE 'queued' "
                      "END, claimed_by = NULL, claimed_at = NULL, last_error = :e "
                      "WHERE letter_id = :l AND claimed_by = :me"),
                 {"p": permanent, "cap": max_attempts, "e": error, "l": letter_id, "me": sender})
    return conn.execute(text("SELECT status FROM letter WHERE letter_id = :l"), {"l": letter_id}).scalar_one()


def outbox_counts(conn: Connection) -> tuple[int, int]:
    """(queued or being sent, failed) e-mails."""
    row = conn.execute(text("SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'sending') THEN 1 ELSE 0 END), 0), "
                            "COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) FROM letter")).one()
    return int(row[0]), int(row[1])


# --- the SMS outbox (table sms_message): the same states and claims as the letters' e-mails -------------

def insert_sms(conn: Connection, *, letter_id: str, patient_id: str, as_of, phone: str, text_: str,
               status: str) -> None:
    conn.execute(text("INSERT INTO sms_message (letter_id, patient_id, as_of, phone, text, status, attempts) "
                      "VALUES (:l, :p, :d, :n, :t, :s, 0)"),
                 {"l": letter_id, "p": patient_id, "d": as_of, "n": phone, "t": text_, "s": status})


def sms_being_sent(conn: Connection) -> list[tuple[str, str | None, datetime | None]]:
    """(letter_id, claimed_by, claimed_at as aware UTC) of the SMS marked 'sending'."""
    return [(r[0], r[1], as_utc(r[2])) for r in
            conn.execute(text("SELECT letter_id, claimed_by, claimed_at FROM sms_message WHERE status = 'sending'"))]


def requeue_sms(conn: Connection, letter_id: str) -> None:
    conn.execute(text("UPDATE sms_message SET status = 'queued', claimed_by = NULL, claimed_at = NULL "
                      "WHERE letter_id = :l AND status = 'sending'"), {"l": letter_id})


def queued_sms_ids(conn: Connection) -> list[str]:
    """The queued SMS, oldest first."""
    return list(conn.execute(text("SELECT letter_id FROM sms_message WHERE status = 'queued' "
                                  "ORDER BY as_of, letter_id")).scalars())


def claim_sms(conn: Connection, letter_id: str, sender: str, at: datetime) -> tuple[str, str, str] | None:
    """Mark a queued SMS as being sent by `sender` (one more attempt): its (patient_id, phone, text), or None
    when another sender took it."""
    got = conn.execute(text("UPDATE sms_message SET status = 'sending', claimed_by = :me, claimed_at = :t, "
                            "attempts = attempts + 1 WHERE letter_id = :l AND status = 'queued'"),
                       {"me": sender, "t": at, "l": letter_id}).rowcount
    if got != 1:
        return None
    row = conn.execute(text("SELECT patient_id, phone, text FROM sms_message WHERE letter_id = :l"),
                       {"l": letter_id}).one()
    return row[0], row[1], row[2]


def mark_sms_sent(conn: Connection, letter_id: str, sender: str, at: datetime, provider_id: str) -> None:
    conn.execute(text("UPDATE sms_message SET status = 'sent', sent_at = :t, provider_id = :id, claimed_by = NULL, "
                      "claimed_at = NULL, last_error = NULL WHERE letter_id = :l AND claimed_by = :me"),
                 {"t": at, "id": provider_id, "l": letter_id, "me": sender})


def give_sms_back(conn: Connection, letter_id: str, sender: str, error: str, failed: bool) -> str:
    """The claimed SMS goes back to the queue, or to 'failed' (the provider refused it); its status."""
    conn.execute(text("UPDATE sms_message SET status = CASE WHEN :f THEN 'failed' ELSE 'queued' END, "
                      "claimed_by = NULL, claimed_at = NULL, last_error = :e WHERE letter_id = :l AND claimed_by = :me"),
                 {"f": failed, "e": error, "l": letter_id, "me": sender})
    return conn.execute(text("SELECT status FROM sms_message WHERE letter_id = :l"), {"l": letter_id}).scalar_one()


def sms_counts(conn: Connection) -> tuple[int, int]:
    """(queued or being sent, failed) SMS."""
    row = conn.execute(text("SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'sending') THEN 1 ELSE 0 END), 0), "
                            "COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) FROM sms_message")).one()
    return int(row[0]), int(row[1])
