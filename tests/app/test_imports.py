"""Imports into a real database: nothing lost, nothing doubled, a failed import changes nothing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from recouvrement.app.imports import ImportRefused, import_file
from recouvrement.errors import RecouvrementError
from recouvrement.money import MAX_LINE_CENTS
from tests.app.world import INVOICES, invoices_file, payments_file
from tests.importers.test_cfonb120 import balance, complement, movement, write


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_french_excel_invoice_file_imports_every_row(engine, settings, tmp_path):
    report = import_file(engine, invoices_file(tmp_path), settings)
    assert (report.format, report.imported, report.rejects) == ("invoices_csv", 4, [])
    with engine.connect() as conn:
        row = conn.execute(text("SELECT last_name, first_name, coverage FROM patient WHERE patient_id = 'P2'")).one()
        invoice = conn.execute(text("SELECT total_cents, amo_cents, amc_cents, patient_cents, amc_payer, due_date "
                                    "FROM invoice WHERE invoice_number = 'F2025-000103'")).one()
    assert tuple(row) == ("De La Fontaine", "Jean-François", "none")
    assert tuple(invoice)[:5] == (5000, 2100, 600, 2300, "Harmonie Mutuelle")
    assert str(invoice[5]) == "2025-04-09"        # issue date + 30 days when the export has none


def test_the_import_batch_records_the_sha256_of_the_file_hashed_beside_its_parse(engine, settings, tmp_path):
    invoices, payments = invoices_file(tmp_path), payments_file(tmp_path, ["V1;2025-03-01;patient;X;10,00;;;;"])
    for path in (invoices, payments):
        import_file(engine, path, settings)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT source_file, sha256 FROM import_batch")).all())
    assert stored == {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in (invoices, payments)}


def test_a_file_unreadable_while_it_is_hashed_is_one_error_and_changes_nothing(engine, settings, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"invoice_number;patient_id\r\nF1;P1\r\n\x00")
    with pytest.raises(RecouvrementError):
        import_file(engine, broken, settings)
    assert count(engine, "import_batch") == 0


def test_a_patient_without_a_phone_or_a_nir_is_stored_with_neither(engine, settings, tmp_path):
    """The importer's missing phone and NIR hash (Arrow's missing text) are stored as NULL, beside a patient who
    has both, as the objects' None were."""
    phoned = INVOICES[0].replace("eloise@example.org;;", "eloise@example.org;06 12 34 56 78;")
    import_file(engine, invoices_file(tmp_path, [phoned] + INVOICES[2:3]), settings)
    with engine.connect() as conn:
        stored = dict((r[0], r[1:]) for r in conn.execute(text("SELECT patient_id, phone, nir_hash FROM patient")))
    assert stored["P2"] == (None, None)
    assert stored["P1"][0] == "+33612345678" and len(stored["P1"][1]) == 64


def test_the_nir_is_stored_only_as_a_keyed_hash(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT nir_hash FROM patient WHERE patient_id = 'P1'")).scalar_one()
        dump = " ".join(str(v) for r in conn.execute(text("SELECT * FROM patient")) for v in r)
    assert len(stored) == 64 and "285057512345" not in dump


def test_care_details_are_dropped_by_default(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    assert count(engine, "invoice_care") == 0


def test_care_details_are_kept_apart_when_the_installation_asks(engine, settings, tmp_path):
    from dataclasses import replace
    kept = replace(settings, privacy=replace(settings.privacy, keep_care=True))
    import_file(engine, invoices_file(tmp_path), kept)
    assert count(engine, "invoice_care") == 4


def test_reimporting_the_same_file_changes_nothing(engine, settings, tmp_path):
    path = invoices_file(tmp_path)
    import_file(engine, path, settings)
    with engine.connect() as conn:
        events = conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one()
    again = import_file(engine, path, settings)
    assert (again.imported, again.duplicates) == (0, 4)
    assert count(engine, "invoice") == 4 and count(engine, "patient") == 3
    assert count(engine, "audit_event") == events and count(engine, "import_batch") == 1


def test_a_bad_row_is_refused_with_its_line_field_and_reason_and_the_others_are_imported(engine, settings, tmp_path):
    rows = list(INVOICES)
    rows.insert(2, rows[2].replace("F2025-000103;10/03/2025", "F2025-000109;31/02/2025"))
    report = import_file(engine, invoices_file(tmp_path, rows), settings)
    assert [(r.line, r.field) for r in report.rejects] == [(4, "issue_date")]
    assert "31/02/2025" in report.rejects[0].reason
    assert count(engine, "invoice") == 4
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM invoice WHERE invoice_number = 'F2025-000109'")).scalar_one() == 0


def test_a_strict_import_with_one_bad_row_leaves_the_database_unchanged(engine, settings, tmp_path):
    rows = list(INVOICES)
    rows[1] = rows[1].replace("45,00;0;0;45,00", "45,00;0;0;44,00")
    with pytest.raises(ImportRefused) as refused:
        import_file(engine, invoices_file(tmp_path, rows), settings, strict=True)
    assert [(r.line, r.field) for r in refused.value.report.rejects] == [(3, "total_amount")]
    assert count(engine, "invoice") == 0 and count(engine, "patient") == 0 and count(engine, "audit_event") == 0


def test_the_same_invoice_number_with_other_amounts_is_refused_not_overwritten(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    changed = [INVOICES[0].replace("100,00;70,00;20,00;10,00", "100,00;70,00;10,00;20,00")]
    report = import_file(engine, invoices_file(tmp_path, changed, name="again.csv"), settings)
    assert [(r.line, r.field) for r in report.rejects] == [(2, "invoice_number")]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT patient_cents FROM invoice WHERE invoice_number = 'F2025-000101'")
                            ).scalar_one() == 1000


def test_comma_separated_utf8_with_bom_and_iso_dates_is_read(engine, settings, tmp_path):
    path = tmp_path / "inv.csv"
    header = "invoice_number,issue_date,patient_id,last_name,first_name,address,postal_code,city,total_amount,amo_amount,patient_amount"
    path.write_text(header + '\nA-1,2025-05-02,P9,Ñúñez,Zoé,"4, rue Pasteur",13001,Marseille,"12,50",0,"12,50"\n',
                    encoding="utf-8-sig")
    report = import_file(engine, path, settings)
    assert (report.imported, report.rejects) == (1, [])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT first_name || ' ' || last_name FROM patient")).scalar_one() == "Zoé Ñúñez"
        assert conn.execute(text("SELECT patient_cents FROM invoice")).scalar_one() == 1250


def test_a_file_missing_a_column_gets_a_clear_error_and_changes_nothing(engine, settings, tmp_path):
    path = tmp_path / "inv.csv"
    path.write_text("invoice_number;patient_id;last_name\nX;P;N\n")
    with pytest.raises(RecouvrementError, match="inv.csv"):
        import_file(engine, path, settings)
    assert count(engine, "invoice") == 0


def test_payments_in_another_currency_are_refused_with_their_reason(engine, settings, tmp_path):
    path = tmp_path / "pay.csv"
    path.write_text("payment_id;payment_date;payer_type;payer_name;amount;reference;currency\n"
                    "A;01/04/2025;patient;X;10,00;;EUR\nB;01/04/2025;patient;Y;10,00;;USD\n")
    report = import_file(engine, path, settings)
    assert report.imported == 1
    assert [(r.line, r.field) for r in report.rejects] == [(3, "currency")]
    assert "USD" in report.rejects[0].reason


def test_payment_rows_are_imported_once_whatever_file_brings_them_again(engine, settings, tmp_path):
    rows = ["R1;2025-04-01;amo;CPAM DE PARIS;70,00;;F2025-000101;paid;",
            "R2;2025-04-01;amc;MGEN;20,00;;F2025-000101;rejected;Droits fermés"]
    import_file(engine, payments_file(tmp_path, rows), settings)
    report = import_file(engine, payments_file(tmp_path, rows[::-1] + ["R3;2025-04-02;patient;X;5;;;;"],
                                               name="more.csv"), settings)
    assert (report.imported, report.duplicates) == (1, 2)
    assert count(engine, "payment") == 3


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cents=st.lists(st.integers(min_value=1, max_value=MAX_LINE_CENTS), min_size=1, max_size=8),
       style=st.sampled_from(["fr", "iso", "fr_thousands"]))
def test_no_cent_is_created_or_lost_by_parsing_and_storing(engine, settings, tmp_path_factory, cents, style):
    folder = tmp_path_factory.mktemp("amounts")
    def written(c: int) -> str:
        units, frac = divmod(c, 100)
        if style == "iso":
            return f"{units}.{frac:02d}"
        if style == "fr_thousands":
            return f"{units:,}".replace(",", " ") + f",{frac:02d}"
        return f"{units},{frac:02d}"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM payment"))
    rows = [f"H{folder.name}-{i};2025-04-01;patient;X;{written(c)};;;;" for i, c in enumerate(cents)]
    import_file(engine, payments_file(folder, rows), settings)
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT amount_cents FROM payment ORDER BY source_line"))]
    assert stored == cents


def test_patient_details_do_not_depend_on_the_order_of_the_files(engine, settings, tmp_path, db_url):
    newer = INVOICES[1].replace("eloise@example.org", "eloise.new@example.org")        # no NIR, a new e-mail
    older = INVOICES[0]                                                                # the NIR, the old e-mail
    import_file(engine, invoices_file(tmp_path, [newer], name="newer.csv"), settings)
    import_file(engine, invoices_file(tmp_path, [older], name="older.csv"), settings)
    with engine.connect() as conn:
        email, nir_hash = conn.execute(text("SELECT email, nir_hash FROM patient WHERE patient_id = 'P1'")).one()
    assert email == "eloise.new@example.org"          # the newer invoice's details win
    assert nir_hash is not None and len(nir_hash) == 64   # the older file fills what the newer left empty


def test_a_corrected_cfonb_statement_imported_again_stores_each_credit_once(engine, settings, tmp_path):
    first = [movement(1500, "VIR SEPA M PAUL DURAND"), complement("LIB", "FACTURE F2025-000101")]
    broken = [movement(2500, "VIR SEPA MME LEA MOREAU") + "X", complement("NPY", "MME LEA MOREAU"),
              complement("LIB", "FACTURE F2025-000102")]
    fixed = [broken[0][:-1], *broken[1:]]
    report = import_file(engine, write(tmp_path, [balance("01"), *first, *broken, balance("07")], "releve.txt"),
                         settings)
    assert (report.imported, [r.line for r in report.rejects]) == (1, [4])
    again = import_file(engine, write(tmp_path, [balance("01"), *first, *fixed, balance("07")], "releve-corrige.txt"),
                        settings)
    assert (again.imported, again.duplicates, again.rejects) == (1, 1, [])
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT amount_cents FROM payment")).scalars()) == [1500, 2500]
