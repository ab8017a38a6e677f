"""Reminder e-mails: build the MIME message of a letter, keep it as .eml, send it over SMTP.

The subject is neutral ("<creditor> — votre facture" / "Rappel de paiement"): a mailbox preview or a
shared inbox must reveal nothing medical. The Message-ID derives from the letter id, so a letter
sent twice (a retry) is recognisable as the same message.
The letter's SEPA transfer QR code travels as an inline PNG part (multipart/related, cid:), which mail
clients show, where the PDF's data: URI would be blocked.

A message has exactly one recipient, a bare address valid by core.contact's rule, checked when the
message is built and again when it is sent (the envelope names that address and no other); names
are put on one line first, so nothing from an input file can add a header or a recipient.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import functools
import hashlib
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from datetime import datetime, time
from email.utils import format_datetime, formataddr, parseaddr
from zoneinfo import ZoneInfo

from recouvrement.core.contact import display_name, is_valid_email, one_line
from recouvrement.errors import RecouvrementError
from recouvrement.render.sepa_qr import qr_data_uri, qr_png
from recouvrement.render.views import LetterView

PARIS = ZoneInfo("Europe/Paris")
_SUBJECTS = {
    "avis_rejet": "votre facture",
    "avant_echeance": "votre facture arrive à échéance",
    "relance_1": "Rappel de paiement",
    "relance_2": "Rappel de paiement",
    "mise_en_demeure": "Mise en demeure de payer",
    "proposition_echeancier": "Proposition de paiement en plusieurs fois",
}


def subject(view: LetterView) -> str:
    """'Centre de santé des Lilas — Rappel de paiement': the creditor and the purpose, nothing else."""
    return f"{one_line(view.creditor.name)} — {_SUBJECTS[view.kind]}"


def message_id(view: LetterView, sender: str) -> str:
    """A stable Message-ID: the same letter always gets the same id (the domain is the sender's)."""
    domain = _sender_domain(sender)
    digest = hashlib.sha256(view.letter_id.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


@functools.lru_cache(maxsize=64)
def _sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "recouvrement.invalid"


def build_email(view: LetterView, sender: str, html: str, text: str) -> EmailMessage:
    """The letter as a multipart/alternative e-mail (text, then HTML with its QR code) to the recipient's address:
    `email_bytes` read back by the standard parser."""
    data = email_bytes(view, sender, html, text).replace(b"\r\n", b"\n")  # in memory, lines end with \n
    message: EmailMessage = email.message_from_bytes(data, _class=EmailMessage, policy=email.policy.SMTP)
    return message


def email_bytes(view: LetterView, sender: str, html: str, text: str) -> bytes:
    """The letter's e-mail as .eml bytes (CRLF line ends, as sent): multipart/alternative of the text (quoted-printable)
    and a multipart/related of the HTML (quoted-printable) and its QR code (an inline PNG, base64).

    Written directly, field by field, in standard MIME (RFC 2045-2047, 5322): the stdlib's EmailMessage builds a
    structured object of every header and folds it, two thirds of a letter's e-mail time (issue #16); the standard
    parser reads this message back to the same headers and parts (tests/channels/test_email.py).
    """
    if not view.recipient.email:
        raise RecouvrementError(f"letter {view.letter_id}: the recipient has no e-mail address",
                                field="recipient.email")
    to = _mailbox(view.recipient.name, view.recipient.email, f"letter {view.letter_id}: the recipient",
                  "recipient.email", "To")
    reply_to = _mailbox(view.creditor.name, view.creditor.email, "the creditor", "creditor.email", "Reply-To")
    qr = _qr_id(view)
    outer, inner = _BOUNDARIES
    headers = [
        ("From", _address_header(sender)),
        ("To", to),
        ("Reply-To", reply_to),
        ("Subject", _encoded(subject(view), "Subject")),
        # The letter's date at noon, Paris time: the message is stable, whatever the hour it is built.
        ("Date", format_datetime(datetime.combine(view.date, time(12), tzinfo=PARIS))),
        ("Message-ID", message_id(view, sender)),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{outer}"'),
    ]
    out = [f"{name}: {value}".encode("ascii") for name, value in headers]
    out += [b"", f"--{outer}".encode("ascii"), *_TEXT_HEADERS.split(b"\n"), b"", *_qp_lines(text),
            f"--{outer}".encode("ascii"), f'Content-Type: multipart/related; boundary="{inner}"'.encode("ascii"), b"",
            f"--{inner}".encode("ascii"), *_HTML_HEADERS.split(b"\n"), b"",
            *_qp_lines(email_html(view, html)),
            f"--{inner}".encode("ascii"), b"Content-Type: image/png", b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: inline; filename="qr-virement.png"', f"Content-ID: <{qr}>".encode("ascii"), b"",
            *_base64_lines(qr_png(view)), f"--{inner}--".encode("ascii"), f"--{outer}--".encode("ascii"), b""]
    return b"\r\n".join(out)


def email_html(view: LetterView, html: str) -> str:
    """The letter's HTML as its e-mail carries it: the QR code's data: URI, which mail clients block, replaced by
    the inline image's cid: (an attribute the privacy scan does not read: the text is the letter's own)."""
    return html.replace(qr_data_uri(view), f"cid:{_qr_id(view)}")


def _qr_id(view: LetterView) -> str:
    return f"qr.{view.letter_id}@recouvrement"


# "=_" never occurs in quoted-printable or base64 text: the boundaries cannot appear inside a part, so they need not
# differ from one message to the next; the same two in every message let a reader compile its boundary patterns once
# (the stdlib parser compiled two regular expressions a message, a fifth of the e-mail scan: issue #16).
_BOUNDARIES = ("=_alt_recouvrement", "=_rel_recouvrement")
_TEXT_HEADERS = b'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable'
_HTML_HEADERS = b'Content-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable'


def _qp_lines(body: str) -> list[bytes]:
    """A text body as quoted-printable lines (at most 76 characters, soft breaks), ending with a line break."""
    data = b"\n".join(body.encode("utf-8").splitlines()) + b"\n"   # any line end, as the stdlib's set_content
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).split(b"\n")


def _base64_lines(data: bytes) -> list[bytes]:
    encoded = base64.b64encode(data)
    return [encoded[i:i + 76] for i in range(0, len(encoded), 76)] + [b""]


@functools.lru_cache(maxsize=4096)
def _encoded(value: str, name: str) -> str:
    """A header's text, RFC 2047-encoded (UTF-8) when it is not plain ASCII, folded at 78 characters (kept: the
    subject and the creditor's Reply-To are the same in a night's messages, and the stdlib's encoder is slow)."""
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


@functools.lru_cache(maxsize=64)
def _address_header(value: str) -> str:
    """The sender as given ("Name <address>" or a bare address)."""
    name, address = parseaddr(value)
    if not address:
        return one_line(value)
    return _address(one_line(name), address, "From")


@functools.lru_cache(maxsize=4096)
def _address(name: str, address: str, header: str) -> str:
    """A mailbox as a header's text: the display name quoted when it needs to be; RFC 2047-encoded (UTF-8) when it
    is not plain ASCII or too long for one line, then folded, the address on the last line."""
    if not name:
        return address
    plain = formataddr((name, address))
    if name.isascii() and len(header) + 2 + len(plain) <= 78:
        return plain
    encoded = Header(name, "utf-8", header_name=header).encode(linesep="\r\n")
    last = encoded.rpartition("\r\n")[2] if "\r\n" in encoded else f"{header}: {encoded}"
    gap = " " if len(last) + len(address) + 3 <= 78 else "\r\n "
    return f"{encoded}{gap}<{address}>"


def _mailbox(name: str, address: str, whose: str, field: str, header: str) -> str:
    """One display name (on one line) and one valid address, as a header's text; RecouvrementError, without the
    value, otherwise."""
    if not is_valid_email(address):
        raise RecouvrementError(f"{whose}'s e-mail address is not one valid address", field=field)
    return _address(display_name(name or ""), address, header)


def envelope_recipient(message: EmailMessage) -> str:
    """The one address a message may be delivered to: its only To (no Cc, no Bcc), valid by core.contact."""
    if message.get_all("Cc") or message.get_all("Bcc") or len(message.get_all("To") or []) != 1:
        raise RecouvrementError("the message must have exactly one recipient", field="recipient.email")
    header = email.policy.SMTP.header_factory("To", str(message["To"]))
    found = [address.addr_spec for address in header.addresses]
    if header.defects or len(found) != 1 or not is_valid_email(found[0]):
        raise RecouvrementError("the message's recipient is not one valid e-mail address", field="recipient.email")
    return found[0]


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    """How to reach the mail server; `ssl` is implicit TLS (port 465), `starttls` upgrades port 587/25.

    `sender` is the envelope sender (MAIL FROM); the From header is the message's own.
    """

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    sender: str
    timeout: float = 30.0


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.ssl:
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                context=ssl.create_default_context())
    client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    if settings.starttls:
        client.starttls(context=ssl.create_default_context())
    return client


class SendError(RecouvrementError):
    """A message not sent. `permanent`: the server refused this message itself (a 5xx reply to its
    recipients or its content), so sending it again would be refused again; otherwise the server could not
    be reached, refused the login or asked to try later: the next message would fare no better now."""

    def __init__(self, message: str, *, field: str, permanent: bool = False) -> None:
        super().__init__(message, field=field)
        self.permanent = permanent


def send_email(message: EmailMessage, settings: SmtpSettings) -> None:
    """Send one message; returns only once the server accepted it. A connection, TLS, login or refusal
    problem is a SendError saying which."""
    where = f"SMTP server {settings.host}:{settings.port}"
    recipient = envelope_recipient(message)
    try:
        with _connect(settings) as client:
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(message, from_addr=settings.sender, to_addrs=[recipient])
    except smtplib.SMTPAuthenticationError as error:
        raise SendError(f"{where} refused the login of {settings.username!r}: "
                        f"{_reply(error)}", field="smtp.username") from None
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise SendError(f"{where} refused the recipient(s) {', '.join(error.recipients)}", field="recipient.email",
                        permanent=all(code >= 500 for code in codes)) from None
    except smtplib.SMTPSenderRefused as error:      # the envelope sender: the settings, not this message
        raise SendError(f"{where} refused the sender: {_reply(error)}", field="smtp.sender") from None
    except smtplib.SMTPDataError as error:
        raise SendError(f"{where}: sending failed: {_reply(error)}", field="smtp",
                        permanent=error.smtp_code >= 500) from None
    except smtplib.SMTPException as error:
        raise SendError(f"{where}: sending failed: {error}", field="smtp") from None
    except ssl.SSLError as error:
        raise SendError(f"{where}: TLS failed: {error.reason or error}", field="smtp") from None
    except (OSError, socket.timeout) as error:
        raise SendError(f"cannot connect to {where}: {error.strerror or error}", field="smtp.host") from None


def _reply(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) \
        else str(error.smtp_error)
    return f"{error.smtp_code} {text}"
