"""Reminders by SMS through the outbox, against a local HTTP server standing in for the provider: only with
consent to a mobile, else the post; 'sent' once the provider accepted it; a 5xx tried again, a provider down
leaving the rest queued, a 4xx failing that message alone, a run SIGKILLed mid-batch; a text the privacy
scanner refuses; the report's counts (issue #14)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.nightly import remind_and_send
from recouvrement.app.report import report_data
from recouvrement.config import Sms
from recouvrement.rules import DEFAULT_RULES_DIR, Rules
from tests.app.test_outbox import cli
from tests.app.test_remind import CREDITOR, MONDAY
from tests.app.world import write
from tests.channels.test_sms import KEY, Provider

HEADER = ("invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;email;phone;"
          "total_amount;amo_amount;patient_amount;sms_consent;email_consent")
RULES = Rules()
SMS_FIRST = replace(RULES, ladder=replace(RULES.ladder, levels=(
    replace(RULES.ladder.level(1), channel="sms"), *RULES.ladder.levels[1:])))


def row(k: int, patient: str, *, phone: str = "06 12 34 56 78", sms: str = "oui", email: str = "",
        last_name: str = "Martin") -> str:
    return (f"F2025-00050{k};01/04/2025;15/04/2025;{patient};{last_name};Claire;5 rue Haute;75011;Paris;{email};"
            f"{phone};45,00;0;45,00;{sms};oui")


def load(engine, settings, folder: Path, rows: list[str]) -> None:
    import_file(engine, write(folder / "invoices.csv", HEADER, rows), settings)
    run_reconcile(engine)


def configured(settings, url: str | None = None):
    sms = Sms(url=url, sender="CentreLilas") if url else Sms()
    return replace(settings, creditor=CREDITOR, sms=sms)


@pytest.fixture
def provider():
    started: list[Provider] = []

    def start(*args, **kw) -> Provider:
        started.append(Provider(*args, **kw))
        return started[-1]
    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("RECOUVREMENT_SMS_API_KEY", KEY)


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT patient_id, status FROM sms_message")).all())


def test_an_sms_goes_only_to_a_consenting_mobile_the_others_get_a_letter(engine, settings, tmp_path, provider):
    server = provider()
    load(engine, settings, tmp_path, [row(1, "P1"), row(2, "P2", sms="non"), row(3, "P3", sms=""),
                                      row(4, "P4", phone="01 42 00 00 01")])
    report = remind_and_send(engine, configured(settings, server.url), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert {w.patient_id: w.channel for w in report.letters} == {"P1": "sms", "P2": "letter", "P3": "letter",
                                                                  "P4": "letter"}
    assert [r["body"]["recipient"] for r in server.requests] == ["33612345678"]
    assert report.sms_sent == 1 and statuses(engine) == {"P1": "sent"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT provider_id FROM sms_message")).scalar_one() == "1511882900176221"
    content = server.requests[0]["body"]["content"]
    assert "un solde reste à régler" in content and "45" not in content and "F2025" not in content
    assert report.letters[0].rf_reference in content
    assert (tmp_path / "out" / f"{report.letters[0].letter_id}.sms.txt").read_text(encoding="utf-8") == content


def test_sms_plus_letter_without_sms_consent_is_the_letter_alone(engine, settings, tmp_path, provider):
    server = provider()
    rules = replace(RULES, ladder=replace(RULES.ladder, levels=(
        replace(RULES.ladder.level(1), channel="sms+letter"), *RULES.ladder.levels[1:])))
    load(engine, settings, tmp_path, [row(1, "P1"), row(2, "P2", sms="non")])
    report = remind_and_send(engine, configured(settings, server.url), MONDAY, tmp_path / "out", rules=rules)
    assert {w.patient_id: w.channel for w in report.letters} == {"P1": "letter+sms", "P2": "letter"}
    assert len(report.pages) == 2 and len(server.accepted) == 1


def test_a_server_error_is_tried_again_and_the_sms_is_sent_once(engine, settings, tmp_path, provider):
    server = provider([(500, {"code": "internal"}), (201, None)])
    load(engine, settings, tmp_path, [row(1, "P1")])
    report = remind_and_send(engine, configured(settings, server.url), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert (report.sms_sent, len(server.requests), len(server.accepted)) == (1, 2, 1)
    assert statuses(engine) == {"P1": "sent"}


def test_a_provider_down_leaves_the_sms_queued_and_the_next_run_sends_them(engine, settings, tmp_path, provider):
    down = provider([(503, None)])
    load(engine, settings, tmp_path, [row(1, "P1"), row(2, "P2")])
    first = remind_and_send(engine, configured(settings, down.url), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert (first.sms_sent, first.sms_queued) == (0, 2) and down.accepted == []
    assert report_data(engine, MONDAY).sms_queued == 2
    up = provider()
    again = remind_and_send(engine, configured(settings, up.url), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert (again.sms_sent, again.letters) == (2, []) and set(statuses(engine).values()) == {"sent"}


def test_a_4xx_fails_that_sms_alone_and_the_others_are_sent(engine, settings, tmp_path, provider):
    server = provider([(400, {"code": "invalid_parameter"}), (201, None)])
    load(engine, settings, tmp_path, [row(1, "P1"), row(2, "P2", phone="07 81 23 45 67")])
    report = remind_and_send(engine, configured(settings, server.url), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert statuses(engine) == {"P1": "failed", "P2": "sent"}
    assert (report.sms_sent, report.sms_failed) == (1, 1)
    assert any("P1" in e and "refusé" in e for e in report.errors)
    assert report_data(engine, MONDAY).sms_failed == 1
    assert remind_and_send(engine, configured(settings, server.url), MONDAY, tmp_path / "out",
                      rules=SMS_FIRST).sms_sent == 0 and len(server.requests) == 2


def test_a_care_term_in_the_patients_name_refuses_that_text_and_never_echoes_it(engine, settings, tmp_path,
                                                                                provider):
    server = provider()
    load(engine, settings, tmp_path, [row(1, "P1"), row(2, "P2", phone="07 81 23 45 67", last_name="Dialyse")])
    report = remind_and_send(engine, configured(settings, server.url), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert [w.patient_id for w in report.letters] == ["P1"]
    assert [r["body"]["recipient"] for r in server.requests] == ["33612345678"]
    refused = [e for e in report.errors if "P2" in e]
    assert len(refused) == 1 and ".sms" in refused[0] and "ialyse" not in refused[0].lower()
    assert statuses(engine) == {"P1": "sent"}


def test_without_sms_settings_the_text_is_written_not_sent(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [row(1, "P1")])
    report = remind_and_send(engine, configured(settings), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert statuses(engine) == {"P1": "written"} and report.sms_sent == 0
    assert report.sms_note and "non envoyés" in report.sms_note


def _config_file(folder: Path, url: str) -> Path:
    rules = folder / "rules"
    rules.mkdir()
    ladder = (DEFAULT_RULES_DIR / "ladder.toml").read_text(encoding="utf-8")
    head, tail = ladder.split("level = 1", 1)
    (rules / "ladder.toml").write_text(head + "level = 1" + tail.replace('channel = "email"', 'channel = "sms"', 1),
                                       encoding="utf-8")
    c = CREDITOR
    path = folder / "recouvrement.toml"
    path.write_text(f'[creditor]\nname = "{c.name}"\naddress = "{c.address}"\npostal_code = "{c.postal_code}"\n'
                    f'city = "{c.city}"\nphone = "{c.phone}"\nemail = "{c.email}"\nsiret = "{c.siret}"\n'
                    f'iban = "{c.iban}"\nbic = "{c.bic}"\n[sms]\nurl = "{url}"\nsender = "CentreLilas"\n'
                    f'[paths]\nrules = "rules"\n[privacy]\nnir_key_file = "{folder / "nir.key"}"\n', encoding="utf-8")
    return path


def test_a_run_killed_mid_batch_leaves_the_rest_queued_and_the_next_run_sends_each_once(
        engine, db_url, settings, tmp_path, provider):
    patients = [f"P{k}" for k in range(1, 6)]
    load(engine, settings, tmp_path, [row(k, p, phone=f"06 12 34 56 7{k}") for k, p in enumerate(patients, 1)])
    stuck = provider(hold=3)
    config = _config_file(tmp_path, stuck.url)
    run = subprocess.Popen(cli(db_url, config, "remind", "--as-of", MONDAY.isoformat(), "--out",
                               str(tmp_path / "out")), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "RECOUVREMENT_SMS_API_KEY": KEY})
    try:
        assert stuck.holding.wait(120), "the run never reached the third SMS"
        os.kill(run.pid, signal.SIGKILL)
        run.wait(30)
    finally:
        stuck.release.set()
        if run.poll() is None:
            run.kill()
    assert len(stuck.accepted) == 2
    assert sorted(statuses(engine).values()) == ["queued"] * 2 + ["sending"] + ["sent"] * 2
    fresh = provider()
    again = remind_and_send(engine, configured(settings, fresh.url), MONDAY, tmp_path / "out", rules=SMS_FIRST)
    assert again.sms_sent == 3 and again.letters == []
    sent = sorted(r["recipient"] for r in stuck.accepted + fresh.accepted)
    assert sent == [f"3361234567{k}" for k in range(1, 6)] and set(statuses(engine).values()) == {"sent"}


def test_the_patients_page_shows_each_sms_as_the_provider_left_it_without_its_text(engine, settings, tmp_path,
                                                                                    provider):
    import html

    from starlette.testclient import TestClient

    from recouvrement.app.patient_account import patient_account
    from recouvrement.app.users import add_user
    from recouvrement.web.app import create_app
    from tests.web.conftest import PASSWORD, log_in
    server = provider([(400, {"code": "invalid_parameter"}), (201, None)])
    rules = replace(RULES, ladder=replace(RULES.ladder, levels=(
        replace(RULES.ladder.level(1), channel="sms+letter"), *RULES.ladder.levels[1:])))
    load(engine, settings, tmp_path, [row(1, "P1"), row(2, "P2", phone="07 81 23 45 67"), row(3, "P3", sms="non")])
    remind_and_send(engine, configured(settings, server.url), MONDAY, tmp_path / "out", rules=rules)
    assert {p: [(l.means, l.sms_status) for l in patient_account(engine, p, MONDAY, rules).letters]
            for p in ("P1", "P2", "P3")} == {"P1": [("courrier et SMS", "failed")], "P2": [("courrier et SMS", "sent")],
                                             "P3": [("courrier", None)]}
    add_user(engine, "accueil", "staff", PASSWORD)
    app = create_app(engine, today=lambda: MONDAY, settings=configured(settings), rules=rules)
    with TestClient(app, base_url="https://testserver") as client:
        assert log_in(client, "accueil").status_code == 303
        pages = {p: " ".join(html.unescape(client.get(f"/patients/{p}").text).split()) for p in ("P1", "P2")}
    assert "SMS refusé par l'opérateur, à traiter" in pages["P1"] and "courrier et SMS" in pages["P1"]
    assert "SMS accepté par l'opérateur" in pages["P2"]
    text_sent = server.accepted[0]["content"] if server.accepted else ""
    assert text_sent and all(text_sent not in page for page in pages.values())
