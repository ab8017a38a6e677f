"""The books: a year of the sample clinic as a FEC (balanced, in the published structure, equal to the
ledger to the cent) and as an accounting journal CSV."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app.books import export_fec
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.audit import AuditSeal, seal_engine
from recouvrement.config import Creditor, Privacy, load_settings
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError
from recouvrement.rules import AccountingRules, load_rules
from recouvrement.scanner import scan_file
from tests.app.world import invoices_file, payments_file
from tests.fec_structure import FILE_NAME, cents, check_entries, read_fec

SAMPLES = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic"
FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "retour_noemie.rsp", "bank_camt053.xml",
         "bank_cfonb120.txt")
RULES = AccountingRules()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample clinic imported and reconciled, and its 2026 books written in a folder (SIREN name)."""
    folder = tmp_path_factory.mktemp("books")
    engine = seal_engine(open_engine(f"sqlite:///{folder / 'sample.db'}"),
                         AuditSeal(b"test-audit-key", folder / "checkpoint"))
    loaded = load_settings(SAMPLES / "recouvrement.toml")
    # The NIR key and the audit checkpoint in the test's folder: never written beside the committed sample settings.
    settings = replace(loaded, privacy=Privacy(nir_key_file=folder / "nir.key"),
                       audit=replace(loaded.audit, checkpoint_file=folder / "checkpoint"))
    for name in FILES:
        import_file(engine, SAMPLES / name, settings)
    run_reconcile(engine)
    out = folder / "out"
    out.mkdir()
    done = export_fec(engine, settings, RULES, 2026, out)
    yield engine, done
    engine.dispose()


def scalar(engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one() or 0)


def lines_on(records, account: str, journal: str | None = None) -> tuple[int, int]:
    chosen = [r for r in records if r["CompteNum"] == account and journal in (None, r["JournalCode"])]
    return sum(cents(r["Debit"]) for r in chosen), sum(cents(r["Credit"]) for r in chosen)


def test_a_year_of_the_sample_clinic_is_written_under_the_conventional_fec_name(sample):
    _, done = sample
    assert FILE_NAME.match(done.fec.name)
    assert done.fec.name == "845123678FEC20261231.txt"
    assert done.journal.name == "845123678FEC20261231.journal.csv"


def test_the_sample_clinic_fec_follows_the_published_structure(sample):
    _, done = sample
    separator, records = read_fec(done.fec)
    assert separator == "|"
    assert len(records) == done.lines > 600
    assert {r["EcritureDate"][:4] for r in records} == {"2026"}


def test_the_sample_clinic_fec_balances_per_entry_and_overall(sample):
    _, done = sample
    _, records = read_fec(done.fec)
    entries = check_entries(records)
    assert len(entries) == done.entries
    debit = sum(cents(r["Debit"]) for r in records)
    credit = sum(cents(r["Credit"]) for r in records)
    assert debit == credit == done.debit_cents == done.credit_cents


def test_the_sample_clinic_fec_matches_the_ledger_to_the_cent(sample):
    engine, done = sample
    _, records = read_fec(done.fec)
    year = "p.payment_date BETWEEN '2026-01-01' AND '2026-12-31'"
    allocated = {share: scalar(engine, f"SELECT SUM(a.amount_cents) FROM allocation a JOIN payment p ON "
                                       f"p.payment_id = a.payment_id WHERE a.payer_type = '{share}' AND {year} "
                                       "AND a.amount_cents > 0")
                 for share in ("amo", "amc", "patient")}
    # An insurer's clawback (the NOEMIE return's retenue) is a negative allocation: booked the other way round.
    clawed = {share: -scalar(engine, f"SELECT SUM(a.amount_cents) FROM allocation a JOIN payment p ON "
                                     f"p.payment_id = a.payment_id WHERE a.payer_type = '{share}' AND {year} "
                                     "AND a.amount_cents < 0")
              for share in ("amo", "amc", "patient")}
    credits = scalar(engine, f"SELECT SUM(e.remaining_cents) FROM payment_exception e JOIN payment p ON "
                             f"p.payment_id = e.payment_id WHERE e.kind = 'credit' AND {year}")
    moved = {payer: scalar(engine, "SELECT SUM(amount_cents) FROM share_transfer WHERE from_payer = "
                                   f"'{payer}' AND transfer_date BETWEEN '2026-01-01' AND '2026-12-31'")
             for payer in ("amo", "amc")}
    back = {payer: scalar(engine, "SELECT SUM(amount_cents) FROM share_transfer WHERE from_payer = "
                                  f"'{payer}' AND reversed_on BETWEEN '2026-01-01' AND '2026-12-31'")
            for payer in ("amo", "amc")}
    assert allocated["patient"] > 0 and credits > 0 and moved["amo"] > 0 and moved["amc"] > 0 and clawed["amo"] > 0
    assert lines_on(records, RULES.bank.number) == (sum(allocated.values()) + credits, sum(clawed.values()))
    assert lines_on(records, RULES.amo.number, "BQ") == (clawed["amo"], allocated["amo"])
    assert lines_on(records, RULES.amc.number, "BQ") == (clawed["amc"], allocated["amc"])
    assert lines_on(records, RULES.patient.number, "BQ") == (clawed["patient"], allocated["patient"])
    assert lines_on(records, RULES.credit.number) == (0, credits)
    assert lines_on(records, RULES.amo.number, "OD") == (back["amo"], moved["amo"])
    assert lines_on(records, RULES.amc.number, "OD") == (back["amc"], moved["amc"])
    assert lines_on(records, RULES.patient.number, "OD") == (sum(moved.values()), sum(back.values()))


def test_each_patients_receipts_are_on_their_own_auxiliary_account(sample):
    engine, done = sample
    _, records = read_fec(done.fec)
    with engine.connect() as conn:
        expected = {p: int(c) for p, c in conn.execute(text(
            "SELECT i.patient_id, SUM(a.amount_cents) FROM allocation a JOIN payment p ON p.payment_id = "
            "a.payment_id JOIN invoice i ON i.invoice_number = a.invoice_number WHERE a.payer_type = 'patient' "
            "AND p.payment_date BETWEEN '2026-01-01' AND '2026-12-31' GROUP BY i.patient_id"))}
    found: dict[str, int] = defaultdict(int)
    for r in records:
        if r["CompteNum"] == RULES.patient.number and r["JournalCode"] == "BQ":
            found[r["CompAuxNum"]] += cents(r["Credit"])
    assert dict(found) == expected
    assert all(r["CompAuxLib"] for r in records if r["CompteNum"].startswith("411"))


def test_the_journal_csv_holds_the_same_lines_in_the_french_excel_dialect(sample):
    _, done = sample
    _, records = read_fec(done.fec)
    raw = done.journal.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with open(done.journal, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert [(r["ecriture"], r["compte"], cents(r["debit"]), cents(r["credit"])) for r in rows] == \
        [(r["EcritureNum"], r["CompteNum"], cents(r["Debit"]), cents(r["Credit"])) for r in records]
    assert rows[0]["date"] == f"{records[0]['EcritureDate'][:4]}-{records[0]['EcritureDate'][4:6]}-" \
                              f"{records[0]['EcritureDate'][6:]}"


def test_the_books_are_clean_for_the_privacy_scanner_and_recorded_in_the_audit_trail(sample):
    engine, done = sample
    assert scan_file(done.fec) == [] and scan_file(done.journal) == []
    with engine.connect() as conn:
        payload = conn.execute(text("SELECT payload FROM audit_event WHERE kind = 'export' ORDER BY seq DESC")).first()[0]
    assert '"export": "fec"' in payload and done.fec.name in payload and done.journal.name in payload


# -- small worlds -------------------------------------------------------------------------------------------

REJECTED = ["A1;2025-03-01;amo;CPAM DE PARIS;70,00;;F2025-000101;paid;",
            "A2;2025-03-02;amc;MGEN;0,00;;F2025-000101;rejected;Droits fermés",
            "B1;2025-03-05;patient;MME LEFEVRE ELOISE;45,00;;F2025-000102;;",
            "B2;2025-03-06;patient;LEFEVRE ELOISE;50,00;;F2025-000102;;"]


def world(engine, settings, tmp_path, rows=REJECTED):
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, rows), settings)
    run_reconcile(engine)


def test_a_rejection_moves_the_share_from_the_mutuelle_to_the_patient_in_the_transfer_journal(engine, settings,
                                                                                                tmp_path):
    world(engine, settings, tmp_path)
    done = export_fec(engine, settings, RULES, 2025, tmp_path / "fec.txt")
    _, records = read_fec(done.fec)
    moved = [r for r in records if r["JournalCode"] == "OD"]
    assert [(r["CompteNum"], r["CompAuxNum"], r["Debit"], r["Credit"], r["PieceRef"]) for r in moved] == [
        ("411100", "P1", "20,00", "0,00", "A2"), ("411300", "MUT-MGEN", "0,00", "20,00", "A2")]
    assert moved[0]["EcritureDate"] == "20250302" and moved[0]["CompAuxLib"] == "Lefèvre Éloïse"


def test_a_payment_beyond_what_was_due_books_the_excess_as_a_credit(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    done = export_fec(engine, settings, RULES, 2025, tmp_path / "fec.txt")
    _, records = read_fec(done.fec)
    b2 = [(r["CompteNum"], r["Debit"], r["Credit"]) for r in records if r["PieceRef"] == "B2"]
    assert b2 == [("512000", "50,00", "0,00"), ("419100", "0,00", "50,00")]
    check_entries(records)


def test_a_payment_of_another_year_stays_out_of_the_years_books(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    done = export_fec(engine, settings, RULES, 2026, tmp_path / "fec.txt")
    assert done.entries == 0 and read_fec(done.fec)[1] == []


def test_an_insurer_paying_after_all_reverses_the_move_on_that_day(engine, settings, tmp_path):
    rows = REJECTED[:2] + ["A3;2025-04-10;amc;MGEN;20,00;;F2025-000101;paid;"]
    world(engine, settings, tmp_path, rows)
    _, records = read_fec(export_fec(engine, settings, RULES, 2025, tmp_path / "fec.txt").fec)
    back = [(r["CompteNum"], r["Debit"], r["Credit"], r["EcritureDate"]) for r in records
            if r["JournalCode"] == "OD" and r["PieceRef"] == "A3"]
    assert back == [("411300", "20,00", "0,00", "20250410"), ("411100", "0,00", "20,00", "20250410")]


def test_an_insurers_clawback_is_booked_the_other_way_round_in_positive_amounts(engine, settings, tmp_path):
    rows = ["A1;2025-03-01;amo;CPAM;70,00;;F2025-000101;paid;", "K1;2025-04-02;amo;CPAM;-30,00;;F2025-000101;clawback;"]
    world(engine, settings, tmp_path, rows)
    _, records = read_fec(export_fec(engine, settings, RULES, 2025, tmp_path / "fec.txt").fec)
    taken = [(r["CompteNum"], r["Debit"], r["Credit"]) for r in records if r["PieceRef"] == "K1"]
    assert taken == [("512000", "0,00", "30,00"), ("411200", "30,00", "0,00")]
    check_entries(records)


def test_a_tab_separated_fec_has_the_same_zones(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    piped = read_fec(export_fec(engine, settings, RULES, 2025, tmp_path / "a.txt").fec)
    tabbed = read_fec(export_fec(engine, settings, RULES, 2025, tmp_path / "b.txt", separator="\t").fec)
    assert tabbed[0] == "\t" and tabbed[1] == piped[1]


def test_a_patient_name_the_scanner_flags_is_masked_and_the_rest_written(engine, settings, tmp_path):
    rows = ["F2025-000101;10/01/2025;09/02/2025;P1;Cardiologie;Séance kiné;3 rue des Lilas;75019;Paris;;;;"
            "100,00;70,00;20,00;10,00;MGEN;none;;"]
    import_file(engine, invoices_file(tmp_path, rows), settings)
    import_file(engine, payments_file(tmp_path, ["B1;2025-03-05;patient;X;10,00;;F2025-000101;;"]), settings)
    run_reconcile(engine)
    done = export_fec(engine, settings, RULES, 2025, tmp_path / "fec.txt")
    _, records = read_fec(done.fec)
    assert done.masked == 1
    assert [r["CompAuxLib"] for r in records if r["CompAuxNum"] == "P1"] == ["[masqué]"]
    assert scan_file(done.fec) == [] and scan_file(done.journal) == []


def test_a_folder_without_the_creditors_siret_is_refused_naming_the_setting(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    with pytest.raises(RecouvrementError) as caught:
        export_fec(engine, settings, RULES, 2025, tmp_path)
    assert caught.value.field == "creditor.siret"
    named = replace(settings, creditor=Creditor(siret="84512367800011"))
    assert export_fec(engine, named, RULES, 2025, tmp_path).fec.name == "845123678FEC20251231.txt"


def test_the_accounts_come_from_the_rules(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    rules = replace(RULES, bank=replace(RULES.bank, number="5121"))
    _, records = read_fec(export_fec(engine, settings, rules, 2025, tmp_path / "fec.txt").fec)
    assert Counter(r["CompteNum"] for r in records)["5121"] == 3


def test_an_account_number_not_starting_with_three_digits_is_refused_naming_the_key(tmp_path):
    import shutil
    from recouvrement.rules import DEFAULT_RULES_DIR
    folder = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, folder)
    path = folder / "accounting.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('number = "512000"', 'number = "BQ1"'), encoding="utf-8")
    with pytest.raises(RecouvrementError) as caught:
        load_rules(folder)
    assert caught.value.field == "accounts.bank.number" and "accounting.toml" in str(caught.value.file)


def test_the_command_writes_the_fec_and_says_so_in_french(engine, settings, tmp_path, db_url, monkeypatch, capsys):
    from tests.test_cli_messages import run_main
    world(engine, settings, tmp_path)
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "export", "fec", "--year", "2025", "--out",
                              str(tmp_path / "fec.txt"), "--separator", "tab")
    assert code == 0, err
    assert "écriture(s)" in out and "journal comptable CSV" in out
    assert read_fec(tmp_path / "fec.txt")[0] == "\t"


def test_the_command_refuses_a_folder_without_siret_in_one_line(engine, settings, tmp_path, db_url, monkeypatch,
                                                                 capsys):
    from tests.test_cli_messages import run_main
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "export", "fec", "--year", "2025", "--out",
                              str(tmp_path))
    assert code == 2 and "creditor.siret" in err and len(err.strip().splitlines()) == 1
