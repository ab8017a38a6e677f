"""Reminder e-mails: always kept as .eml, sent to a real SMTP server (aiosmtpd) when one is configured."""

from __future__ import annotations

import email
import email.policy
import socket
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from recouvrement.app.nightly import remind_and_send
from recouvrement.app.remind import run_remind
from recouvrement.config import Smtp
from tests.app.test_remind import MONDAY, invoice, load, with_creditor

EMAIL_ROW = invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00", email="claire.martin@example.org")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def test_without_smtp_settings_the_email_is_written_not_sent(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [EMAIL_ROW])
    report = remind_and_send(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert [(w.channel, w.file) for w in report.letters] == [("email", "L20250602-P1-1.eml")]
    assert (tmp_path / "out" / "L20250602-P1-1.eml").exists()
    assert report.email_note == f"e-mails écrits dans {tmp_path / 'out'}, non envoyés (pas de réglages SMTP)"
    assert report.batch_pdf is None  # an e-mail-only reminder is not printed


def test_with_smtp_settings_the_server_receives_the_reminder(engine, settings, tmp_path, smtp_server):
    inbox, port = smtp_server
    load(engine, settings, tmp_path, [EMAIL_ROW])
    configured = replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=port, sender="relances@lilas.example"))
    report = remind_and_send(engine, configured, MONDAY, tmp_path / "out")
    assert report.emails_sent == 1 and report.errors == []
    (mail_from, recipients, content), = inbox.messages
    assert mail_from == "relances@lilas.example" and recipients == ["claire.martin@example.org"]
    message = email.message_from_bytes(content, policy=email.policy.default)
    body = message.get_body(("plain",)).get_content()
    assert "F2025-000201" in body and "45,00" in body
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM letter")).scalar_one() == "sent"


def test_the_reminders_alone_queue_the_email_and_the_composer_sends_it(engine, settings, tmp_path, smtp_server):
    inbox, port = smtp_server
    load(engine, settings, tmp_path, [EMAIL_ROW])
    configured = replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=port, sender="relances@lilas.example"))
    report = run_remind(engine, configured, MONDAY, tmp_path / "out")
    assert inbox.messages == [] and report.emails_sent == 0 and len(report.letters) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM letter")).scalar_one() == "queued"
    assert remind_and_send(engine, configured, MONDAY, tmp_path / "out").emails_sent == 1
    assert len(inbox.messages) == 1


def test_a_second_run_the_same_day_sends_no_second_email(engine, settings, tmp_path, smtp_server):
    inbox, port = smtp_server
    load(engine, settings, tmp_path, [EMAIL_ROW])
    configured = replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=port, sender="relances@lilas.example"))
    remind_and_send(engine, configured, MONDAY, tmp_path / "out")
    remind_and_send(engine, configured, MONDAY, tmp_path / "out")
    assert len(inbox.messages) == 1


def test_an_unreachable_server_leaves_the_letter_queued_and_reports_it(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [EMAIL_ROW])
    configured = replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=_free_port(), sender="a@b.example"))
    report = remind_and_send(engine, configured, MONDAY, tmp_path / "out")
    assert report.emails_sent == 0 and len(report.errors) == 1 and report.emails_queued == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM letter")).scalar_one() == "queued"
