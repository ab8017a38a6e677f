"""The SMS channel against a local HTTP server standing in for Brevo's transactional SMS API: the request's
shape, 'sent' only with the provider's id, a 5xx tried again, a 4xx refusing that message; the text; the
[sms] settings."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recouvrement.channels.sms import GSM7, SEGMENT, SendError, SmsSettings, gsm7, send_sms, sms_text
from recouvrement.config import load_settings
from recouvrement.errors import RecouvrementError

KEY = "xkeysib-test-0123456789abcdef"


class Provider:
    """A local stand-in for the provider: answers each POST with the next (status, body) of `script` (then the
    last one again), records what it accepted; `hold` (1-based) blocks that request until `release` is set."""

    def __init__(self, script: list[tuple[int, dict | None]] | None = None, hold: int | None = None) -> None:
        self.script = list(script or [(201, None)])
        self.requests: list[dict] = []       # every request: headers and JSON body
        self.accepted: list[dict] = []       # bodies answered 2xx with an id
        self.hold, self.holding, self.release = hold, threading.Event(), threading.Event()
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:       # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with provider.lock:
                    provider.requests.append({"path": self.path, "body": body,
                                              "headers": {k.lower(): v for k, v in self.headers.items()}})
                    seen = len(provider.requests)
                    status, answer = provider.script[min(seen, len(provider.script)) - 1]
                if provider.hold == seen:
                    provider.holding.set()
                    provider.release.wait(60)
                    status, answer = 503, {"code": "unavailable"}
                if answer is None and 200 <= status < 300:
                    answer = {"messageId": 1511882900176220 + seen}
                if 200 <= status < 300 and answer and "messageId" in answer:
                    with provider.lock:
                        provider.accepted.append(body)
                data = json.dumps(answer or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v3/transactionalSMS/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def settings(self, **kw) -> SmsSettings:
        return SmsSettings(url=self.url, api_key=KEY, sender="CentreLilas", timeout=kw.pop("timeout", 5.0),
                           pause=0.01, **kw)


@pytest.fixture
def provider():
    started: list[Provider] = []

    def start(*args, **kw) -> Provider:
        started.append(Provider(*args, **kw))
        return started[-1]
    yield start
    for server in started:
        server.stop()


TEXT = sms_text(creditor="Centre de santé des Lilas", phone="01 42 00 00 00", reference="RF47L20250602P1",
                recipient="Claire Martin")


def test_an_accepted_sms_returns_the_providers_id_and_speaks_brevos_api(provider):
    server = provider()
    assert send_sms("06 12 34 56 78", TEXT, server.settings()) == "1511882900176221"
    request = server.requests[0]
    assert request["path"] == "/v3/transactionalSMS/send"
    assert request["headers"]["api-key"] == KEY and request["headers"]["content-type"] == "application/json"
    assert request["body"] == {"sender": "CentreLilas", "recipient": "33612345678", "content": TEXT,
                               "type": "transactional", "unicodeEnabled": False}


def test_a_server_error_is_tried_again_and_the_second_answer_counts(provider):
    server = provider([(500, {"code": "internal"}), (201, None)])
    assert send_sms("+33612345678", TEXT, server.settings()) == "1511882900176222"
    assert len(server.requests) == 2 and len(server.accepted) == 1


def test_a_provider_that_keeps_failing_is_a_temporary_error_after_three_tries(provider):
    server = provider([(502, None)])
    with pytest.raises(SendError) as caught:
        send_sms("+33612345678", TEXT, server.settings())
    assert not caught.value.permanent and len(server.requests) == 3


def test_a_4xx_refuses_that_message_for_good_without_echoing_number_text_or_key(provider):
    server = provider([(400, {"code": "invalid_parameter", "message": "invalid recipient"})])
    with pytest.raises(SendError) as caught:
        send_sms("+33612345678", TEXT, server.settings())
    message = str(caught.value)
    assert caught.value.permanent and len(server.requests) == 1
    assert "612345678" not in message and "solde" not in message and KEY not in message


def test_a_refused_key_is_not_the_messages_fault(provider):
    server = provider([(401, {"code": "unauthorized"})])
    with pytest.raises(SendError) as caught:
        send_sms("+33612345678", TEXT, server.settings())
    assert not caught.value.permanent and KEY not in str(caught.value)


def test_a_2xx_without_an_id_is_never_counted_as_sent(provider):
    server = provider([(201, {})])
    with pytest.raises(SendError) as caught:
        send_sms("+33612345678", TEXT, server.settings())
    assert caught.value.permanent and "identifiant" in str(caught.value)


def test_a_provider_that_does_not_answer_in_time_is_a_temporary_error(provider):
    server = provider(hold=1)
    with pytest.raises(SendError) as caught:
        send_sms("+33612345678", TEXT, server.settings(timeout=0.3, tries=1))
    assert not caught.value.permanent and "délai" in str(caught.value)


def test_the_text_is_short_neutral_french_gsm7_with_the_phone_and_the_reference():
    assert len(TEXT) <= SEGMENT and set(TEXT) <= GSM7
    assert "un solde reste à régler" in TEXT and "01 42 00 00 00" in TEXT and "RF47L20250602P1" in TEXT
    assert "€" not in TEXT and "http" not in TEXT and not any(c.isdigit() for c in TEXT.split("Réf.")[0]
                                                               .replace("01 42 00 00 00", ""))


def test_a_long_name_drops_the_greeting_to_stay_in_one_segment():
    text = sms_text(creditor="Centre de santé des Lilas", phone="01 42 00 00 00", reference="RF47L20250602P1",
                    recipient="Marie-Christine-Éléonore De La Fontaine-Montmorency")
    assert len(text) <= SEGMENT and text.startswith("Bonjour, un solde")


def test_letters_outside_gsm7_are_transliterated():
    assert gsm7("Lœuillet Noël, ça") == "Loeuillet Noel, ca"


# --- [sms] settings ------------------------------------------------------------------------------

def settings_file(tmp_path: Path, sms: str, creditor_phone: str = "01 42 00 00 00") -> Path:
    path = tmp_path / "recouvrement.toml"
    path.write_text(f'[creditor]\nphone = "{creditor_phone}"\n[sms]\n{sms}', encoding="utf-8")
    return path


def refusal(path: Path) -> RecouvrementError:
    with pytest.raises(RecouvrementError) as caught:
        load_settings(path)
    return caught.value


def test_sms_settings_read_the_key_from_its_file_and_never_show_it(tmp_path, monkeypatch):
    monkeypatch.delenv("RECOUVREMENT_SMS_API_KEY", raising=False)
    (tmp_path / "sms.key").write_text(KEY + "\n", encoding="utf-8")
    settings = load_settings(settings_file(tmp_path, 'url = "https://api.brevo.com/v3/transactionalSMS/send"\n'
                                                     'api_key_file = "sms.key"\nsender = "CentreLilas"\n'))
    assert settings.sms_api_key() == KEY and settings.sms_phone() == "01 42 00 00 00"
    assert KEY not in repr(settings) and KEY not in repr(SmsSettings(url="u", api_key=KEY, sender="s"))


def test_the_key_may_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOUVREMENT_SMS_API_KEY", KEY)
    settings = load_settings(settings_file(tmp_path, 'url = "https://api.brevo.com/v3/transactionalSMS/send"\n'
                                                     'sender = "CentreLilas"\n'))
    assert settings.sms_api_key() == KEY


@pytest.mark.parametrize("sms, field", [
    ('url = "http://api.brevo.com/v3/transactionalSMS/send"\nsender = "CentreLilas"\n', "sms.url"),
    ('url = "https://api.brevo.com/v3/transactionalSMS/send"\nsender = "Centre Lilas"\n', "sms.sender"),
    ('url = "https://api.brevo.com/v3/transactionalSMS/send"\nsender = "12345"\n', "sms.sender"),
    ('url = "https://api.brevo.com/v3/transactionalSMS/send"\nsender = "CentreLilas"\nphone = "12"\n', "sms.phone"),
    ('url = "https://api.brevo.com/v3/transactionalSMS/send"\nsender = "CentreLilas"\n', "sms.api_key_file"),
    ('url = "https://api.brevo.com/v3/transactionalSMS/send"\nsender = "CentreLilas"\napi_key_file = "nope.key"\n',
     "sms.api_key_file"),
    ('password = "x"\n', "sms.password"),
])
def test_bad_sms_settings_are_refused_naming_the_field(tmp_path, monkeypatch, sms, field):
    monkeypatch.delenv("RECOUVREMENT_SMS_API_KEY", raising=False)
    error = refusal(settings_file(tmp_path, sms))
    assert error.field == field and KEY not in str(error)


def test_an_empty_key_file_is_refused_without_its_content(tmp_path, monkeypatch):
    monkeypatch.delenv("RECOUVREMENT_SMS_API_KEY", raising=False)
    (tmp_path / "sms.key").write_text("\n", encoding="utf-8")
    error = refusal(settings_file(tmp_path, 'url = "https://api.brevo.com/v3/transactionalSMS/send"\n'
                                            'api_key_file = "sms.key"\nsender = "CentreLilas"\n'))
    assert error.field == "sms.api_key_file" and "vide" in str(error)
