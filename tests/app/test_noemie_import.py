"""NOEMIE returns imported and reconciled on a real database: explicit shares, rejections, clawbacks,
the patient's NIR check, and the same allocations as the same remittance written as CSV."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from recouvrement.app.imports import ImportRefused, import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.config import Privacy, Settings
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError
from recouvrement.importers import noemie
from recouvrement.importers.noemie import Batch, Clawback, Invoice, Rejection, Remittance, Share, Transfer
from tests.app.world import invoices_file, nir_valid, payments_file
from tools.noemie import Identity, assemble, entities, write

NIR = nir_valid("2850575123456")           # P1's, as the world's invoices carry it
OTHER_NIR = nir_valid("1700175123456")
SENDER = "00000751234567"
ON = date(2025, 4, 2)


def one_transfer(*invoices: Invoice, on: date = ON, label: str = "BORDEREAU 4711") -> Remittance:
    return Remittance("CP", SENDER, on, transfers=(
        Transfer(on, ("VIR CPAM PARIS", label), "CPAM75", (Batch("001", on, tuple(invoices)),)),))


def noemie_file(folder: Path, remittance: Remittance, name: str = "retour.rsp", identities=None) -> Path:
    path = folder / name
    path.write_bytes(write(remittance, identities))
    return path


def world(engine, settings, folder: Path) -> None:
    import_file(engine, invoices_file(folder), settings)


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_a_noemie_return_pays_each_share_of_the_invoice_it_names(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    paid = Invoice("025000101", shares=(Share("amo", 7000, "P", 7000), Share("amc", 2000, "P", 2000, "0123456789")))
    report = import_file(engine, noemie_file(tmp_path, one_transfer(paid)), settings)
    assert (report.format, report.imported, report.rejects) == ("noemie", 2, [])
    run_reconcile(engine)
    assert sorted(rows(engine, "SELECT invoice_number, payer_type, amount_cents, rule FROM allocation")) == [
        ("F2025-000101", "amc", 2000, "explicit"), ("F2025-000101", "amo", 7000, "explicit")]
    assert set(rows(engine, "SELECT CAST(payment_date AS TEXT), reference FROM payment")) == {
        ("2025-04-02", "VIR CPAM PARIS BORDEREAU 4711")}


def test_a_rejected_share_moves_to_the_patient_with_its_label(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    rejected = Invoice("025000103", shares=(Share("amo", 2100, "R"),),
                       rejections=(Rejection("0412", "DROITS NON OUVERTS", "F", "O"),))
    import_file(engine, noemie_file(tmp_path, one_transfer(rejected)), settings)
    run_reconcile(engine)
    assert rows(engine, "SELECT invoice_number, from_payer, amount_cents, reason FROM share_transfer") == [
        ("F2025-000103", "amo", 2100, "rejet 0412 DROITS NON OUVERTS")]


def test_a_deferred_share_stays_awaited_from_the_insurer(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    deferred = Invoice("025000103", shares=(Share("amo", 2100, "D"),))
    report = import_file(engine, noemie_file(tmp_path, one_transfer(deferred)), settings)
    run_reconcile(engine)
    assert report.imported == 0 and any("différée" in w for w in report.warnings)
    assert rows(engine, "SELECT COUNT(*) FROM share_transfer") == [(0,)]


def test_a_clawback_reverses_the_insurers_earlier_allocation(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    import_file(engine, noemie_file(tmp_path, one_transfer(Invoice("025000101", shares=(
        Share("amo", 7000, "P", 7000),)))), settings)
    run_reconcile(engine)
    later = one_transfer(Invoice("025000101", clawbacks=(Clawback(-3000),)), on=date(2025, 5, 5), label="BORD 4800")
    import_file(engine, noemie_file(tmp_path, later, "retour2.rsp"), settings)
    run_reconcile(engine)
    assert sorted(rows(engine, "SELECT payer_type, amount_cents, rule FROM allocation "
                               "WHERE invoice_number = 'F2025-000101'")) == [("amo", -3000, "clawback"),
                                                                             ("amo", 7000, "explicit")]
    assert rows(engine, "SELECT COUNT(*) FROM payment_exception") == [(0,)]


def test_a_clawback_beyond_what_the_insurer_paid_waits_in_the_queue_never_dropped(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    invoice = Invoice("025000103", shares=(Share("amo", 2100, "P", 1000),), clawbacks=(Clawback(-1500),))
    import_file(engine, noemie_file(tmp_path, one_transfer(invoice)), settings)
    run_reconcile(engine)
    assert sorted(rows(engine, "SELECT amount_cents, rule FROM allocation")) == [(-1000, "clawback"),
                                                                                 (1000, "explicit")]
    assert [(k, c) for k, c, _ in rows(engine, "SELECT kind, remaining_cents, reason FROM payment_exception")] == [
        ("clawback", 500)]


def test_a_clawback_on_an_unknown_invoice_waits_in_the_queue(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    import_file(engine, noemie_file(tmp_path, one_transfer(Invoice("099999999", clawbacks=(Clawback(-700),)))),
                settings)
    run_reconcile(engine)
    assert rows(engine, "SELECT kind, remaining_cents FROM payment_exception") == [("clawback", 700)]


def test_a_line_whose_nir_is_not_the_patients_is_refused_without_echoing_it(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    good = Invoice("025000101", shares=(Share("amo", 7000, "P", 7000),))
    remittance = one_transfer(good)
    path = noemie_file(tmp_path, remittance, identities={"025000101": Identity(OTHER_NIR, "LEFEVRE", "ELOISE")})
    report = import_file(engine, path, settings)
    assert report.imported == 0 and [r.field for r in report.rejects] == ["nir"] and report.rejects[0].line >= 2
    assert OTHER_NIR not in str(report.rejects[0]) and "F2025-000101" in str(report.rejects[0])
    with pytest.raises(ImportRefused):
        import_file(engine, path, settings, strict=True)


def test_a_line_whose_nir_is_the_patients_is_imported_and_no_nir_or_name_reaches_the_database(engine, settings,
                                                                                              tmp_path):
    world(engine, settings, tmp_path)
    remittance = one_transfer(Invoice("025000101", shares=(Share("amo", 7000, "P", 7000),)))
    path = noemie_file(tmp_path, remittance, identities={"025000101": Identity(NIR, "ZORGLUB", "ALPHONSE",
                                                                               act_code="DEQ")})
    assert import_file(engine, path, settings).imported == 1
    run_reconcile(engine)
    with engine.connect() as conn:
        tables = [t for (t,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))] \
            if engine.dialect.name == "sqlite" else \
            [t for (t,) in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
        dump = " ".join(str(v) for t in tables for r in conn.execute(text(f"SELECT * FROM {t}")) for v in r)
    assert NIR not in dump and "ZORGLUB" not in dump and "ALPHONSE" not in dump


def test_importing_the_same_return_twice_changes_nothing(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    path = noemie_file(tmp_path, one_transfer(Invoice("025000101", shares=(Share("amo", 7000, "P", 7000),),
                                                      clawbacks=(Clawback(-100),))))
    import_file(engine, path, settings)
    again = import_file(engine, path, settings)
    assert (again.imported, again.duplicates) == (0, 2)


def test_a_return_whose_totals_disagree_stores_nothing(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    remittance = one_transfer(Invoice("025000101", shares=(Share("amo", 7000, "P", 7000),)))
    body = entities(remittance)
    path = tmp_path / "faux.rsp"
    path.write_bytes(assemble(remittance, body, totals=(len(body), 1, 6999)))
    with pytest.raises(RecouvrementError, match="999"):
        import_file(engine, path, settings)
    assert rows(engine, "SELECT COUNT(*) FROM payment") == [(0,)]


# --- the same remittance, written as CSV and as NOEMIE, reconciles to the same allocations ------------

SHARES = {"025000101": {"amo": 7000, "amc": 2000}, "025000103": {"amo": 2100, "amc": 600},
          "025000104": {"amo": 0, "amc": 0}, "099999999": {"amo": 500, "amc": 500}}


@st.composite
def lines(draw):
    number = draw(st.sampled_from(sorted(SHARES)))
    payer = draw(st.sampled_from(["amo", "amc"]))
    due = SHARES[number][payer]
    state = draw(st.sampled_from(["P", "R", "D", "C"]))          # C: a clawback (a 250)
    cents = draw(st.integers(1, max(due, 1) + 500))
    return number, payer, state, cents


@st.composite
def nights(draw):
    return [(date(2025, 4, 1 + n), draw(st.lists(lines(), min_size=1, max_size=4)))
            for n in range(draw(st.integers(1, 3)))]


def as_noemie(on: date, night: list, sender: str) -> Remittance:
    invoices = []
    for number, payer, state, cents in night:
        if state == "C":
            invoices.append(Invoice(number, clawbacks=(Clawback(-cents),)))
        else:
            paid = cents if state == "P" else 0
            invoices.append(Invoice(number, shares=(Share(payer, cents, state, paid, "0123456789" if payer == "amc"
                                                          else ""),),
                                    rejections=(Rejection("0412", "DROITS NON OUVERTS", "F",
                                                          "O" if payer == "amo" else "C"),) if state == "R" else ()))
    return Remittance(sender, SENDER, on, transfers=(Transfer(on, ("VIR CPAM", f"BORD {on:%m%d}"), "CPAM75",
                                                              (Batch("001", on, tuple(invoices)),)),))


def euros(cents: int) -> str:
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100},{abs(cents) % 100:02d}"


def as_csv(folder: Path, on: date, night: list, sender_payer: str, name: str, ids: list[str]) -> Path:
    """The same lines in the CSV remittance columns, under the ids the NOEMIE reader gives them (payments
    are taken in (date, id) order: the same ids, the same order)."""
    rows_ = []
    for (number, payer, state, cents), payment_id in zip([line for line in night if line[2] != "D"], ids):
        payer = sender_payer if state == "C" else payer
        status, amount = {"P": ("paid", cents), "R": ("rejected", 0), "C": ("clawback", -cents)}[state]
        reason = "rejet 0412 DROITS NON OUVERTS" if state == "R" else ""
        invoice = f"F2{number[:3]}-{number[3:]}" if number != "099999999" else "F2099999999"
        rows_.append(f"{payment_id};{on.isoformat()};{payer};CPAM75;{euros(amount)};VIR CPAM BORD {on:%m%d};"
                     f"{invoice};{status};{reason}")
    return payments_file(folder, rows_, name)


def reconciled(folder: Path, files: list[Path], settings: Settings) -> tuple:
    engine = open_engine(f"sqlite:///{folder / 'db.sqlite'}")
    try:
        import_file(engine, invoices_file(folder), settings)
        for path in files:
            import_file(engine, path, settings)
            run_reconcile(engine)
        return (sorted(rows(engine, "SELECT payment_id, invoice_number, payer_type, amount_cents, rule FROM allocation")),
                sorted(rows(engine, "SELECT invoice_number, from_payer, amount_cents, reason, "
                                    "CAST(transfer_date AS TEXT) FROM share_transfer")),
                sorted(rows(engine, "SELECT payment_id, kind, remaining_cents FROM payment_exception")))
    finally:
        engine.dispose()


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nights(), st.sampled_from(["CP", "OC"]))
def test_any_remittance_written_as_csv_and_as_noemie_reconciles_to_the_same_allocations(night_list, sender):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        settings = Settings(privacy=Privacy(nir_key_file=base / "nir.key"))
        (base / "csv").mkdir()
        (base / "noemie").mkdir()
        payer = "amc" if sender == "OC" else "amo"
        rsp = [noemie_file(base / "noemie", as_noemie(on, night, sender), f"n{k}.rsp")
               for k, (on, night) in enumerate(night_list)]
        ids = [list(noemie.read(path).frame["payment_id"]) for path in rsp]
        csv = [as_csv(base / "csv", on, night, payer, f"n{k}.csv", ids[k]) for k, (on, night) in enumerate(night_list)]
        assert reconciled(base / "csv", csv, settings) == reconciled(base / "noemie", rsp, settings)


def test_a_rejection_label_naming_care_is_stored_masked_and_stays_out_of_the_patients_notice(engine, settings,
                                                                                           tmp_path):
    from recouvrement.app.remind import run_remind
    from recouvrement.scanner import extract_text
    from tests.app.test_remind import with_creditor
    world(engine, settings, tmp_path)
    rejected = Invoice("025000103", shares=(Share("amo", 2100, "R"),),
                       rejections=(Rejection("0587", "EXONERATION ALD NON JUSTIFIEE", "F", "O"),))
    import_file(engine, noemie_file(tmp_path, one_transfer(rejected)), settings)
    run_reconcile(engine)
    (reason,) = rows(engine, "SELECT reason FROM share_transfer")[0]
    assert "ALD" not in reason and "valeur masquée" in reason
    report = run_remind(engine, with_creditor(settings), date(2025, 4, 7), tmp_path / "out")
    assert report.letters                           # the patient of the rejected invoice is written to
    written = " ".join(extract_text(p) for p in (tmp_path / "out").rglob("*") if p.is_file()
                       and p.suffix in (".html", ".pdf", ".txt", ".eml"))
    assert written and "ALD" not in written and "EXONERATION" not in written and "0587" not in written
