"""The e-mail outbox: queued letters are sent one by one, each recorded 'sent' only once the SMTP server
accepted it.

A letter to send is claimed first (status 'sending', claimed by "host:pid", in its own transaction), so two
runs at once never send the same letter: the second finds it claimed and moves on. A run killed while
sending leaves the rest 'queued' and at most the one letter in flight 'sending'; the next run gives that
one back to the queue (its claimer's process is gone from this host, or the claim is older than
ABANDONED_AFTER) and sends it, with the same Message-ID, so a server that had accepted it just before the
kill and a reader's mail program both recognise a copy. A server that cannot be reached, or asks to try
later, stops the sending for this run (the rest stay queued, for the next run); a server that refuses one
message itself (5xx) counts against that letter, which is 'failed' after MAX_ATTEMPTS tries and waits
for a person.

SMS (table sms_message) go the same way, claimed one by one: 'sent' only once the provider answered 2xx with
its message id (channels/sms.py). A 5xx or a timeout is tried again at once (SmsSettings.tries), then stops
this run's SMS (the rest stay queued); a key, an address or a pace the provider refuses stops them too; a
message the provider refuses itself (another 4xx), or a 2xx without an id (it may have gone out), is 'failed'
at once, for a person to look at, and the others go on.
"""

from __future__ import annotations

import email
import email.policy
import functools
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import Connection, Engine

from recouvrement.audit import append_event
from recouvrement.channels import sms as sms_channel
from recouvrement.channels.email import SendError, SmtpSettings, send_email
from recouvrement.config import Settings
from recouvrement.db import outbox as stored
from recouvrement.db.run_lock import is_stale
from recouvrement.db.session import writing
from recouvrement.db.values import as_utc
from recouvrement.errors import RecouvrementError

MAX_ATTEMPTS = 3
ABANDONED_AFTER = timedelta(hours=1)     # one message takes seconds (SMTP timeout 30 s): a claim this old is dead


@dataclass
class OutboxReport:
    sent: int = 0            # by this run
    queued: int = 0          # still waiting after this run
    failed: int = 0          # refused MAX_ATTEMPTS times: a person looks at them
    taken_back: int = 0      # letters left 'sending' by a run that died, queued again
    errors: list[str] = field(default_factory=list)


def sender_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _take_back(engine: Engine, now: datetime | None, being_sent: Callable, requeue: Callable, event: str) -> int:
    """Messages of one outbox left 'sending' by a run that died (or too long ago) go back to its queue, audited."""
    now = as_utc(now or _utc_now())
    with writing(engine) as conn:
        dead = [lid for lid, holder, at in being_sent(conn)
                if at is None or now - at >= ABANDONED_AFTER
                or is_stale(holder or "", at, now, stale_after=timedelta(0))]
        for lid in dead:
            requeue(conn, lid)
            append_event(conn, event, {"letter_id": lid}, at=now)
    return len(dead)


def take_back_abandoned(engine: Engine, now: datetime | None = None) -> int:
    """Letters left 'sending' by a run that died go back to the queue."""
    return _take_back(engine, now, stored.letters_being_sent, stored.requeue_letter, "email_taken_back")


def queued_letters(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return stored.queued_letter_ids(conn)


def _claim(engine: Engine, letter_id: str, me: str, now: datetime) -> tuple[str, str] | None:
    """(patient_id, folder) of the letter if this run got it; None when another run did."""
    with writing(engine) as conn:
        return stored.claim_letter(conn, letter_id, me, now)


def _mark_sent(engine: Engine, letter_id: str, patient_id: str, me: str, now: datetime) -> None:
    with writing(engine) as conn:
        stored.mark_letter_sent(conn, letter_id, me, now)
        append_event(conn, "reminder_sent", {"letter_id": letter_id, "channel": "email"}, patient_id=patient_id)


def _give_back(engine: Engine, letter_id: str, me: str, error: str, permanent: bool) -> str:
    """The letter goes back to the queue, or to 'failed' after MAX_ATTEMPTS refusals; returns its status."""
    with writing(engine) as conn:
        return stored.give_letter_back(conn, letter_id, me, error[:2000], permanent, MAX_ATTEMPTS)


def smtp_settings(settings: Settings) -> SmtpSettings | None:
    """The SMTP server of the settings; None without a host (the e-mails stay as .eml files)."""
    c = settings.smtp
    if not c.host:
        return None
    return SmtpSettings(host=c.host, port=c.port, username=c.username, password=c.password, starttls=c.starttls,
                        ssl=c.ssl, sender=settings.mail_sender())


def sms_settings(settings: Settings) -> sms_channel.SmsSettings | None:
    """The SMS provider of the settings; None without `[sms] url` (the SMS stay as written, not sent)."""
    if not settings.sms.url:
        return None
    return sms_channel.SmsSettings(url=settings.sms.url, api_key=settings.sms_api_key(), sender=settings.sms.sender,
                                   timeout=float(settings.sms.timeout))


class _NotSent(Exception):
    """A message not sent: why (kept on its row), whether trying again could help (not `permanent`: the server or the
    provider, not the message, and the rest of the run's messages wait), and the report's line: `said`, what became
    of the message, then `closing`."""

    def __init__(self, reason: str, permanent: bool, said: str, closing: str = "") -> None:
        super().__init__(reason)
        self.reason, self.permanent, self.said, self.closing = reason[:2000], permanent, said, closing


def _drain(report: OutboxReport, queued: list[str], claim: Callable, deliver: Callable, give_back: Callable,
           mark_sent: Callable) -> None:
    """The one sending loop of both outboxes: each queued message claimed (another run's claim: skipped), delivered,
    then marked sent; not sent, given back (permanent: that message only; else the rest wait for the next run);
    interrupted (SIGTERM, ^C), given back to the queue, not sent as far as we know."""
    me = sender_id()
    for letter_id in queued:
        claimed = claim(letter_id, me)
        if claimed is None:
            continue                       # another run is sending it
        try:
            receipt = deliver(letter_id, claimed)
        except _NotSent as refused:
            status = give_back(letter_id, me, refused.reason, refused.permanent)
            report.errors.append(f"{letter_id} : {refused.said}{status}{refused.closing}")
            if refused.permanent:
                continue
            break
        except BaseException:
            give_back(letter_id, me, "interrupted", False)
            raise
        mark_sent(letter_id, claimed, me, receipt)
        report.sent += 1


def send_queued(engine: Engine, smtp: SmtpSettings, *, send: Callable = send_email,
                clock: Callable[[], datetime] = _utc_now) -> OutboxReport:
    """Send every queued letter (oldest first) until the queue is empty or the server fails us."""
    report = OutboxReport(taken_back=take_back_abandoned(engine, clock()))

    def deliver(letter_id: str, claimed: tuple[str, str]) -> None:
        try:
            data = (Path(claimed[1]) / f"{letter_id}.eml").read_bytes()
            send(email.message_from_bytes(data, policy=email.policy.SMTP), smtp)
        except OSError as exc:             # the .eml was moved away: nothing to send until a person looks
            raise _NotSent(f"cannot read the .eml: {exc.strerror or exc}", True,
                           "e-mail non envoyé, son .eml est illisible (", ")") from exc
        except RecouvrementError as exc:   # a SendError, or a message refused before sending (its recipient)
            raise _NotSent(str(exc), exc.permanent if isinstance(exc, SendError) else True,
                           f"e-mail non envoyé ({exc}) ; ") from exc

    _drain(report, queued_letters(engine), lambda lid, me: _claim(engine, lid, me, clock()), deliver,
           functools.partial(_give_back, engine),
           lambda lid, claimed, me, _: _mark_sent(engine, lid, claimed[0], me, clock()))
    report.queued, report.failed = outbox_counts(engine)
    return report


def outbox_counts(engine_or_conn: Engine | Connection) -> tuple[int, int]:
    """(queued or being sent, failed) e-mails."""
    if isinstance(engine_or_conn, Connection):
        return stored.outbox_counts(engine_or_conn)
    with engine_or_conn.connect() as conn:
        return stored.outbox_counts(conn)


def take_back_abandoned_sms(engine: Engine, now: datetime | None = None) -> int:
    """SMS left 'sending' by a run that died go back to the queue."""
    return _take_back(engine, now, stored.sms_being_sent, stored.requeue_sms, "sms_taken_back")


def send_queued_sms(engine: Engine, settings: sms_channel.SmsSettings, *, send: Callable = sms_channel.send_sms,
                    clock: Callable[[], datetime] = _utc_now) -> OutboxReport:
    """Send every queued SMS (oldest first) until the queue is empty or the provider fails us."""
    report = OutboxReport(taken_back=take_back_abandoned_sms(engine, clock()))
    with engine.connect() as conn:
        queued = stored.queued_sms_ids(conn)

    def claim(letter_id: str, me: str) -> tuple[str, str, str] | None:
        with writing(engine) as conn:
            return stored.claim_sms(conn, letter_id, me, clock())

    def deliver(letter_id: str, claimed: tuple[str, str, str]) -> str:
        try:
            return send(claimed[1], claimed[2], settings)
        except sms_channel.SendError as exc:
            raise _NotSent(str(exc), exc.permanent, f"SMS non envoyé ({exc}) ; ") from exc

    def give_back(letter_id: str, me: str, error: str, permanent: bool) -> str:
        with writing(engine) as conn:
            return stored.give_sms_back(conn, letter_id, me, error, permanent)

    def mark_sent(letter_id: str, claimed: tuple[str, str, str], me: str, provider_id: str) -> None:
        with writing(engine) as conn:
            stored.mark_sms_sent(conn, letter_id, me, clock(), provider_id)
            append_event(conn, "reminder_sent", {"letter_id": letter_id, "channel": "sms",
                                                 "provider_id": provider_id}, patient_id=claimed[0])

    _drain(report, queued, claim, deliver, give_back, mark_sent)
    report.queued, report.failed = sms_counts(engine)
    return report


def sms_counts(engine_or_conn: Engine | Connection) -> tuple[int, int]:
    """(queued or being sent, failed) SMS."""
    if isinstance(engine_or_conn, Connection):
        return stored.sms_counts(engine_or_conn)
    with engine_or_conn.connect() as conn:
        return stored.sms_counts(conn)
