"""Reminder e-mails: the message, its .eml file, and delivery to a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import email
import socket
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from recouvrement.channels.email import SmtpSettings, build_email, email_bytes, send_email
from recouvrement.render.files import write_atomically
from recouvrement.core.privacy import scan_text
from recouvrement.errors import RecouvrementError
from recouvrement.render.letters import render_html, render_text
from recouvrement.render.views import KINDS, specimen
from recouvrement.scanner import extract_text

SENDER = "Centre de santé des Lilas <facturation@cds-lilas.example>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message_for(kind: str = "relance_1", letter_id: str = "SPECIMEN-0001"):
    view = specimen(kind, letter_id)
    return view, build_email(view, SENDER, render_html(view), render_text(view))


class Collector:
    """An aiosmtpd handler that keeps every envelope it receives."""

    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture
def smtp_server_refusing_logins():
    def refuse(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    controller = Controller(Collector(), hostname="127.0.0.1", port=free_port(),
                            authenticator=refuse, auth_require_tls=False)
    controller.start()
    yield controller
    controller.stop()


def test_the_message_goes_to_the_recipient_with_a_text_and_an_html_part():
    view, message = message_for()
    assert message["To"] == "Mme Claire Martin <claire.martin@example.org>"
    assert message.get_content_type() == "multipart/alternative"
    # The HTML part comes with its QR code image (issue #14): multipart/related (text/html, image/png).
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "multipart/related"]
    assert [part.get_content_type() for part in message.get_payload()[1].iter_parts()] == ["text/html", "image/png"]
    assert view.lines[0].invoice_number in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("kind", KINDS)
def test_the_subject_is_neutral_and_names_the_creditor(kind):
    _, message = message_for(kind)
    assert message["Subject"].startswith("Centre de santé des Lilas — ")
    assert scan_text(message["Subject"]) == []


def test_a_reminder_subject_says_rappel_de_paiement():
    assert message_for("relance_1")[1]["Subject"] == "Centre de santé des Lilas — Rappel de paiement"
    assert message_for("avis_rejet")[1]["Subject"] == "Centre de santé des Lilas — votre facture"


def test_the_message_id_is_stable_for_a_letter_and_differs_between_letters():
    first, again, other = (message_for(letter_id=i)[1]["Message-ID"] for i in ("L-1", "L-1", "L-2"))
    assert first == again != other
    assert first.endswith("@cds-lilas.example>")


def test_a_recipient_without_an_e_mail_address_is_an_error_naming_the_field():
    view = specimen()
    view = dataclasses.replace(view, recipient=dataclasses.replace(view.recipient, email=None))
    with pytest.raises(RecouvrementError, match="recipient.email"):
        build_email(view, SENDER, "<p>x</p>", "x")


def test_an_eml_file_reads_back_as_the_same_message(tmp_path):
    _, message = message_for("mise_en_demeure")
    path = tmp_path / "letter.eml"
    write_atomically(path, message.as_bytes(policy=policy.SMTP))
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == message["Subject"]
    assert parsed["Message-ID"] == message["Message-ID"]
    # The file keeps the CRLF line ends of the wire.
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text == message.get_body(("plain",)).get_content()
    assert "Mise en demeure de payer" in parsed.get_body(("html",)).get_content()
    assert [p.name for p in tmp_path.iterdir()] == ["letter.eml"]      # no part file left


@pytest.mark.parametrize("kind", KINDS)
def test_an_eml_file_of_every_kind_passes_the_privacy_scan(kind, tmp_path):
    path = tmp_path / f"{kind}.eml"
    write_atomically(path, message_for(kind)[1].as_bytes(policy=policy.SMTP))
    assert scan_text(extract_text(path)) == []


def test_a_message_sent_over_smtp_arrives_with_its_recipient_subject_and_both_parts(smtp_server):
    controller, handler = smtp_server
    _, message = message_for("relance_2")
    send_email(message, SmtpSettings(host="127.0.0.1", port=controller.port, sender="bounces@cds-lilas.example"))
    [envelope] = handler.envelopes
    assert envelope.mail_from == "bounces@cds-lilas.example"
    assert envelope.rcpt_tos == ["claire.martin@example.org"]
    received = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert received["To"] == "Mme Claire Martin <claire.martin@example.org>"
    assert received["Subject"] == "Centre de santé des Lilas — Rappel de paiement"
    assert "Deuxième rappel" in received.get_body(("plain",)).get_content()
    assert "Deuxième rappel" in received.get_body(("html",)).get_content()


def test_a_refused_login_is_an_error_that_says_so(smtp_server_refusing_logins):
    settings = SmtpSettings(host="127.0.0.1", port=smtp_server_refusing_logins.port, username="cds",
                            password="wrong", sender="bounces@cds-lilas.example")
    with pytest.raises(RecouvrementError, match="refused the login of 'cds'"):
        send_email(message_for()[1], settings)


def test_a_server_that_does_not_answer_is_an_error_naming_host_and_port():
    port = free_port()  # nothing listens there
    with pytest.raises(RecouvrementError, match=f"cannot connect to SMTP server 127.0.0.1:{port}"):
        send_email(message_for()[1], SmtpSettings(host="127.0.0.1", port=port, sender="a@b.example",
                                                  timeout=5))


def _to(view, name: str, address: str):
    return dataclasses.replace(view, recipient=dataclasses.replace(view.recipient, name=name, email=address))


def test_an_address_list_as_the_recipient_is_refused_when_the_message_is_built_without_echoing_it():
    view = _to(specimen(), "Marc Durand", "marc@ok.example, evil@attacker.example")
    with pytest.raises(RecouvrementError, match="recipient.email") as refused:
        build_email(view, SENDER, "<p>x</p>", "x")
    assert "attacker" not in str(refused.value)


def test_a_cr_lf_in_the_recipient_name_stays_inside_one_display_name():
    view = _to(specimen(), "Marc\r\nBcc: evil@attacker.example", "marc@ok.example")
    message = email.message_from_bytes(build_email(view, SENDER, "<p>x</p>", "x").as_bytes(), policy=policy.default)
    assert message["Bcc"] is None
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [
        ("Marc Bcc evil attacker example", "marc@ok.example")]


def test_a_message_naming_two_recipients_is_refused_before_the_server_sees_it(smtp_server):
    controller, handler = smtp_server
    _, message = message_for()
    message.replace_header("To", "marc@ok.example, evil@attacker.example")
    with pytest.raises(RecouvrementError, match="recipient.email"):
        send_email(message, SmtpSettings(host="127.0.0.1", port=controller.port, sender="bounces@cds-lilas.example"))
    assert handler.envelopes == []


def test_a_message_with_a_bcc_is_refused_before_the_server_sees_it(smtp_server):
    controller, handler = smtp_server
    _, message = message_for()
    message["Bcc"] = "evil@attacker.example"
    with pytest.raises(RecouvrementError, match="exactly one recipient"):
        send_email(message, SmtpSettings(host="127.0.0.1", port=controller.port, sender="bounces@cds-lilas.example"))
    assert handler.envelopes == []


def stdlib_message(view, sender: str, html: str, text: str) -> EmailMessage:
    """The message as channels/email.py built it before issue #16, with the stdlib's EmailMessage (the reference)."""
    from email.headerregistry import Address
    from email.utils import format_datetime
    from datetime import datetime, time
    from recouvrement.channels.email import PARIS, message_id, subject
    from recouvrement.core.contact import display_name
    from recouvrement.render.sepa_qr import qr_data_uri, qr_png
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    local, _, domain = view.recipient.email.partition("@")
    message["To"] = Address(display_name=display_name(view.recipient.name), username=local, domain=domain)
    local, _, domain = view.creditor.email.partition("@")
    message["Reply-To"] = Address(display_name=display_name(view.creditor.name), username=local, domain=domain)
    message["Subject"] = subject(view)
    message["Date"] = format_datetime(datetime.combine(view.date, time(12), tzinfo=PARIS))
    message["Message-ID"] = message_id(view, sender)
    message.set_content(text, subtype="plain", charset="utf-8")
    qr = f"qr.{view.letter_id}@recouvrement"
    message.add_alternative(html.replace(qr_data_uri(view), f"cid:{qr}"), subtype="html", charset="utf-8")
    list(message.iter_parts())[1].add_related(qr_png(view), maintype="image", subtype="png", cid=f"<{qr}>",
                                              filename="qr-virement.png", disposition="inline")
    return message


def read_back(data: bytes) -> tuple:
    """What a reader gets from the message: its headers, decoded, and each part with its content."""
    message = email.message_from_bytes(data, policy=policy.default)
    mailboxes = tuple((name, tuple((a.display_name, a.addr_spec) for a in message[name].addresses))
                      for name in ("From", "To", "Reply-To"))
    headers = mailboxes + tuple((name, str(message[name])) for name in ("Subject", "Date", "Message-ID"))
    parts = []
    for part in message.walk():
        content = None if part.is_multipart() else part.get_content()
        if isinstance(content, str):
            content = content.replace("\r\n", "\n")
        parts.append((part.get_content_type(), part.get_content_charset(), part.get_filename(),
                      part.get_content_disposition(), part["Content-ID"], content))
    return headers, tuple(parts)


@pytest.mark.parametrize("kind", KINDS)
def test_the_light_writer_s_message_reads_back_as_the_stdlib_s_after_an_smtp_server_received_it(kind, smtp_server):
    controller, handler = smtp_server
    view = specimen(kind, "SPECIMEN-0001", invoices=3, guarantor=True)
    view = _to(view, "Zoé Lefèvre-N'Diaye, dite « Zoé »", "zoe@example.org")
    html, text = render_html(view), render_text(view)
    data = email_bytes(view, SENDER, html, text)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"") and max(map(len, data.split(b"\r\n"))) <= 78
    send_email(email.message_from_bytes(data, policy=policy.SMTP),
               SmtpSettings(host="127.0.0.1", port=controller.port, sender="bounces@cds-lilas.example"))
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["zoe@example.org"]
    assert read_back(envelope.original_content) == read_back(data) == read_back(
        stdlib_message(view, SENDER, html, text).as_bytes(policy=policy.SMTP))
