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

import email.policy
import hashlib
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from datetime import datetime, time
from email.utils import format_datetime, parseaddr
from pathlib import Path
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
    domain = parseaddr(sender)[1].rpartition("@")[2] or "recouvrement.invalid"
    digest = hashlib.sha256(view.letter_id.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build_email(view: LetterView, sender: str, html: str, text: str) -> EmailMessage:
    """The letter as a multipart/alternative e-mail (text, then HTML) to the recipient's address."""
    if not view.recipient.email:
        raise RecouvrementError(f"letter {view.letter_id}: the recipient has no e-mail address",
                                field="recipient.email")
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = _mailbox(view.recipient.name, view.recipient.email, f"letter {view.letter_id}: the recipient",
                             "recipient.email")
    message["Reply-To"] = _mailbox(view.creditor.name, view.creditor.email, "the creditor", "creditor.email")
    message["Subject"] = subject(view)
    # The letter's date at noon, Paris time: the message is stable, whatever the hour it is built.
    message["Date"] = format_datetime(datetime.combine(view.date, time(12), tzinfo=PARIS))
    message["Message-ID"] = message_id(view, sender)
    message.set_content(text, subtype="plain", charset="utf-8")
    qr = f"qr.{view.letter_id}@recouvrement"
    message.add_alternative(html.replace(qr_data_uri(view), f"cid:{qr}"), subtype="html", charset="utf-8")
    html_part = list(message.iter_parts())[1]
    html_part.add_related(qr_png(view), maintype="image", subtype="png", cid=f"<{qr}>",
                          filename="qr-virement.png", disposition="inline")
    return message


def _mailbox(name: str, address: str, whose: str, field: str) -> Address:
    """One display name (on one line) and one valid address; RecouvrementError, without the value, otherwise."""
    if not is_valid_email(address):
        raise RecouvrementError(f"{whose}'s e-mail address is not one valid address", field=field)
    local, _, domain = address.partition("@")
    return Address(display_name=display_name(name or ""), username=local, domain=domain)


def envelope_recipient(message: EmailMessage) -> str:
    """The one address a message may be delivered to: its only To (no Cc, no Bcc), valid by core.contact."""
    if message.get_all("Cc") or message.get_all("Bcc") or len(message.get_all("To") or []) != 1:
        raise RecouvrementError("the message must have exactly one recipient", field="recipient.email")
    header = email.policy.SMTP.header_factory("To", str(message["To"]))
    found = [address.addr_spec for address in header.addresses]
    if header.defects or len(found) != 1 or not is_valid_email(found[0]):
        raise RecouvrementError("the message's recipient is not one valid e-mail address", field="recipient.email")
    return found[0]


def write_eml(message: EmailMessage, path: Path) -> None:
    """The message as an .eml file (CRLF line ends, as sent), written whole or not at all."""
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(message.as_bytes(policy=email.policy.SMTP))
    partial.replace(path)


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
