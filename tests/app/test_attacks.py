"""Attacks beyond the issue's list (issue #11's "what else was tried"): markup and template text in names,
invisible and bidirectional characters, NUL bytes and endless lines in a CSV, SQL in command-line arguments.
Each test plants the attack where outside text enters and looks where it could come out."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace

import pytest
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.report import write_report
from recouvrement.app.nightly import remind_and_send
from recouvrement.app.remind import run_remind
from recouvrement.config import Smtp
from recouvrement.errors import RecouvrementError
from tests.app.test_remind import MONDAY, invoice, load, with_creditor
from tests.app.test_remind_email import smtp_server  # noqa: F401  (the fixture: a real aiosmtpd server)
from tests.app.world import INVOICE_HEADER, write
from tests.test_cli_messages import run_main

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{ 7*7 }}{% raw %}"
# Right-to-left override, its pop, left-to-right isolate, zero-width space, joiner, word joiner, BOM.
INVISIBLE = "\u202e\u202c\u2066\u2069\u200b\u200d\u2060\ufeff"


def named(number: str, patient: str, last_name: str, *, email: str = "") -> str:
    return invoice(number, patient, "01/04/2025", "15/04/2025", "45,00", last_name=last_name, email=email)


def test_markup_and_template_text_in_a_name_stay_text_in_the_letter_the_e_mail_and_the_report(
        engine, settings, tmp_path, smtp_server):  # noqa: F811  (the imported fixture)
    inbox, port = smtp_server
    load(engine, settings, tmp_path, [named("F2025-000201", "P1", SCRIPT + IMAGE + TEMPLATE),
                                      named("F2025-000202", "P2", TEMPLATE + SCRIPT, email="claire@ok.example")])
    configured = replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=port, sender="r@lilas.example"))
    report = remind_and_send(engine, configured, MONDAY, tmp_path / "out")
    assert report.errors == [] and report.emails_sent == 1
    (letter,) = (tmp_path / "out").glob("L*-P1-*.html")
    html = letter.read_text(encoding="utf-8")
    (_, _, content), = inbox.messages
    message = email.message_from_bytes(content, policy=email.policy.default)
    mail_html = message.get_body(("html",)).get_content()
    mail_text = message.get_body(("plain",)).get_content()
    page = write_report(engine, configured, MONDAY, tmp_path / "rapport.html").read_text(encoding="utf-8")
    for document in (html, mail_html, page):
        assert "<script>alert" not in document and "<img src=x" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "{{ 7*7 }}{% raw %}" in html
    assert "{{ 7*7 }}{% raw %}&lt;script&gt;" in mail_html and "49" not in mail_text.split("Madame")[0]


def test_bidirectional_and_invisible_characters_in_a_name_never_reach_a_letter_or_an_e_mail(engine, settings,
                                                                                           tmp_path):
    rows = [named("F2025-000201", "P1", f"Mar{INVISIBLE}tin"),
            named("F2025-000202", "P2", "Dur\u202eand", email="claire@ok.example")]
    import_file(engine, write(tmp_path / "factures.csv", INVOICE_HEADER, rows), settings)
    run_reconcile(engine)
    run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    written = [p.read_text(encoding="utf-8") for p in (tmp_path / "out").glob("L*")]
    written += [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
                for p in (tmp_path / "out").glob("*.eml")]
    assert len(written) == 4            # P1's HTML letter; P2's HTML letter, its e-mail and its To header
    assert all(not set(INVISIBLE) & set(document) for document in written)
    assert all("Claire Martin" in d for d in written[:1]) and any("Claire Durand" in d for d in written)


def test_a_nul_byte_in_a_csv_refuses_the_file_naming_its_line_in_french(engine, settings, tmp_path):
    rows = [named("F2025-000201", "P1", "Martin"), named("F2025-000202", "P2", "Dur\x00and")]
    path = write(tmp_path / "factures.csv", INVOICE_HEADER, rows)
    with pytest.raises(RecouvrementError) as refused:
        import_file(engine, path, settings)
    assert str(refused.value) == ("factures.csv:3: un octet nul (0x00) : ce fichier n'est pas un texte CSV "
                                  "(fichier binaire ou corrompu) ; rien n'est importé")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM invoice")).scalar_one() == 0


def test_a_line_of_several_megabytes_refuses_the_file_naming_its_line_in_french(engine, settings, tmp_path):
    rows = [named("F2025-000201", "P1", "Martin"), named("F2025-000202", "P2", "D" * 3_000_000)]
    path = write(tmp_path / "factures.csv", INVOICE_HEADER, rows)
    with pytest.raises(RecouvrementError) as refused:
        import_file(engine, path, settings)
    assert str(refused.value) == ("factures.csv:3: une ligne de plus de 1 Mo : ce n'est pas une ligne de "
                                  "facture ou de paiement (fichier corrompu ?) ; rien n'est importé")
    assert "DDDD" not in str(refused.value)


@pytest.mark.parametrize("args", [
    ("audit", "log", "--patient", "' OR '1'='1"),
    ("audit", "log", "--invoice", "x' OR 1=1 --"),
    ("segments", "--patient", "P1' OR '1'='1"),
    ("match", "1 OR 1=1; DROP TABLE payment; --", "F2025-000201"),
    ("unmatch", "'; DELETE FROM allocation; --"),
    ("hold", "P1'; DELETE FROM patient; --", "--reason", "x"),
])
def test_sql_in_a_command_line_argument_is_a_value_that_matches_nothing(args, engine, settings, tmp_path,
                                                                        monkeypatch, capsys, db_url):
    load(engine, settings, tmp_path, [named("F2025-000201", "P1", "Martin"), named("F2025-000202", "P2", "Durand")],
         ["PAY-1;2025-04-20;patient;MARTIN CLAIRE;45,00;;F2025-000201;paid;"])
    with engine.connect() as conn:
        before = conn.execute(text("SELECT (SELECT COUNT(*) FROM patient), (SELECT COUNT(*) FROM payment), "
                                   "(SELECT COUNT(*) FROM allocation)")).one()
    code, out, _ = run_main(monkeypatch, capsys, "--db", db_url, *args, cwd=tmp_path)
    assert code in (0, 2)
    assert "P2" not in out and "Durand" not in out and "F2025-000202" not in out
    with engine.connect() as conn:
        assert conn.execute(text("SELECT (SELECT COUNT(*) FROM patient), (SELECT COUNT(*) FROM payment), "
                                 "(SELECT COUNT(*) FROM allocation)")).one() == before


def test_a_name_forging_mail_headers_adds_no_header_and_no_recipient_to_the_message_received(
        engine, settings, tmp_path, smtp_server):  # noqa: F811  (the imported fixture)
    inbox, port = smtp_server
    forged = "Martin\r\nBcc: evil@attacker.example\r\nSubject: urgent\r\nX-Evil: 1\u2028Cc: evil2@attacker.example"
    rows = [named("F2025-000201", "P1", f'"{forged}"', email="claire@ok.example")]     # a quoted CSV cell
    import_file(engine, write(tmp_path / "factures.csv", INVOICE_HEADER, rows), settings)
    run_reconcile(engine)
    configured = replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=port, sender="r@lilas.example"))
    assert remind_and_send(engine, configured, MONDAY, tmp_path / "out").emails_sent == 1
    (_, recipients, content), = inbox.messages
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert recipients == ["claire@ok.example"]
    assert message["Bcc"] is None and message["Cc"] is None and message["X-Evil"] is None
    assert len(message.get_all("Subject")) == 1 and "urgent" not in message["Subject"]
    assert message["To"].addresses[0].addr_spec == "claire@ok.example"
