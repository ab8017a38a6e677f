"""A first run settles the invoices from what it holds (app.reconcile._settled_by_outcome: the engine's outstanding
shares, the days of the allocations it wrote), exactly as the rule of db.open_items summed in the database finds
them: the same invoices, on the same days."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.write_offs import write_off
from recouvrement.db import open_items
from recouvrement.db import reconcile as store
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError
from tests.app.world import INVOICE_HEADER, PAYMENT_HEADER, reconciled_sample_clinic, write
from tools.samples import generate

SCALE_FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv")


def settled_days(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {n: str(d) for n, d in conn.execute(text("SELECT invoice_number, settled_on FROM invoice "
                                                         "WHERE settled_on IS NOT NULL"))}


def by_the_rule_in_the_database(engine) -> dict[str, str]:
    """Every invoice opened again and settled by db.open_items.settle, summed in the database."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE invoice SET settled_on = NULL"))
        open_items.settle(conn)
    return settled_days(engine)


@pytest.fixture
def from_outcome(monkeypatch) -> list[int]:
    """The invoices each settle from the run's outcome was given (open_items.settle_days, watched)."""
    calls: list[int] = []
    real = open_items.settle_days

    def watched(conn, rows, days):
        calls.append(len(rows))
        return real(conn, rows, days)
    monkeypatch.setattr(open_items, "settle_days", watched)
    return calls


def test_the_sample_clinic_s_first_run_settles_from_its_outcome_what_the_rule_settles_in_the_database(
        engine, settings, from_outcome, monkeypatch):
    # read as a first run with more pending lines than invoices reads it: the whole ledger, every open invoice settled
    monkeypatch.setattr(store, "invoices_about", lambda conn: 0)
    reconciled_sample_clinic(engine, settings)
    run = settled_days(engine)
    assert len(run) > 50
    assert from_outcome == [len(run)]      # PostgreSQL too: the pass's days read with the ledger
    assert by_the_rule_in_the_database(engine) == run


@pytest.mark.parametrize("seed", [2026, 7])
def test_a_scale_set_s_first_run_settles_from_its_outcome_what_the_rule_settles_in_the_database(
        db_url, tmp_path, settings, from_outcome, seed):
    folder = tmp_path / "scale"
    generate(folder, invoices=3000, seed=seed, scale=True)
    engine = open_engine(db_url)
    for name in SCALE_FILES:
        import_file(engine, folder / name, settings)
    run_reconcile(engine)
    run = settled_days(engine)
    assert len(run) > 1000
    assert len(from_outcome) == 1
    assert by_the_rule_in_the_database(engine) == run
    engine.dispose()


def _cents(value: int) -> str:
    return f"{'-' if value < 0 else ''}{abs(value) // 100},{abs(value) % 100:02d}"


_DAY = st.integers(0, 330).map(lambda d: date.fromordinal(date(2025, 1, 1).toordinal() + d))
_INVOICE = st.tuples(_DAY, st.sampled_from([0, 700, 2000]), st.sampled_from([0, 300, 1000]),
                     st.sampled_from([0, 500, 2300]), st.integers(1, 3))
_LINE = st.tuples(_DAY, st.sampled_from(["amo", "amc", "patient"]), st.sampled_from(["paid", "paid", "rejected",
                                                                                    "clawback"]),
                  st.sampled_from([0, 200, 300, 700, 1000, 2300, 5000]), st.integers(0, 6))


@hsettings(max_examples=40, deadline=None, report_multiple_bugs=False, phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(invoices=st.lists(_INVOICE, min_size=1, max_size=6), lines=st.lists(_LINE, min_size=1, max_size=14),
       written_off=st.lists(st.integers(0, 5), max_size=2))
def test_any_first_run_settles_from_its_outcome_what_the_rule_settles_in_the_database(
        settings, monkeypatch, invoices, lines, written_off):
    """Random small worlds (shares of 0 included, lines paid, rejected or clawed back, before or after the invoice's
    day, on unknown invoices, write-offs before the run), each run settling every open invoice (as a first run with
    more allocations than invoices does)."""
    monkeypatch.setattr(store, "invoices_about", lambda conn: 0)
    given_to: list[int] = []
    real = open_items.settle_days
    monkeypatch.setattr(open_items, "settle_days", lambda conn, rows, days: given_to.append(len(rows))
                        or real(conn, rows, days))
    with tempfile.TemporaryDirectory() as folder:
        numbers = [f"F2025-{k:06d}" for k in range(len(invoices))]
        rows = [f"{n};{day:%d/%m/%Y};;P{p};Nom{p};Claire;1 rue A;75001;Paris;;;;{_cents(amo + amc + pat)};"
                f"{_cents(amo)};{_cents(amc)};{_cents(pat)};{'MGEN' if amc else ''};none;;"
                for n, (day, amo, amc, pat, p) in zip(numbers, invoices)]
        payments = []
        for k, (day, payer, status, cents, which) in enumerate(lines):
            number = numbers[which] if which < len(numbers) else "F2025-999999"
            name = {"amo": "CPAM", "amc": "MGEN", "patient": "Nom1 Claire"}[payer]
            amount = -cents if status == "clawback" else cents
            if status == "clawback" and payer == "patient":
                status, amount = "paid", cents
            reason = "Droits fermés" if status == "rejected" else ""
            payments.append(f"L{k};{day:%Y-%m-%d};{payer};{name};{_cents(amount)};;{number};{status};{reason}")
        engine = open_engine(f"sqlite:///{Path(folder) / 'r.db'}")
        import_file(engine, write(Path(folder) / "invoices.csv", INVOICE_HEADER, rows, "cp1252"), settings)
        for which in written_off:
            if which < len(numbers):
                try:
                    write_off(engine, numbers[which], reason="under_cost", today=date(2025, 12, 1))
                except RecouvrementError:        # nothing owed by the patient, or written off already
                    pass
        import_file(engine, write(Path(folder) / "payments.csv", PAYMENT_HEADER, payments), settings)
        run_reconcile(engine)
        run = settled_days(engine)
        with engine.connect() as conn:
            allocated = conn.execute(text("SELECT COUNT(*) FROM allocation")).scalar_one()
            engine_ran = conn.execute(text("SELECT payload FROM audit_event WHERE kind = 'reconcile'")).scalar_one_or_none()
        # None allocated: no settle of every open invoice (a night's, then); every line the explicit pass's: no
        # outcome of the engine's to settle from (summed in the database, then)
        engine_ran = engine_ran is not None and '"digest": null' not in engine_ran
        assert given_to == ([len(run)] if allocated and engine_ran else [])
        if allocated:
            assert by_the_rule_in_the_database(engine) == run
        engine.dispose()


def _scale_set_imported(db_url: str, folder: Path, settings):
    generate(folder, invoices=3000, seed=2026, scale=True)
    engine = open_engine(db_url)
    for name in SCALE_FILES:
        import_file(engine, folder / name, settings)
    return engine


def test_a_first_run_reads_the_explicit_pass_s_allocations_back_once_with_their_days(db_url, tmp_path, settings,
                                                                                    from_outcome, monkeypatch):
    """The pass's allocations are read back from its table once, with the ledger (db.explicit.paid_shares): the
    settle from the outcome takes their days from that read, not from a second one."""
    from recouvrement.db import explicit
    engine = _scale_set_imported(db_url, tmp_path / "scale", settings)
    reads: list[str] = []
    real = explicit._plain_integers
    monkeypatch.setattr(explicit, "_plain_integers", lambda conn, values, condition="1": reads.extend(
        [values] if condition == "paid > 0" else []) or real(conn, values, condition))     # its allocations
    run_reconcile(engine)
    sqlite = engine.dialect.name == "sqlite"
    assert len(reads) == (1 if sqlite else 0)      # PostgreSQL: read with the ledger (db.ledger.matching_snapshot_dated)
    assert from_outcome == [len(settled_days(engine))]
    engine.dispose()


def test_a_first_run_makes_the_outcome_s_figures_beside_the_build_of_the_allocation_indexes(db_url, tmp_path,
                                                                                            settings, monkeypatch):
    """The outcome's figures (a thread holding the GIL) are begun before the allocation indexes the explicit pass left
    aside are built (SQLite's statements, PostgreSQL's server: without the GIL), not after, beside the settle from
    the outcome, whose numpy holds the GIL as they do."""
    from recouvrement.app import reconcile as use_case
    engine = _scale_set_imported(db_url, tmp_path / "scale", settings)
    events: list[str] = []
    figures_beside = use_case._FiguresBeside

    class Watched(figures_beside):
        def __init__(self, *args) -> None:
            events.append("figures")
            super().__init__(*args)
    monkeypatch.setattr(use_case, "_FiguresBeside", Watched)
    build = use_case.build_indexes

    def watched_build(conn, statements, *args, **kwargs):
        events.extend(["allocation indexes"] if statements else [])
        return build(conn, statements, *args, **kwargs)
    monkeypatch.setattr(use_case, "build_indexes", watched_build)
    run_reconcile(engine)
    assert events == ["figures", "allocation indexes"]
    engine.dispose()


def test_a_first_run_finds_the_invoices_it_settles_in_the_figures_thread_beside_the_allocation_indexes_build(
        db_url, tmp_path, settings, from_outcome, monkeypatch):
    """The settle from the outcome (numpy and pandas on what the run holds) is worked out in the figures' thread, after
    them, while the main thread builds the allocation indexes the pass left aside; the main thread then writes it.
    PostgreSQL too, from the pass's days read with the ledger."""
    import threading

    from recouvrement.app import reconcile as use_case
    engine = _scale_set_imported(db_url, tmp_path / "scale", settings)
    threads: list[str] = []
    real = use_case._settled_by_outcome

    def watched(*args):
        threads.append(threading.current_thread().name)
        return real(*args)
    monkeypatch.setattr(use_case, "_settled_by_outcome", watched)
    run_reconcile(engine)
    assert [name.startswith("outcome-figures") for name in threads] == [True]
    assert from_outcome == [len(settled_days(engine))]
    engine.dispose()


def test_the_explicit_pass_s_days_are_read_as_integers_when_every_one_is_written_yyyy_mm_dd(engine, settings,
                                                                                          tmp_path):
    from datetime import datetime, timezone

    from recouvrement.db import explicit
    from recouvrement.db.session import bulk_transaction
    rows = [f"F2025-00000{k};01/03/2025;;P{k};Nom{k};Claire;1 rue A;75001;Paris;;;;30,00;20,00;0,00;10,00;;none;;"
            for k in (1, 2, 3)]
    import_file(engine, write(tmp_path / "invoices.csv", INVOICE_HEADER, rows, "cp1252"), settings)
    lines = ["L1;2025-03-09;amo;CPAM;20,00;;F2025-000001;paid;", "L2;2025-04-11;amo;CPAM;5,00;;F2025-000002;paid;",
             "L3;2025-12-31;patient;Nom3 Claire;10,00;;F2025-000003;paid;"]
    import_file(engine, write(tmp_path / "payments.csv", PAYMENT_HEADER, lines), settings)
    sqlite = engine.dialect.name == "sqlite"
    # PostgreSQL stores a date (its days always read), and gives the pass's lines in no particular order.
    for written_as in ("2025-04-11", "11/04/2025", "2025-4-11", "2025-04-11 10:00") if sqlite else ("2025-04-11",):
        with pytest.raises(_Undone), bulk_transaction(engine) as conn:
            conn.execute(text("UPDATE payment SET payment_date = :d WHERE payment_id = 'L2'"), {"d": written_as})
            explicit.settle_plain_explicit(conn, store.last_payment_row(conn), datetime.now(timezone.utc))
            read = explicit.paid_shares(conn, days=True)
            without = explicit.paid_shares(conn)
            raise _Undone
        assert read is not None and without is not None
        order, order_without = read.shares.argsort(), without.shares.argsort()
        assert read.cents[order].tolist() == without.cents[order_without].tolist() == [2000, 500, 1000]
        assert read.shares[order].tolist() == without.shares[order_without].tolist()
        assert (read.shares[order] % 4).tolist() == [1, 1, 3]
        assert without.days is None
        assert (read.days[order].tolist() if read.days is not None else None) == (
            [20250309, 20250411, 20251231] if written_as == "2025-04-11" else None)


def _three_paid_lines_and_one_outside_the_pass(engine, settings, tmp_path) -> None:
    rows = [f"F2025-00000{k};01/03/2025;;P{k};Nom{k};Claire;1 rue A;75001;Paris;;;;30,00;20,00;0,00;10,00;;none;;"
            for k in (1, 2, 3)]
    import_file(engine, write(tmp_path / "invoices.csv", INVOICE_HEADER, rows, "cp1252"), settings)
    lines = ["L1;2025-03-09;amo;CPAM;20,00;;F2025-000001;paid;", "L2;2025-04-11;amo;CPAM;5,00;;F2025-000002;paid;",
             "L3;2025-12-31;patient;Nom3 Claire;10,00;;F2025-000003;paid;",
             "L4;2025-05-02;patient;Inconnu Paul;7,00;;;paid;"]      # names no invoice: the engine's, not the pass's
    import_file(engine, write(tmp_path / "payments.csv", PAYMENT_HEADER, lines), settings)


def _days_read(engine, *changes: str):
    """The pass's days as paid_shares reads them after `changes` (rolled back with the pass); None on PostgreSQL."""
    from datetime import datetime, timezone

    from recouvrement.db import explicit
    from recouvrement.db.session import bulk_transaction
    found: list = []
    with pytest.raises(_Undone), bulk_transaction(engine) as conn:
        for change in changes:
            conn.execute(text(change))
        explicit.settle_plain_explicit(conn, store.last_payment_row(conn), datetime.now(timezone.utc))
        read = explicit.paid_shares(conn, days=True)
        found.append(None if read is None else (None if read.days is None else read.days.tolist()))
        raise _Undone
    return found[0]


def test_a_payment_outside_the_pass_whose_day_is_not_written_yyyy_mm_dd_leaves_the_pass_s_days_unread(
        engine, settings, tmp_path):
    """The days are checked among every payment's, found in the payment day's index (db.explicit._days_written_iso),
    not by a scan of the pass's lines: a day not written yyyy-mm-dd anywhere leaves them unread (the settle then sums
    them in the database: the same days). Without the payment day's index, the pass's lines are scanned as before."""
    _three_paid_lines_and_one_outside_the_pass(engine, settings, tmp_path)
    if engine.dialect.name != "sqlite":      # a date column: the pass's days always read back (any order)
        assert sorted(_days_read(engine) or []) == [20250309, 20250411, 20251231]
        return
    odd = "UPDATE payment SET payment_date = '02/05/2025' WHERE payment_id = 'L4'"
    assert _days_read(engine) == [20250309, 20250411, 20251231]
    assert _days_read(engine, odd) is None
    assert _days_read(engine, odd, "DROP INDEX ix_payment_payment_date") == [20250309, 20250411, 20251231]
    assert _days_read(engine, "DROP INDEX ix_payment_payment_date") == [20250309, 20250411, 20251231]


def test_the_walk_of_the_payment_days_index_finds_each_distinct_day_once_whatever_its_type(engine):
    from recouvrement.db import explicit
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's check (PostgreSQL reads the days with the ledger)")
    stored = ["2025-04-11", "20250411", 20250101, "2025-4-11", "2025-04-11", 1.5, "2025-04-11 10:00", "2024-12-31",
              b"x"]
    with pytest.raises(_Undone), engine.begin() as conn:
        conn.execute(text("DELETE FROM payment"))
        for k, day in enumerate(stored):
            conn.execute(text("INSERT INTO payment (id, payment_id, payment_date, payer_type, payer_name, amount_cents, "
                              "reference, status, source_file, reconciled) VALUES (:k, :p, :d, 'amo', 'CPAM', 1, '', "
                              "'paid', 'f', 0)"), {"k": k + 1, "p": f"L{k}", "d": day})
        walked = conn.exec_driver_sql(explicit._PAYMENT_DAYS).scalars().all()
        distinct = conn.exec_driver_sql("SELECT DISTINCT payment_date FROM payment ORDER BY 1").scalars().all()
        assert walked == distinct and len(walked) == 8
        raise _Undone


class _Undone(Exception):
    """Raised to roll a transaction back."""


def test_days_since_1970_are_made_the_integers_yyyymmdd_and_none_stays_minus_one():
    import numpy as np

    from recouvrement.db.explicit import epoch_day_numbers
    days = [date(1970, 1, 1), date(2024, 2, 29), date(2026, 12, 31), date(2100, 3, 1)]
    epoch = np.array([(d - date(1970, 1, 1)).days for d in days] + [-1], dtype=np.int64)
    assert epoch_day_numbers(epoch).tolist() == [19700101, 20240229, 20261231, 21000301, -1]


def test_postgresql_reads_each_invoice_s_latest_allocation_day_with_the_whole_ledger(engine, settings, tmp_path):
    """The day settle's rule takes of the allocations (their latest payment's), read by the ledger's group by; none
    where nothing is allocated. SQLite reads none so (the pass's days come back from its table)."""
    from recouvrement.app.reconcile import load_ledger_dated
    from recouvrement.db.session import bulk_transaction
    rows = [f"F2025-00000{k};01/03/2025;;P{k};Nom{k};Claire;1 rue A;75001;Paris;;;;30,00;20,00;0,00;10,00;;none;;"
            for k in (1, 2)]
    import_file(engine, write(tmp_path / "invoices.csv", INVOICE_HEADER, rows, "cp1252"), settings)
    with engine.begin() as conn:
        for payment, day, cents in (("L1", "2025-03-09", 1500), ("L2", "2025-04-11", 500)):
            conn.execute(text("INSERT INTO allocation (payment_id, invoice_number, payer_type, amount_cents, rule, "
                              "created_at, payment_date) VALUES (:p, 'F2025-000001', 'amo', :c, 'manual', "
                              "'2025-05-01 00:00:00', :d)"), {"p": payment, "c": cents, "d": date.fromisoformat(day)})
    with bulk_transaction(engine) as conn:
        ledger, days = load_ledger_dated(conn)
    if engine.dialect.name == "sqlite":
        assert days is None
        return
    assert ledger.invoices["invoice_number"].tolist() == ["F2025-000001", "F2025-000002"]
    assert days is not None and days.tolist() == [20250411, -1]
