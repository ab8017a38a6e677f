"""Reminder SMS: the short neutral text of a letter, and its sending through Brevo's transactional SMS API.

The text says only that a balance remains to be paid, the clinic's number to call and the letter's payment
reference (its RF reference, no link): no amount, no invoice, no care. It is written in the GSM 03.38
alphabet (7 bits: 160 characters in one segment); a name with other letters is transliterated (``ï`` → ``i``),
and the greeting is left out when it would take the text over one segment.

Provider: **Brevo** (ex-Sendinblue, Paris), ``POST https://api.brevo.com/v3/transactionalSMS/send`` with the
headers ``api-key: <key>``, ``accept`` and ``content-type: application/json`` and the body::

    {"sender": "CentreLilas", "recipient": "33612345678", "content": "…", "type": "transactional",
     "unicodeEnabled": false}

(``recipient``: the E.164 number without its ``+``). It answers ``201`` with ``{"messageId": 1511882900176220}``.
A message is sent only once the provider answered 2xx *with* its id. Anything else is a SendError saying
whether it is that message (``permanent``: a 4xx about the request, or a 2xx without an id — it may have
gone out, so it is never sent again by itself) or the provider (5xx, timeout, connection, a refused key, too
many requests: the message waits for the next try). The API key travels in a header only: never in a URL,
an error or a log.
"""

from __future__ import annotations

import json
import socket
import time
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from recouvrement.core.contact import e164, one_line
from recouvrement.errors import RecouvrementError

# GSM 03.38 basic character set (the escape table aside): what fits 160 to a segment.
GSM7 = frozenset("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
SEGMENT = 160
# Not the message: the key, the endpoint or the pace is wrong; the next message would fare no better.
_PROVIDER_SIDE = {401, 403, 404, 405, 407, 408, 429}


def gsm7(text: str) -> str:
    """The text in the GSM 7-bit alphabet: typographic quotes and dashes made plain, other letters without
    their accents (``ç`` → ``c``, ``ê`` → ``e``, ``œ`` → ``oe``), anything else dropped.

    >>> gsm7("Éloïse Lefèvre-Françoise, l’œil")
    "Éloise Lefèvre-Francoise, l'oeil"
    """
    plain = text.translate({0x2019: "'", 0x2018: "'", 0x201C: '"', 0x201D: '"', 0x2013: "-", 0x2014: "-",
                            0x00A0: " ", 0x202F: " ", 0x0153: "oe", 0x0152: "OE", 0x00AB: '"', 0x00BB: '"'})
    out = []
    for char in plain:
        if char in GSM7:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char)
        out.append("".join(c for c in base if c in GSM7 and not unicodedata.combining(c)))
    return "".join(out)


def sms_text(*, creditor: str, phone: str, reference: str, recipient: str = "") -> str:
    """The reminder SMS, in French, in one segment when it can be.

    >>> text = sms_text(creditor="Centre de santé des Lilas", phone="+33142000000",
    ...                 reference="RF47L20261123P0000291", recipient="Éloïse Lefèvre")
    >>> print(text)
    Bonjour Éloise Lefèvre, un solde reste à régler auprès de Centre de santé des Lilas. Pour payer ou en parler : 01 42 00 00 00. Réf. RF47L20261123P0000291
    >>> len(text) <= SEGMENT
    True
    """
    number = _national(phone)
    body = (f"un solde reste à régler auprès de {one_line(creditor)}. Pour payer ou en parler : {number}. "
            f"Réf. {reference}")
    greeted = gsm7(f"Bonjour {one_line(recipient)}, {body}") if recipient.strip() else ""
    if greeted and len(greeted) <= SEGMENT:
        return greeted
    return gsm7("Bonjour, " + body)


def _national(phone: str) -> str:
    """A French number as people write it (01 42 00 00 00); another country's in E.164."""
    number = e164(phone) or phone
    if number.startswith("+33") and len(number) == 12:
        digits = "0" + number[3:]
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    return number


@dataclass(frozen=True, kw_only=True)
class SmsSettings:
    """How to reach the provider. `api_key` is kept out of repr (never printed)."""

    url: str
    api_key: str = field(repr=False)
    sender: str
    timeout: float = 15.0
    tries: int = 3                 # a 5xx or a timeout is tried again at once, this many times in all
    pause: float = 0.5             # seconds before the second try (doubled each time)


class SendError(RecouvrementError):
    """An SMS not sent (see the module). `permanent`: the provider refused this message itself; `retry`: a 5xx
    or a timeout, tried again at once."""

    def __init__(self, message: str, *, permanent: bool = False, retry: bool = False) -> None:
        super().__init__(message, field="sms")
        self.permanent, self.retry = permanent, retry


def send_sms(phone: str, text: str, settings: SmsSettings) -> str:
    """Send one SMS; returns the provider's message id once it accepted it. A 5xx or a timeout is tried again
    (settings.tries in all) before giving up; every failure is a SendError, never echoing the number or the
    text."""
    number = e164(phone)
    if number is None:
        raise SendError("numéro de mobile invalide", permanent=True)
    body = json.dumps({"sender": settings.sender, "recipient": number.lstrip("+"), "content": text,
                       "type": "transactional", "unicodeEnabled": False}).encode("utf-8")
    pause = settings.pause
    for attempt in range(1, settings.tries + 1):
        try:
            return _post(settings, body)
        except SendError as error:
            if not error.retry or attempt == settings.tries:
                raise
        time.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable")


def _post(settings: SmsSettings, body: bytes) -> str:
    request = urllib.request.Request(settings.url, data=body, method="POST", headers={
        "api-key": settings.api_key, "accept": "application/json", "content-type": "application/json"})
    where = "fournisseur SMS"
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            status, payload = response.status, response.read(65536)
    except urllib.error.HTTPError as error:
        status = error.code
        if status >= 500:
            raise SendError(f"{where} : erreur {status} du serveur, nouvel essai plus tard", retry=True) from None
        if status in _PROVIDER_SIDE:
            raise SendError(f"{where} : requête refusée ({status} : clé, adresse ou cadence) ; "
                            "les SMS restent en attente") from None
        raise SendError(f"{where} : message refusé ({status})", permanent=True) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        kind = "délai dépassé" if isinstance(reason, (socket.timeout, TimeoutError)) else "injoignable"
        raise SendError(f"{where} {kind}, nouvel essai plus tard", retry=True) from None
    if not 200 <= status < 300:
        raise SendError(f"{where} : réponse inattendue ({status})", permanent=True)
    try:
        message_id = json.loads(payload.decode("utf-8")).get("messageId")
    except (ValueError, UnicodeDecodeError, AttributeError):
        message_id = None
    if message_id in (None, ""):
        # Accepted or not, we cannot tell: never sent again by itself (a person checks the provider's log).
        raise SendError(f"{where} : réponse {status} sans identifiant de message, à vérifier", permanent=True)
    return str(message_id)

