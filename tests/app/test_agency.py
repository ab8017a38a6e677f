"""The agency handover through the database: who is handed over and why not, the file, and the returns."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import replace
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from recouvrement.app.agency import (EXPORT_COLUMNS, export_agency, handed_over_invoices, import_agency_returns,
                                     returned_cases)
from recouvrement.app.balance import outstanding_shares
from recouvrement.app.imports import import_file
from recouvrement.audit import verify
from recouvrement.core.references import rf_reference
from recouvrement.errors import RecouvrementError
from recouvrement.rules import AgencyRules, Rules
from recouvrement.scanner import scan_file
from tests.app.world import INVOICE_HEADER, write
from tests.fec_structure import cents

RULES = Rules()
HANDOVER = date(2025, 4, 20)           # 19 days after the mise en demeure of 1 April


def invoice(number: str, issued: str, cents: int, patient: str = "P1") -> str:
    amount = f"{cents // 100},{cents % 100:02d}"
    return (f"{number};{issued};;{patient};Martin;Claire;5 rue Haute;75011;Paris;claire@example.org;06 12 34 56 78;;"
            f"{amount};0;0;{amount};;none;Séance de kinésithérapie;AMK 8")


def world(engine, settings, tmp_path, rows=None):
    rows = rows or [invoice("F2025-000301", "2025-01-10", 12000), invoice("F2025-000302", "2025-01-20", 3000)]
    import_file(engine, write(tmp_path / "invoices.csv", INVOICE_HEADER, rows), settings)


def letter(engine, letter_id: str, day: date, numbers: list[str], level: int = 3, patient: str = "P1",
           also_due: dict[str, int] | None = None, channel: str = "letter", status: str = "sent",
           reference: str | None = None):
    """A reminder letter as the remind use case stores it (built by hand: that use case is tested elsewhere):
    `numbers` at the letter's level, `also_due` listed apart at their own level."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, "
                          "sha256, file, status, rf_reference) VALUES (:l, :p, :lv, 'mise_en_demeure', :ch, :d, 0, "
                          "'x', 'x', :st, :rf)"),
                     {"l": letter_id, "p": patient, "lv": level, "d": day, "ch": channel, "st": status,
                      "rf": reference})
        for number, own in [*((n, level) for n in numbers), *(also_due or {}).items()]:
            conn.execute(text("INSERT INTO letter_item (letter_id, invoice_number, amount_cents, level) "
                              "VALUES (:l, :i, 0, :lv)"), {"l": letter_id, "i": number, "lv": own})


def ready(engine, settings, tmp_path, rows=None):
    world(engine, settings, tmp_path, rows)
    letter(engine, "L3-P1", date(2025, 4, 1), ["F2025-000301", "F2025-000302"])


def export(engine, tmp_path, as_of=HANDOVER, name="agency.csv", rules=RULES):
    return export_agency(engine, None, as_of, tmp_path / name, rules=rules)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


AGREED_COLUMNS = ["case_id", "patient_id", "last_name", "first_name", "address", "postal_code", "city", "amount_due",
                  "creditor_reference", "invoice_number", "issue_date", "due_date", "invoice_amount", "invoice_paid",
                  "invoice_remaining", "time_barred_on", "letter_dates", "letter_references", "mise_en_demeure_date",
                  "mise_en_demeure_reference", "mise_en_demeure_sent_by", "mise_en_demeure_tracking"]


def test_a_case_is_handed_over_one_row_per_invoice_with_exactly_the_agreed_columns(engine, settings, tmp_path):
    """The file used to hold one row per case (invoice numbers and dates in one cell each, no due date, nothing
    paid, no letters); issue #15 asks for each invoice's detail: changed to one row per invoice."""
    ready(engine, settings, tmp_path)
    report = export(engine, tmp_path)
    header, *rows = read_csv(tmp_path / "agency.csv")
    assert header == AGREED_COLUMNS == EXPORT_COLUMNS
    case = ["AG-20250420-P1", "P1", "Martin", "Claire", "5 rue Haute", "75011", "Paris", "150.00",
            rf_reference("F2025-000301")]
    assert rows == [
        case + ["F2025-000301", "2025-01-10", "2025-02-09", "120.00", "0.00", "120.00", "2027-01-10", "2025-04-01",
                rf_reference("F2025-000301"), "2025-04-01", rf_reference("F2025-000301"), "courrier", ""],
        case + ["F2025-000302", "2025-01-20", "2025-02-19", "30.00", "0.00", "30.00", "2027-01-20", "2025-04-01",
                rf_reference("F2025-000302"), "2025-04-01", rf_reference("F2025-000302"), "courrier", ""]]
    assert "kiné" not in (tmp_path / "agency.csv").read_text()
    assert (report.cases, report.rows, report.total_cents) == (1, 2, 15000)


def test_the_letters_that_claimed_each_invoice_and_how_its_mise_en_demeure_went_are_in_the_file(engine, settings,
                                                                                                   tmp_path):
    world(engine, settings, tmp_path)
    letter(engine, "L1-P1", date(2025, 2, 24), ["F2025-000301"], level=1, channel="email", reference="RF11L1")
    letter(engine, "L2-P1", date(2025, 3, 12), ["F2025-000301"], level=2, channel="both", reference="RF22L2",
           also_due={"F2025-000302": 1})
    letter(engine, "L3-P1", date(2025, 4, 1), ["F2025-000301", "F2025-000302"], channel="both", reference="RF33L3")
    letter(engine, "L9-P1", date(2025, 4, 2), ["F2025-000302"], level=2, channel="email", status="failed")
    export(engine, tmp_path)
    header, *rows = read_csv(tmp_path / "agency.csv")
    claimed = [{c: row[header.index(c)] for c in ("invoice_number", "letter_dates", "letter_references",
                                                  "mise_en_demeure_date", "mise_en_demeure_reference",
                                                  "mise_en_demeure_sent_by")} for row in rows]
    assert claimed == [
        {"invoice_number": "F2025-000301", "letter_dates": "2025-02-24 2025-03-12 2025-04-01",
         "letter_references": "RF11L1 RF22L2 RF33L3", "mise_en_demeure_date": "2025-04-01",
         "mise_en_demeure_reference": "RF33L3", "mise_en_demeure_sent_by": "courrier + e-mail"},
        {"invoice_number": "F2025-000302", "letter_dates": "2025-03-12 2025-04-01",   # the failed e-mail never went
         "letter_references": "RF22L2 RF33L3", "mise_en_demeure_date": "2025-04-01",
         "mise_en_demeure_reference": "RF33L3", "mise_en_demeure_sent_by": "courrier + e-mail"}]


def test_a_mise_en_demeure_whose_e_mail_copy_did_not_go_out_is_said_sent_by_post_only(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    letter(engine, "L3-P1", date(2025, 4, 1), ["F2025-000301", "F2025-000302"], channel="both", status="failed")
    export(engine, tmp_path)
    header, *rows = read_csv(tmp_path / "agency.csv")
    assert {row[header.index("mise_en_demeure_sent_by")] for row in rows} == {"courrier"}


def test_a_mise_en_demeure_sent_by_registered_post_gives_its_tracking_number(engine, settings, tmp_path):
    from recouvrement.app.agency import record_registered_post
    ready(engine, settings, tmp_path)
    assert record_registered_post(engine, "L3-P1", "1a 123 456 7890 1") == "1A12345678901"
    assert record_registered_post(engine, "L3-P1", "1A12345678901") == "1A12345678901"     # again: nothing new
    export(engine, tmp_path)
    header, *rows = read_csv(tmp_path / "agency.csv")
    assert {(row[header.index("mise_en_demeure_sent_by")], row[header.index("mise_en_demeure_tracking")])
            for row in rows} == {("lettre recommandée", "1A12345678901")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event WHERE kind = 'registered_post'")).scalar_one() == 1


def test_a_tracking_number_is_refused_for_an_unknown_or_e_mail_only_letter_or_a_bad_number(engine, settings,
                                                                                           tmp_path):
    from recouvrement.app.agency import record_registered_post
    ready(engine, settings, tmp_path)
    letter(engine, "L1-P1", date(2025, 2, 24), ["F2025-000301"], level=1, channel="email")
    for letter_id, number, field in (("NOPE", "1A12345678901", "LETTER_ID"), ("L1-P1", "1A12345678901", "LETTER_ID"),
                                     ("L3-P1", "12-34", "TRACKING")):
        with pytest.raises(RecouvrementError) as caught:
            record_registered_post(engine, letter_id, number)
        assert caught.value.field == field
    record_registered_post(engine, "L3-P1", "1A12345678901")
    with pytest.raises(RecouvrementError, match="déjà"):
        record_registered_post(engine, "L3-P1", "1A99999999999")


def test_the_registered_post_command_says_what_it_recorded(engine, settings, db_url, tmp_path):
    from recouvrement.cli import cli
    import recouvrement.cli.commands  # noqa: F401  (registers the commands)
    ready(engine, settings, tmp_path)
    (tmp_path / "none.toml").write_text("")
    done = CliRunner().invoke(cli, ["--db", db_url, "--config", str(tmp_path / "none.toml"), "registered-post",
                                    "L3-P1", "1A 123 456 7890 1"])
    assert done.exit_code == 0, done.output
    assert "recommandé n° 1A12345678901 enregistré" in done.output


def test_what_was_already_paid_on_an_invoice_and_what_remains_are_in_the_file(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payment (payment_id, payment_date, payer_type, payer_name, amount_cents, "
                          "reference, status, source_file, reconciled) VALUES ('B1', :d, 'patient', 'C MARTIN', 2000, "
                          "'', 'paid', 'bank.csv', TRUE)"), {"d": date(2025, 3, 1)})
        conn.execute(text("INSERT INTO allocation (payment_id, invoice_number, payer_type, amount_cents, rule, "
                          "created_at, payment_date) VALUES ('B1', 'F2025-000301', 'patient', 2000, 'manual', :t, "
                          "(SELECT payment_date FROM payment WHERE payment_id = 'B1'))"),
                     {"t": date(2025, 3, 1)})
    assert export(engine, tmp_path).total_cents == 13000
    header, first, _ = read_csv(tmp_path / "agency.csv")
    assert [first[header.index(c)] for c in ("amount_due", "invoice_amount", "invoice_paid", "invoice_remaining")] == \
        ["130.00", "120.00", "20.00", "100.00"]


def test_the_manifest_names_the_creditor_by_name_siret_and_address(engine, settings, tmp_path):
    from recouvrement.config import Creditor
    ready(engine, settings, tmp_path)
    clinic = replace(settings, creditor=Creditor(name="Centre de santé des Lilas", address="12 rue des Lilas",
                                                 postal_code="75019", city="Paris", siret="84512367800011",
                                                 phone="01 40 00 00 00", email="compta@lilas.example",
                                                 iban="FR7630006000011234567890189"))
    export_agency(engine, clinic, HANDOVER, tmp_path / "agency.csv", rules=RULES)
    manifest = json.loads((tmp_path / "agency.csv.manifest.json").read_text())
    assert manifest["creditor"] == {"name": "Centre de santé des Lilas", "siret": "84512367800011",
                                    "address": "12 rue des Lilas", "postal_code": "75019", "city": "Paris"}
    assert set(manifest) == {"file", "row_count", "case_count", "total_cents", "total", "sha256", "as_of",
                             "created_at", "creditor", "columns", "audit_head"}


CARE = "Séance de kinésithérapie AMK 8"


def test_care_text_planted_in_every_outside_field_is_in_neither_the_file_nor_the_manifest(engine, settings, tmp_path):
    """Every cell that comes from outside (names, address, city, e-mail, phone, the guarantor's, the care columns)
    carries care text: the file and its manifest hold none of it, and the case still goes with its amounts."""
    planted = (f"F2025-000301;2025-01-10;;P1;Martin {CARE};Claire {CARE};5 rue {CARE};75011;Paris {CARE};"
               f"claire@example.org;06 12 34 56 78;;120,00;0;0;120,00;;none;{CARE};AMK 8;2015-06-01;"
               f"Martin {CARE};Paul {CARE};9 rue {CARE};75012;Paris {CARE};paul@example.org")
    import_file(engine, write(tmp_path / "invoices.csv", GUARANTOR_HEADER, [planted]), settings)
    letter(engine, "L3-P1", date(2025, 4, 1), ["F2025-000301"])
    rules = replace(RULES, agency=AgencyRules(allow_email=True, allow_phone=True))
    report = export(engine, tmp_path, rules=rules)
    assert report.cases == 1 and report.masked == 1
    written = (tmp_path / "agency.csv").read_text(encoding="utf-8") + \
        (tmp_path / "agency.csv.manifest.json").read_text(encoding="utf-8")
    for word in ("kinés", "Séance", "AMK"):
        assert word not in written
    assert scan_file(tmp_path / "agency.csv") == [] and scan_file(tmp_path / "agency.csv.manifest.json") == []
    header, row = read_csv(tmp_path / "agency.csv")
    assert [row[header.index(c)] for c in ("last_name", "address", "invoice_number", "amount_due")] == \
        ["[masqué]", "[masqué]", "F2025-000301", "120.00"]


def test_the_command_says_in_french_that_a_case_under_the_minimum_stays_at_the_clinic(engine, settings, db_url,
                                                                                       tmp_path):
    from recouvrement.cli import cli
    import recouvrement.cli.commands  # noqa: F401  (registers the commands)
    ready(engine, settings, tmp_path, [invoice("F2025-000301", "2025-01-10", 499)])
    (tmp_path / "none.toml").write_text("")
    done = CliRunner().invoke(cli, ["--db", db_url, "--config", str(tmp_path / "none.toml"), "export", "agency",
                                    "--as-of", "2025-04-20", "--out", str(tmp_path / "a.csv")])
    assert done.exit_code == 0, done.output
    assert "gardés à la clinique : 1 sous le montant minimum" in done.output
    assert not (tmp_path / "a.csv").exists()


def test_the_nightly_run_counts_a_case_under_the_minimum_and_the_desk_reads_it(engine, settings, tmp_path):
    from recouvrement.app.nightly import RunResult, _agency
    from recouvrement.app.today import run_summary
    ready(engine, settings, tmp_path, [invoice("F2025-000301", "2025-01-10", 499)])
    result = RunResult(1, HANDOVER)
    _agency(engine, replace(settings, paths=replace(settings.paths, output=tmp_path / "out")), HANDOVER, result, None)
    assert result.counts == {"agency_cases": 0, "agency_below_minimum": 1}
    assert run_summary(result.counts) == ["1 dossier(s) gardé(s) à la clinique : sous le montant minimum de l'agence"]


def test_the_export_holds_no_contact_detail_unless_the_rules_allow_it(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    rules = replace(RULES, agency=AgencyRules(allow_email=True, allow_phone=True))
    export(engine, tmp_path, rules=rules)
    header, row, *_ = read_csv(tmp_path / "agency.csv")   # one row per invoice: the first
    assert header == EXPORT_COLUMNS + ["email", "phone"]
    # The phone is stored in E.164 (issue #14); the shared CSV writer makes a leading '+' inert.
    assert row[-2:] == ["claire@example.org", "'+33612345678"]


def test_the_manifest_carries_the_checksum_the_totals_and_the_audit_head(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    manifest = json.loads((tmp_path / "agency.csv.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256((tmp_path / "agency.csv").read_bytes()).hexdigest()
    assert (manifest["row_count"], manifest["case_count"], manifest["total_cents"], manifest["total"]) == \
        (2, 1, 15000, "150.00")
    assert manifest["columns"] == EXPORT_COLUMNS
    assert manifest["as_of"] == "2025-04-20" and manifest["created_at"]
    with engine.connect() as conn:   # the head as the export was recorded; the next event vouches for the manifest
        assert manifest["audit_head"] == conn.execute(text(
            "SELECT hash FROM audit_event WHERE kind = 'agency_export'")).scalar_one()
        assert verify(conn).ok


def test_the_amount_due_is_net_of_what_was_paid_and_of_credits(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                          "VALUES ('X1', 'credit', 2500, 'overpayment', 'P1')"))
    assert export(engine, tmp_path).total_cents == 15000 - 2500


def test_handed_over_invoices_leave_the_ladder_and_the_case_is_recorded(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    with engine.connect() as conn:
        assert handed_over_invoices(conn) == {"F2025-000301", "F2025-000302"}
        case = conn.execute(text("SELECT case_id, status, amount_cents FROM agency_case")).one()
        assert tuple(case) == ("AG-20250420-P1", "handed_over", 15000)
        assert verify(conn).ok


def kept_out(engine, tmp_path, as_of=HANDOVER) -> dict[str, str]:
    report = export(engine, tmp_path, as_of)
    assert report.cases == 0 and not (tmp_path / "agency.csv").exists()
    return report.left_out


def test_a_patient_without_a_mise_en_demeure_stays_in(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    letter(engine, "L2-P1", date(2025, 3, 1), ["F2025-000301"], level=2)
    assert kept_out(engine, tmp_path) == {}


def test_a_mise_en_demeure_younger_than_the_delay_keeps_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    assert kept_out(engine, tmp_path, date(2025, 4, 15)) == {"P1": "level3_too_recent"}


def test_the_agency_takes_only_the_invoices_a_mise_en_demeure_formally_demanded(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    letter(engine, "L3-P1", date(2025, 4, 1), ["F2025-000301"], also_due={"F2025-000302": 1})
    report = export(engine, tmp_path)
    assert report.cases == 1 and report.total_cents == 12000
    with engine.connect() as conn:
        assert handed_over_invoices(conn) == {"F2025-000301"}


def test_a_plan_proposed_and_awaiting_its_answer_keeps_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plan (patient_id, status, proposed_on, total_cents, invoice_numbers) "
                          "VALUES ('P1', 'proposed', :d, 15000, 'F2025-000301 F2025-000302')"), {"d": date(2025, 4, 10)})
    assert kept_out(engine, tmp_path) == {"P1": "plan_proposed"}
    assert export(engine, tmp_path, date(2025, 5, 10)).cases == 1   # lapsed unanswered: the handover goes on


def test_an_active_plan_keeps_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plan (patient_id, status, proposed_on, accepted_on, total_cents, "
                          "invoice_numbers) VALUES ('P1', 'active', :d, :d, 15000, 'F2025-000301 F2025-000302')"),
                     {"d": date(2025, 4, 10)})
    assert kept_out(engine, tmp_path) == {"P1": "in_plan"}


def test_an_open_dispute_keeps_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dispute (invoice_number, received_on, channel, category, status, reason, "
                          "answer_due) VALUES ('F2025-000302', :d, 'phone', 'amount', 'forwarded', 'montant', :d)"),
                     {"d": date(2025, 4, 5)})
    assert kept_out(engine, tmp_path) == {"P1": "disputed"}


def test_a_hold_keeps_the_case_in_until_it_is_released(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hold (patient_id, reason, since) VALUES ('P1', 'hospitalisation', :d)"),
                     {"d": date(2025, 4, 2)})
    assert kept_out(engine, tmp_path) == {"P1": "on_hold"}
    with engine.begin() as conn:
        conn.execute(text("UPDATE hold SET released_on = :d"), {"d": date(2025, 4, 19)})
    assert export(engine, tmp_path).cases == 1


def test_a_hold_that_starts_after_the_handover_day_does_not_keep_the_case_in(engine, settings, tmp_path):
    """The agency used to stop at any hold not released, even one starting later; the letters did not."""
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hold (patient_id, reason, since) VALUES ('P1', 'hospitalisation', :d)"),
                     {"d": date(2025, 5, 1)})
    assert export(engine, tmp_path).cases == 1


def test_a_hold_released_only_after_the_handover_day_still_keeps_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hold (patient_id, reason, since, released_on) "
                          "VALUES ('P1', 'hospitalisation', :s, :r)"), {"s": date(2025, 4, 2), "r": date(2025, 4, 25)})
    assert kept_out(engine, tmp_path) == {"P1": "on_hold"}


def test_a_dispute_received_after_the_handover_day_does_not_keep_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dispute (invoice_number, received_on, channel, category, status, reason, "
                          "answer_due) VALUES ('F2025-000302', :d, 'phone', 'amount', 'open', 'montant', :d)"),
                     {"d": date(2025, 4, 25)})
    assert export(engine, tmp_path).cases == 1


def test_an_invoice_whose_insurer_share_is_still_awaited_is_left_out_of_the_case(engine, settings, tmp_path):
    awaiting = invoice("F2025-000302", "2025-01-20", 3000).replace(";30,00;0;0;30,00;", ";130,00;100,00;0;30,00;")
    ready(engine, settings, tmp_path, [invoice("F2025-000301", "2025-01-10", 12000), awaiting])
    report = export(engine, tmp_path)
    assert report.cases == 1 and report.total_cents == 12000
    with engine.connect() as conn:
        assert handed_over_invoices(conn) == {"F2025-000301"}


def queued_payment(engine, payer: str, cents: int, patient: str | None = None):
    """A patient's transfer waiting in the queue, in `patient`'s name or (None) in nobody's."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payment (payment_id, payment_date, payer_type, payer_name, amount_cents, "
                          "reference, status, source_file, reconciled) VALUES ('B1', :d, 'patient', :n, :a, '', "
                          "'paid', 'bank.csv', TRUE)"), {"d": date(2025, 4, 10), "n": payer, "a": cents})
        conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                          "VALUES ('B1', 'unmatched', :a, 'no reference', :p)"), {"a": cents, "p": patient})


def test_a_queued_payment_in_nobodys_name_that_may_be_the_patients_keeps_the_case_in(engine, settings, tmp_path):
    """The ladder held such a patient; the agency handed them over (issue #12's follow-up)."""
    ready(engine, settings, tmp_path)
    queued_payment(engine, "MME CLAIRE MARTIN", 3000)
    assert kept_out(engine, tmp_path) == {"P1": "queued_payment"}


def test_a_queued_payment_of_another_amount_does_not_keep_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    queued_payment(engine, "MME CLAIRE MARTIN", 2999)
    assert export(engine, tmp_path).cases == 1


def test_a_payment_in_the_patients_name_awaiting_matching_keeps_the_case_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    queued_payment(engine, "C MARTIN", 5000, patient="P1")
    assert kept_out(engine, tmp_path) == {"P1": "pending_credit"}


def test_a_time_barred_debt_is_never_handed_over(engine, settings, tmp_path):
    world(engine, settings, tmp_path, [invoice("F2023-000001", "2023-01-10", 12000)])
    letter(engine, "L3-P1", date(2024, 12, 1), ["F2023-000001"])
    assert kept_out(engine, tmp_path, date(2025, 1, 10)) == {"P1": "time_barred"}


def test_a_debt_under_the_minimum_stays_in(engine, settings, tmp_path):
    ready(engine, settings, tmp_path, [invoice("F2025-000301", "2025-01-10", 499)])
    assert kept_out(engine, tmp_path) == {"P1": "below_minimum"}


def test_running_the_same_export_again_hands_nothing_over_twice(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    first = (tmp_path / "agency.csv").read_bytes() if export(engine, tmp_path).cases else None
    again = export(engine, tmp_path, name="again.csv")
    assert again.cases == 0 and again.left_out == {"P1": "handed_over"}
    assert not (tmp_path / "again.csv").exists() and (tmp_path / "agency.csv").read_bytes() == first


def test_an_existing_export_file_is_never_overwritten(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    (tmp_path / "agency.csv").write_text("earlier handover\n")
    with pytest.raises(RecouvrementError, match="jamais écrasé"):
        export(engine, tmp_path)
    with engine.connect() as conn:
        assert handed_over_invoices(conn) == set()


RETURNS_HEADER = "case_id;date;collected_amount;status;note"


def returns(tmp_path, rows, name="returns.csv"):
    return write(tmp_path / name, RETURNS_HEADER, rows)


def patient_due(engine, as_of=date(2025, 6, 1)) -> int:
    shares = outstanding_shares(engine, as_of)
    return int(shares[shares["payer_type"] == "patient"]["due_cents"].sum())


def test_collected_amounts_settle_the_case_invoices_oldest_first(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    report = import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;15/05/2025;130,00;collected;"]))
    assert (report.imported, report.rejects) == (1, [])
    with engine.connect() as conn:
        allocations = conn.execute(text("SELECT payment_id, invoice_number, payer_type, amount_cents, rule "
                                        "FROM allocation ORDER BY invoice_number")).all()
        assert conn.execute(text("SELECT status FROM agency_case")).scalar_one() == "partial"   # 130 of 150
        assert verify(conn).ok
    assert [tuple(a) for a in allocations] == [
        ("AGENCY-AG-20250420-P1-20250515-2", "F2025-000301", "patient", 12000, "agency"),
        ("AGENCY-AG-20250420-P1-20250515-2", "F2025-000302", "patient", 1000, "agency")]
    assert patient_due(engine) == 2000


def test_reimporting_the_agency_returns_changes_nothing(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    path = returns(tmp_path, ["AG-20250420-P1;2025-05-15;50,00;collected;", "AG-20250420-P1;2025-05-20;;returned;"])
    import_agency_returns(engine, path)
    with engine.connect() as conn:
        events = conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one()
    again = import_agency_returns(engine, path)
    assert (again.imported, again.duplicates) == (0, 2)
    assert patient_due(engine) == 10000
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one() == events
        assert conn.execute(text("SELECT status FROM agency_case")).scalar_one() == "returned"


def test_an_unknown_case_is_refused_with_its_line_and_the_good_lines_are_kept(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    report = import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;20,00;collected;",
                                                              "AG-20990101-P9;2025-05-15;10,00;collected;"]))
    assert report.imported == 1
    assert [(r.file, r.line, r.field) for r in report.rejects] == [("returns.csv", 3, "case_id")]
    assert patient_due(engine) == 13000


def test_a_returned_case_goes_to_the_worklist_and_never_back_to_the_ladder(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-06-01;;returned;débiteur introuvable"]))
    with engine.connect() as conn:
        assert [c["case_id"] for c in returned_cases(conn)] == ["AG-20250420-P1"]
        assert handed_over_invoices(conn) == {"F2025-000301", "F2025-000302"}


def test_bad_cells_in_the_returns_are_refused_with_line_and_field(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    report = import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;31/02/2025;10,00;collected;",
                                                              "AG-20250420-P1;2025-05-15;dix;collected;",
                                                              "AG-20250420-P1;2025-05-15;10,00;paid;"]))
    assert [(r.line, r.field) for r in report.rejects] == [(2, "date"), (3, "collected_amount"), (4, "status")]
    assert report.imported == 0


def test_the_agency_commands_export_and_import(engine, settings, db_url, tmp_path):
    from recouvrement.cli import cli
    import recouvrement.cli.commands  # noqa: F401  (registers the commands)
    ready(engine, settings, tmp_path)
    runner = CliRunner()
    base = ["--db", db_url, "--config", str(tmp_path / "none.toml")]
    (tmp_path / "none.toml").write_text("")
    done = runner.invoke(cli, [*base, "export", "agency", "--as-of", "2025-04-20", "--out", str(tmp_path / "a.csv")])
    assert done.exit_code == 0, done.output
    again = runner.invoke(cli, [*base, "export", "agency", "--as-of", "2025-04-20", "--out", str(tmp_path / "b.csv")])
    assert "rien de nouveau à remettre" in again.output
    path = returns(tmp_path, ["AG-20250420-P1;2025-05-15;10,00;collected;", "NOPE;2025-05-15;10,00;collected;"])
    imported = runner.invoke(cli, [*base, "import", "agency-returns", str(path)])
    assert imported.exit_code == 1 and "NOPE" in imported.output + str(imported.stderr_bytes or b"")


# -- the debtor: never a child --------------------------------------------------------------------------

GUARANTOR_HEADER = (INVOICE_HEADER + ";birth_date;guarantor_last_name;guarantor_first_name;guarantor_address;"
                    "guarantor_postal_code;guarantor_city;guarantor_email")


def child(guarantor: bool) -> list[str]:
    parent = "Martin;Paul;9 rue Basse;75012;Paris;paul@example.org" if guarantor else ";;;;;"
    return [f"{row.replace('Claire', 'Léa').replace('claire@example.org', '')};2015-06-01;{parent}"
            for row in (invoice("F2025-000301", "2025-01-10", 12000), invoice("F2025-000302", "2025-01-20", 3000))]


def test_the_agency_file_names_the_guarantor_of_a_minor_as_the_debtor(engine, settings, tmp_path):
    import_file(engine, write(tmp_path / "invoices.csv", GUARANTOR_HEADER, child(guarantor=True)), settings)
    letter(engine, "L3-P1", date(2025, 4, 1), ["F2025-000301", "F2025-000302"])
    rules = replace(RULES, agency=AgencyRules(allow_email=True, allow_phone=True))
    assert export(engine, tmp_path, rules=rules).cases == 1
    header, row, *_ = read_csv(tmp_path / "agency.csv")   # one row per invoice: the first
    debtor = dict(zip(header, row))
    assert [debtor[c] for c in ("patient_id", "last_name", "first_name", "address", "postal_code", "city", "email",
                                "phone")] == ["P1", "Martin", "Paul", "9 rue Basse", "75012", "Paris", "paul@example.org", ""]
    assert "Léa" not in (tmp_path / "agency.csv").read_text(encoding="utf-8")


def test_a_minor_without_a_guarantor_is_never_handed_over(engine, settings, tmp_path):
    import_file(engine, write(tmp_path / "invoices.csv", GUARANTOR_HEADER, child(guarantor=False)), settings)
    letter(engine, "L3-P1", date(2025, 4, 1), ["F2025-000301", "F2025-000302"])
    assert kept_out(engine, tmp_path) == {"P1": "minor_without_guarantor"}


# -- partial collections ------------------------------------------------------------------------------------

def case_status(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT status FROM agency_case")).scalar_one()


def test_a_partial_collection_is_recorded_as_partial_and_reported_apart(engine, settings, tmp_path):
    from recouvrement.app.report import report_data
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;50,00;collected;"]))
    assert case_status(engine) == "partial"
    assert report_data(engine, date(2025, 6, 1)).agency == [("Recouvrés en partie", 1, 15000, 5000)]


def test_a_collection_completed_by_a_later_line_is_collected_in_full(engine, settings, tmp_path):
    from recouvrement.app.report import report_data
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;50,00;collected;",
                                                     "AG-20250420-P1;2025-05-30;100,00;collected;"]))
    assert case_status(engine) == "collected"
    assert report_data(engine, date(2025, 6, 1)).agency == [("Recouvrés en totalité", 1, 15000, 15000)]


def test_a_returns_line_that_cannot_be_read_is_refused_alone_with_its_line(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)
    report = import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;20,00;collected;",
                                                              "AG-20250420-P1;2025-05-16;Martin Claire, kiné",
                                                              "AG-20250420-P1;2025-05-17;10000000,01;collected;",
                                                              "AG-20250420-P1;2025-05-18;10,00;collected;;;"]))
    assert report.imported == 2 and report.rows_read == 4
    assert [(r.file, r.line, r.field) for r in report.rejects] == [("returns.csv", 3, "line"),
                                                                   ("returns.csv", 4, "collected_amount")]
    assert "kiné" not in " ".join(str(r) for r in report.rejects)     # the refused line is never echoed
    assert patient_due(engine) == 15000 - 3000


def test_an_export_killed_after_writing_its_file_is_finished_by_the_next_and_never_made_twice(
        engine, settings, tmp_path, monkeypatch):
    import recouvrement.app.agency as agency_module
    ready(engine, settings, tmp_path)
    write = agency_module.write_atomically

    def write_then_die(path, data):
        write(path, data)
        if str(path).endswith(".manifest.json"):
            raise KeyboardInterrupt("killed just after writing the files")
    monkeypatch.setattr(agency_module, "write_atomically", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        export(engine, tmp_path)
    monkeypatch.setattr(agency_module, "write_atomically", write)
    again = export(engine, tmp_path, name="agency-2.csv")
    assert again.cases == 0 and not (tmp_path / "agency-2.csv").exists()
    rows = [row for path in tmp_path.glob("agency*.csv") for row in read_csv(path)[1:]]
    assert [(row[0], row[9]) for row in rows] == [("AG-20250420-P1", "F2025-000301"), ("AG-20250420-P1", "F2025-000302")]


def test_an_export_killed_before_writing_its_file_is_written_by_the_next_run(engine, settings, tmp_path, monkeypatch):
    import recouvrement.app.agency as agency_module
    ready(engine, settings, tmp_path)

    def die(path, data):
        raise KeyboardInterrupt("killed before writing the file")
    monkeypatch.setattr(agency_module, "write_atomically", die)
    with pytest.raises(KeyboardInterrupt):
        export(engine, tmp_path)
    monkeypatch.undo()
    assert export(engine, tmp_path, name="agency-2.csv").cases == 0
    assert {row[0] for row in read_csv(tmp_path / "agency.csv")[1:]} == {"AG-20250420-P1"}
    manifest = json.loads((tmp_path / "agency.csv.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256((tmp_path / "agency.csv").read_bytes()).hexdigest()


# -- the returns' statuses (issue #15) ----------------------------------------------------------------------

def handed_over(engine, settings, tmp_path):
    ready(engine, settings, tmp_path)
    export(engine, tmp_path)


def test_a_partial_line_collects_its_amount_and_leaves_the_case_partial(engine, settings, tmp_path):
    handed_over(engine, settings, tmp_path)
    report = import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;40,00;partial;"]))
    assert (report.imported, report.rejects) == (1, [])
    assert case_status(engine) == "partial" and patient_due(engine) == 11000


def test_a_plan_proposed_by_the_debtor_shows_on_the_case_and_nothing_is_chased_meanwhile(engine, settings, tmp_path):
    from recouvrement.app.remind import run_remind
    from recouvrement.app.report import report_data
    handed_over(engine, settings, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;25,00;plan_proposed;"]))
    assert case_status(engine) == "plan_proposed" and patient_due(engine) == 12500
    assert report_data(engine, date(2025, 6, 1)).agency == [("Échéancier proposé par le débiteur", 1, 15000, 2500)]
    assert run_remind(engine, settings, date(2025, 6, 1), tmp_path / "letters").letters_by_level == {}


def test_a_disputed_case_enters_the_complaints_register_and_the_ladder_stops(engine, settings, tmp_path):
    from recouvrement.db.disputes import disputed_invoices, list_disputes
    handed_over(engine, settings, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;;disputed;conteste le montant"]))
    with engine.connect() as conn:
        register = list_disputes(conn)
        assert disputed_invoices(conn, date(2025, 5, 15)) == {"F2025-000301", "F2025-000302"}
        assert verify(conn).ok
    assert [(d.invoice_number, d.received_on, d.answer_due, d.status) for d in register] == [
        ("F2025-000301", date(2025, 5, 15), date(2025, 7, 14), "open"),
        ("F2025-000302", date(2025, 5, 15), date(2025, 7, 14), "open")]
    assert case_status(engine) == "disputed" and patient_due(engine) == 15000    # disputed, still owed


def test_an_uncollectable_return_writes_off_what_is_owed_leaves_the_ladder_and_shows_in_the_fec(engine, settings,
                                                                                              tmp_path):
    from recouvrement.app.books import export_fec
    from recouvrement.app.report import report_data
    from recouvrement.rules import AccountingRules
    from tests.fec_structure import check_entries, read_fec
    handed_over(engine, settings, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;130,00;partial;",
                                                     "AG-20250420-P1;2025-06-10;;uncollectable;débiteur insolvable"]))
    assert case_status(engine) == "uncollectable" and patient_due(engine, date(2025, 6, 10)) == 0
    assert patient_due(engine, date(2025, 6, 9)) == 2000       # written off on the line's day
    with engine.connect() as conn:
        written = conn.execute(text("SELECT invoice_number, amount_cents, reason, written_off_on FROM write_off")).all()
        assert verify(conn).ok
    assert [(n, int(a), r, str(d)[:10]) for n, a, r, d in written] == [
        ("F2025-000302", 2000, "agency_uncollectable", "2025-06-10")]
    assert report_data(engine, date(2025, 7, 1)).agency == [("Irrécouvrables (passés en non-valeur)", 1, 15000, 13000)]
    assert run_remind_letters(engine, settings, tmp_path) == {}
    _, records = read_fec(export_fec(engine, settings, AccountingRules(), 2025, tmp_path / "fec.txt").fec)
    check_entries(records)
    loss = [(r["JournalCode"], r["CompteNum"], r["CompAuxNum"], r["Debit"], r["Credit"]) for r in records
            if "non-valeur" in r["EcritureLib"]]
    assert loss == [("OD", "654000", "", "20,00", "0,00"), ("OD", "411100", "P1", "0,00", "20,00")]
    assert "irrécouvrable selon l'agence" in [r for r in records if "non-valeur" in r["EcritureLib"]][0]["EcritureLib"]


def run_remind_letters(engine, settings, tmp_path, day=date(2025, 7, 1)) -> dict:
    from recouvrement.app.remind import run_remind
    return run_remind(engine, settings, day, tmp_path / "letters").letters_by_level


def test_reimporting_returns_with_every_new_status_changes_nothing(engine, settings, tmp_path):
    handed_over(engine, settings, tmp_path)
    rules = replace(RULES, agency=AgencyRules(commission_rate_bp=1000))
    path = returns(tmp_path, ["AG-20250420-P1;2025-05-15;50,00;partial;", "AG-20250420-P1;2025-05-20;;plan_proposed;",
                              "AG-20250420-P1;2025-05-25;;disputed;", "AG-20250420-P1;2025-06-10;;uncollectable;"])
    first = import_agency_returns(engine, path, rules=rules)
    assert (first.imported, first.rejects) == (4, [])

    def tables() -> tuple:
        with engine.connect() as conn:
            return tuple(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                         for t in ("payment", "allocation", "dispute", "write_off", "agency_commission", "audit_event"))
    before = tables()
    again = import_agency_returns(engine, path, rules=rules)
    assert (again.imported, again.duplicates) == (0, 4)
    assert tables() == before and before[2:5] == (2, 2, 1)      # a dispute and a write-off per invoice


# -- the agency's commission ---------------------------------------------------------------------------------

def fec_of(engine, settings, tmp_path, year=2025):
    from recouvrement.app.books import export_fec
    from recouvrement.rules import AccountingRules
    return export_fec(engine, settings, AccountingRules(), year, tmp_path / "fec.txt")


def test_the_commission_at_the_rules_rate_balances_in_the_fec_and_is_never_charged_to_the_patient(engine, settings,
                                                                                                  tmp_path):
    from tests.fec_structure import check_entries, read_fec
    handed_over(engine, settings, tmp_path)
    rules = replace(RULES, agency=AgencyRules(commission_rate_bp=1500))
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;130,00;partial;"]), rules=rules)
    assert patient_due(engine) == 2000                      # 150 - 130: the 19,50 of commission is not theirs
    done = fec_of(engine, settings, tmp_path)
    _, records = read_fec(done.fec)
    check_entries(records)
    commission = [(r["JournalCode"], r["CompteNum"], r["Debit"], r["Credit"], r["PieceRef"]) for r in records
                  if r["EcritureLib"].startswith("Commission")]
    assert commission == [("OD", "622600", "19,50", "0,00", "AGENCY-AG-20250420-P1-20250515-2"),
                          ("OD", "401900", "0,00", "19,50", "AGENCY-AG-20250420-P1-20250515-2")]
    assert sum(cents(r["Debit"]) for r in records) == sum(cents(r["Credit"]) for r in records)


def test_the_commission_lines_are_in_the_accounting_journal_csv(engine, settings, tmp_path):
    handed_over(engine, settings, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;100,00;partial;"]),
                          rules=replace(RULES, agency=AgencyRules(commission_rate_bp=1000)))
    done = fec_of(engine, settings, tmp_path)
    with open(done.journal, encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter=";") if r["libelle"].startswith("Commission")]
    assert [(r["compte"], r["debit"], r["credit"]) for r in rows] == [("622600", "10,00", "0,00"),
                                                                      ("401900", "0,00", "10,00")]


def test_a_commission_given_on_the_returns_line_wins_over_the_rules_rate(engine, settings, tmp_path):
    handed_over(engine, settings, tmp_path)
    path = write(tmp_path / "returns.csv", RETURNS_HEADER + ";commission_amount",
                 ["AG-20250420-P1;2025-05-15;100,00;partial;;12,34", "AG-20250420-P1;2025-05-20;20,00;partial;;"])
    import_agency_returns(engine, path, rules=replace(RULES, agency=AgencyRules(commission_rate_bp=1000)))
    with engine.connect() as conn:
        booked = conn.execute(text("SELECT amount_cents, rate_bp FROM agency_commission ORDER BY booked_on")).all()
    assert [tuple(b) for b in booked] == [(1234, None), (200, 1000)]


def test_no_rate_and_no_commission_column_books_no_commission(engine, settings, tmp_path):
    handed_over(engine, settings, tmp_path)
    import_agency_returns(engine, returns(tmp_path, ["AG-20250420-P1;2025-05-15;100,00;partial;"]), rules=RULES)
    from tests.fec_structure import read_fec
    _, records = read_fec(fec_of(engine, settings, tmp_path).fec)
    assert not [r for r in records if r["CompteNum"] in ("622600", "401900")]


def test_a_bad_commission_is_refused_alone_with_its_line_and_field(engine, settings, tmp_path):
    handed_over(engine, settings, tmp_path)
    path = write(tmp_path / "returns.csv", RETURNS_HEADER + ";commission_amount",
                 ["AG-20250420-P1;2025-05-15;10,00;partial;;12,00", "AG-20250420-P1;2025-05-16;10,00;partial;;douze",
                  "AG-20250420-P1;2025-05-17;10,00;partial;;1,00", "AG-20250420-P1;2025-05-18;;partial;;"])
    report = import_agency_returns(engine, path)
    assert [(r.line, r.field) for r in report.rejects] == [(2, "commission_amount"), (3, "commission_amount"),
                                                           (5, "collected_amount")]
    assert report.imported == 1 and patient_due(engine) == 14000


# ---------------------------------------------------------------- patients numbered like diagnoses ("P10")

def numbered_patients(engine, settings, tmp_path, names: dict[str, str] | None = None) -> None:
    """Patients P1…P20, one invoice each, each claimed by a mise en demeure; `names` gives some a last name."""
    names = names or {}
    rows = [invoice(f"F2025-{n:06d}", "2025-01-10", 12000, patient=f"P{n}").replace(
        ";Martin;", f";{names.get(f'P{n}', 'Martin')};") for n in range(1, 21)]
    import_file(engine, write(tmp_path / "invoices.csv", INVOICE_HEADER, rows), settings)
    for n in range(1, 21):
        letter(engine, f"L3-P{n}", date(2025, 4, 1), [f"F2025-{n:06d}"], patient=f"P{n}")


def test_an_agency_export_for_patients_numbered_p1_to_p20_is_written_and_its_ids_are_not_masked(
        engine, settings, tmp_path):
    """P10…P20 are shaped like CIM-10 codes (P10 exists): they used to refuse the whole file."""
    numbered_patients(engine, settings, tmp_path)
    report = export(engine, tmp_path)
    assert (report.cases, report.masked) == (20, 0)
    header, *rows = read_csv(tmp_path / "agency.csv")
    assert sorted(row[header.index("patient_id")] for row in rows) == sorted(f"P{n}" for n in range(1, 21))
    assert {row[header.index("last_name")] for row in rows} == {"Martin"}


def test_a_care_word_or_a_cim10_code_in_another_cell_of_a_file_of_numbered_patients_is_still_masked(
        engine, settings, tmp_path):
    numbered_patients(engine, settings, tmp_path, names={"P12": "J45", "P13": "Psychiatrie"})
    report = export(engine, tmp_path)
    assert (report.cases, report.masked) == (20, 2)
    header, *rows = read_csv(tmp_path / "agency.csv")
    by_patient = {row[header.index("patient_id")]: row for row in rows}
    assert by_patient["P12"][header.index("last_name")] == by_patient["P13"][header.index("last_name")] == "[masqué]"
    assert by_patient["P14"][header.index("last_name")] == "Martin"


def test_a_diagnosis_code_typed_in_a_name_that_equals_a_patient_id_of_the_file_is_still_masked(
        engine, settings, tmp_path):
    """P10 is a patient id of the file, so it is an identifier in the patient_id column; typed as P11's last
    name (a free-text cell, scanned without the file's identifiers) it is still a diagnosis code."""
    numbered_patients(engine, settings, tmp_path, names={"P11": "P10"})
    report = export(engine, tmp_path)
    assert (report.cases, report.masked) == (20, 1)
    header, *rows = read_csv(tmp_path / "agency.csv")
    by_patient = {row[header.index("patient_id")]: row for row in rows}
    assert by_patient["P11"][header.index("last_name")] == "[masqué]"
    assert by_patient["P10"][header.index("last_name")] == "Martin"


def test_the_audit_scan_of_an_agency_export_for_numbered_patients_finds_nothing(engine, settings, tmp_path):
    """`recouvrement audit scan` reads the file's key columns as identifiers, as the writer did."""
    numbered_patients(engine, settings, tmp_path)
    export(engine, tmp_path)
    assert scan_file(tmp_path / "agency.csv") == []
