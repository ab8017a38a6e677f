"""Who receives a reminder e-mail: one valid address, checked at import and again before sending, on a real
SMTP server (aiosmtpd); names with CR/LF neither stop the run nor reach a mail header."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace

from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.nightly import remind_and_send
from recouvrement.config import Smtp
from tests.app.test_remind import MONDAY, with_creditor
from tests.app.test_remind_email import smtp_server  # noqa: F401  (the fixture: a real aiosmtpd server)
from tests.app.world import write

HEADER = ("invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;email;"
          "birth_date;total_amount;amo_amount;patient_amount;guarantor_last_name;guarantor_first_name;"
          "guarantor_address;guarantor_postal_code;guarantor_city;guarantor_email")
LIST = "marc@ok.example, evil@attacker.example"


def child(number: str, patient: str, guarantor_email: str, *, guarantor_last_name: str = "Durand") -> str:
    """An overdue invoice of a minor whose father, the guarantor, receives the letters."""
    return (f"{number};01/04/2025;15/04/2025;{patient};Durand;Léo;5 rue Haute;75011;Paris;;12/03/2015;45,00;0;"
            f"45,00;{guarantor_last_name};Marc;5 rue Haute;75011;Paris;{guarantor_email}")


def adult(number: str, patient: str, address: str, last_name: str = "Martin") -> str:
    return (f"{number};01/04/2025;15/04/2025;{patient};{last_name};Claire;5 rue Haute;75011;Paris;{address};;45,00;"
            "0;45,00;;;;;;")


def smtp(settings, port: int):
    return replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=port, sender="relances@lilas.example"))


def load(engine, settings, tmp_path, rows: list[str]):
    report = import_file(engine, write(tmp_path / "invoices.csv", HEADER, rows), settings)
    run_reconcile(engine)
    return report


def test_a_guarantor_address_list_is_refused_at_import_with_file_line_and_field_but_not_echoed(engine, settings,
                                                                                                 tmp_path):
    report = load(engine, settings, tmp_path, [child("F2025-000201", "P1", "marc@ok.example"),
                                              child("F2025-000202", "P2", LIST)])
    assert report.imported == 1
    (refused,) = report.rejects
    assert (refused.file, refused.line, refused.field) == ("invoices.csv", 3, "guarantor_email")
    assert "attacker" not in refused.reason and "marc@" not in refused.reason


def test_a_patient_address_with_a_display_name_is_refused_at_import(engine, settings, tmp_path):
    report = load(engine, settings, tmp_path, [adult("F2025-000201", "P1", "Claire <claire@ok.example>")])
    assert [(r.line, r.field) for r in report.rejects] == [(2, "email")]


def test_only_the_one_valid_guarantor_address_receives_the_reminder(engine, settings, tmp_path, smtp_server):  # noqa: F811  (the imported fixture)
    inbox, port = smtp_server
    load(engine, settings, tmp_path, [child("F2025-000201", "P1", "marc@ok.example")])
    report = remind_and_send(engine, smtp(settings, port), MONDAY, tmp_path / "out")
    assert report.emails_sent == 1 and report.errors == []
    assert [recipients for _, recipients, _ in inbox.messages] == [["marc@ok.example"]]


def test_an_address_list_already_in_the_database_is_never_mailed_and_the_letter_goes_by_post(engine, settings,
                                                                                            tmp_path, smtp_server):  # noqa: F811  (the imported fixture)
    inbox, port = smtp_server
    load(engine, settings, tmp_path, [child("F2025-000201", "P1", "marc@ok.example")])
    with engine.begin() as conn:  # as an older version, or a hand edit, may have left it
        conn.execute(text("UPDATE patient SET guarantor_email = :e"), {"e": LIST})
    report = remind_and_send(engine, smtp(settings, port), MONDAY, tmp_path / "out")
    assert inbox.messages == [] and report.emails_sent == 0
    assert [(w.patient_id, w.channel) for w in report.letters] == [("P1", "letter")]


def test_a_name_with_cr_lf_neither_stops_the_run_nor_adds_a_header_or_a_recipient(engine, settings, tmp_path,
                                                                                  smtp_server):  # noqa: F811  (the imported fixture)
    inbox, port = smtp_server
    injected = '"Durand\r\nBcc: evil@attacker.example\r\nX-Evil: 1"'
    load(engine, settings, tmp_path, [child("F2025-000201", "P1", "marc@ok.example", guarantor_last_name=injected),
                                      adult("F2025-000202", "P2", "claire@ok.example", last_name=injected)])
    report = remind_and_send(engine, smtp(settings, port), MONDAY, tmp_path / "out")
    assert report.errors == [] and report.emails_sent == 2
    assert sorted(r for _, recipients, _ in inbox.messages for r in recipients) == ["claire@ok.example",
                                                                                    "marc@ok.example"]
    for _, _, content in inbox.messages:
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert message["Bcc"] is None and message["X-Evil"] is None
        assert len(message["To"].addresses) == 1 and "\n" not in message["To"].addresses[0].display_name
