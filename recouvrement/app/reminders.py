"""The day's reminders and their sending, composed: what `recouvrement remind` and the nightly run call.

A composer (like app.nightly): the reminders (app.remind.run_remind), then the outboxes (app.outbox). Apart from
the nightly run so that `recouvrement remind` loads neither the importers nor the agency's nor the reconcile's code.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from recouvrement.app.outbox import send_queued, send_queued_sms, sms_settings, smtp_settings
from recouvrement.app.remind import RemindReport, run_remind
from recouvrement.config import Settings
from recouvrement.rules import Rules, by_email


def remind_and_send(engine: Engine, settings: Settings, as_of: date, out_dir: Path, *, dry_run: bool = False,
                    single_pdf: bool = False, rules: Rules | None = None) -> RemindReport:
    """The day's reminders (app.remind.run_remind), then the outboxes sent (app.outbox.send_queued,
    send_queued_sms): this run's e-mails and SMS and any a killed run left queued. Without SMTP settings the
    e-mails stay as .eml files, without `[sms] url` the SMS as <letter>.sms.txt."""
    report = run_remind(engine, settings, as_of, out_dir, dry_run=dry_run, single_pdf=single_pdf, rules=rules)
    if not dry_run:
        _send_outbox(engine, settings, Path(out_dir), report)
        _send_sms(engine, settings, Path(out_dir), report)
    return report


def _send_sms(engine: Engine, settings: Settings, out_dir: Path, report: RemindReport) -> None:
    texted = any(w.sms for w in report.letters)
    provider = sms_settings(settings)
    if provider is None:
        if texted:
            report.sms_note = f"SMS écrits dans {out_dir}, non envoyés (pas de réglages [sms])"
        return
    sent = send_queued_sms(engine, provider)
    report.errors.extend(sent.errors)
    report.sms_sent, report.sms_queued, report.sms_failed = sent.sent, sent.queued, sent.failed
    if sent.sent or sent.queued or sent.failed or texted:
        report.sms_note = _sent_note(f"{sent.sent} SMS envoyé(s)", sent, "refusé(s) par le fournisseur, à traiter")


def _send_outbox(engine: Engine, settings: Settings, out_dir: Path, report: RemindReport) -> None:
    emailed = any(by_email(w.channel) for w in report.letters)
    smtp = smtp_settings(settings)
    if smtp is None:
        if emailed:
            report.email_note = f"e-mails écrits dans {out_dir}, non envoyés (pas de réglages SMTP)"
        return
    sent = send_queued(engine, smtp)
    report.errors.extend(f"{e} ; le .eml est conservé" for e in sent.errors)
    report.emails_sent, report.emails_queued, report.emails_failed = sent.sent, sent.queued, sent.failed
    if sent.sent or sent.queued or sent.failed or emailed:
        report.email_note = _sent_note(f"{sent.sent} e-mail(s) envoyé(s) par {smtp.host}", sent,
                                       "refusé(s) pour de bon, à traiter")


def _sent_note(done: str, sent, refused: str) -> str:
    """What a channel's sending did, said to the clinic: what was sent, what waits, what was refused."""
    return done + (f" ; {sent.queued} en attente pour le prochain run" if sent.queued else "") + (
        f" ; {sent.failed} {refused}" if sent.failed else "")
