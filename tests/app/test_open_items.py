"""What is open (db.open_items, issue #16): invoice.settled_on, kept by every write, held against the state
recomputed from the whole ledger after each kind of write, on SQLite and PostgreSQL; the reads that start from
it (balance, outstanding shares, the ladder's accounts) equal to the whole ledger's."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from recouvrement.app.reconcile import manual_match, manual_unmatch
from recouvrement.app.write_offs import write_off
from recouvrement.core.ledger import outstanding, patient_money
from recouvrement.db.accounts import load_accounts
from recouvrement.db.ledger import balance_facts, load_snapshot, open_snapshot, outstanding_shares, share_states
from recouvrement.db.open_items import settle
from recouvrement.db.values import as_date
from tests.app.world import reconciled_sample_clinic

DAYS = (date(2025, 3, 31), date(2026, 6, 30), date(2026, 11, 23), date(2027, 1, 1))


@pytest.fixture
def sample(engine, settings):
    return reconciled_sample_clinic(engine, settings)


def settled(engine) -> dict[str, date]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT invoice_number, settled_on FROM invoice WHERE settled_on IS NOT NULL"))
        return {number: as_date(day) for number, day in rows}


def owing_by_whole_ledger(engine, day: date) -> set[str]:
    """Invoices with a share still due or a write-off at the end of `day`, from the whole ledger."""
    with engine.connect() as conn:
        shares = outstanding(load_snapshot(conn, day))
    return set(shares[(shares["due_cents"] > 0) | (shares["written_off"] > 0)]["invoice_number"])


def assert_settled_owe_nothing(engine) -> None:
    """The rule of db.open_items, recomputed from the whole ledger: an invoice settled on D owes nothing and has
    no write-off at the end of D and of every later day asked."""
    marks = settled(engine)
    for day in sorted({*DAYS, *marks.values()}):
        owing = owing_by_whole_ledger(engine, day)
        wrong = {n for n, since in marks.items() if since <= day and n in owing}
        assert not wrong, (day, sorted(wrong))


def test_after_the_reconcile_settled_invoices_owe_nothing_from_their_day_on_and_most_are_settled(sample):
    marks = settled(sample)
    assert len(marks) > 0
    assert_settled_owe_nothing(sample)
    # Nothing more to settle: the reconcile settled every invoice its allocations closed.
    with sample.begin() as conn:
        missed = conn.execute(text("SELECT COUNT(*) FROM invoice i WHERE settled_on IS NULL AND EXISTS "
                                   "(SELECT 1 FROM allocation a WHERE a.invoice_number = i.invoice_number)")).scalar_one()
        assert settle(conn) == 0 or missed > 0


def test_the_migration_fill_and_the_reconcile_agree(sample):
    before = settled(sample)
    with sample.begin() as conn:
        conn.execute(text("UPDATE invoice SET settled_on = NULL"))
        settle(conn)
    after = settled(sample)
    assert set(before) <= set(after)
    assert all(after[n] == day for n, day in before.items())
    assert_settled_owe_nothing(sample)


def test_settling_most_invoices_at_once_sets_aside_only_the_settled_day_s_index_and_leaves_each_as_it_was(sample):
    # PostgreSQL: the invoice table leaves room on its pages (fillfactor 50), where each settled row's new version
    # stays (heap-only): the other indexes need no new entry and stay in place; SQLite: the next test
    if sample.dialect.name != "postgresql":
        return
    from sqlalchemy import event
    indexes = ("SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary FROM pg_index i "
               "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'invoice'::regclass ORDER BY c.relname")
    before = settled(sample)
    with sample.begin() as conn:
        assert conn.execute(text("SELECT reloptions FROM pg_class WHERE oid = 'invoice'::regclass")).scalar_one() \
            == ["fillfactor=50"]
        shape = conn.execute(text(indexes)).all()
        # the settled ones stored again, unsettled, as a load stores them (each page half full): all to settle
        conn.execute(text("CREATE TABLE unsettled AS SELECT * FROM invoice WHERE settled_on IS NOT NULL"))
        conn.execute(text("UPDATE unsettled SET settled_on = NULL"))
        conn.execute(text("DELETE FROM invoice"))
    with sample.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM invoice"))
        conn.execute(text("INSERT INTO invoice SELECT * FROM unsettled"))
        conn.execute(text("DROP TABLE unsettled"))
        conn.execute(text("ANALYZE invoice"))
    dropped: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(("DROP INDEX", "ALTER TABLE invoice DROP")):
            dropped.append(statement)
    event.listen(sample, "before_cursor_execute", seen)
    try:
        with sample.begin() as conn:
            counts = text("SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'invoice'")
            hot, updated = conn.execute(counts).one()
            assert settle(conn) == len(before) > 0
            hot, updated = (after - first for after, first in zip(conn.execute(counts).one(), (hot, updated)))
            assert updated == len(before) and hot > updated * 0.9    # about none on full pages
    finally:
        event.remove(sample, "before_cursor_execute", seen)
    assert dropped == ['DROP INDEX "ix_invoice_settled_on"']
    with sample.connect() as conn:
        assert conn.execute(text(indexes)).all() == shape
    assert settled(sample) == before


def test_settling_every_open_invoice_on_sqlite_sets_aside_only_the_settled_day_s_index_and_builds_it_again(sample):
    if sample.dialect.name != "sqlite":
        return
    from sqlalchemy import event
    indexes = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'invoice' ORDER BY name"
    before = settled(sample)
    with sample.begin() as conn:
        shape = conn.execute(text(indexes)).all()
        conn.execute(text("UPDATE invoice SET settled_on = NULL"))
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
    event.listen(sample, "before_cursor_execute", seen)
    try:
        with sample.begin() as conn:
            assert settle(conn) == len(before) > 0
    finally:
        event.remove(sample, "before_cursor_execute", seen)
    assert [s for s in statements if s.startswith(("DROP INDEX", "CREATE INDEX"))] == [
        'DROP INDEX "ix_invoice_settled_on"', "CREATE INDEX ix_invoice_settled_on ON invoice (settled_on)"]
    with sample.connect() as conn:
        assert conn.execute(text(indexes)).all() == shape
        assert conn.execute(text("SELECT COUNT(*) FROM invoice INDEXED BY ix_invoice_settled_on "
                                 "WHERE settled_on IS NOT NULL")).scalar_one() == len(before)
    assert settled(sample) == before
    with sample.begin() as conn:   # one invoice, or those a night touched: nothing set aside
        conn.execute(text("UPDATE invoice SET settled_on = NULL WHERE invoice_number = :n"), {"n": min(before)})
        statements.clear()
        event.listen(sample, "before_cursor_execute", seen)
        try:
            assert settle(conn, invoice_number=min(before)) == 1
            assert settle(conn, since=0) == 0
        finally:
            event.remove(sample, "before_cursor_execute", seen)
    assert not [s for s in statements if "ix_invoice" in s]


def one_settled_with(engine, condition: str) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT i.invoice_number FROM invoice i WHERE i.settled_on IS NOT NULL AND "
                                 + condition + " ORDER BY i.invoice_number")).scalars().first()


def assert_reopened(engine, number: str) -> None:
    assert number not in settled(engine)
    assert_settled_owe_nothing(engine)


def test_a_payment_unmatched_reopens_the_invoice_it_had_settled(sample):
    number = one_settled_with(sample, "EXISTS (SELECT 1 FROM allocation a WHERE a.invoice_number = i.invoice_number "
                                      "AND a.payer_type = 'patient' AND a.amount_cents > 0)")
    with sample.connect() as conn:
        payment = conn.execute(text("SELECT payment_id FROM allocation WHERE invoice_number = :n AND "
                                    "payer_type = 'patient'"), {"n": number}).scalar_one()
    manual_unmatch(sample, payment)
    assert_reopened(sample, number)
    assert number in owing_by_whole_ledger(sample, date(2027, 1, 1))


def test_an_insurers_rejection_moving_its_share_onto_the_patient_reopens_the_invoice(sample):
    number = one_settled_with(sample, "i.amc_cents > 0")
    with sample.begin() as conn:
        conn.execute(text("INSERT INTO share_transfer (invoice_number, from_payer, amount_cents, transfer_date, "
                          "payment_id, notified) VALUES (:n, 'amc', 500, :d, 'REJ-TEST', FALSE)"),
                     {"n": number, "d": date(2026, 12, 1)})
    assert_reopened(sample, number)


def test_moves_inserted_in_one_statement_reopen_each_invoice_they_name_and_their_deletion_too_not_others(sample):
    with sample.connect() as conn:
        numbers = conn.execute(text("SELECT invoice_number FROM invoice WHERE settled_on IS NOT NULL AND amc_cents > 0 "
                                    "ORDER BY invoice_number LIMIT 3")).scalars().all()
    assert len(numbers) == 3
    moved, kept = numbers[:2], numbers[2]
    with sample.begin() as conn:
        conn.execute(text("INSERT INTO share_transfer (invoice_number, from_payer, amount_cents, transfer_date, "
                          "payment_id, notified) SELECT invoice_number, 'amc', 500, :d, 'REJ-' || invoice_number, "
                          "FALSE FROM invoice WHERE invoice_number IN (:a, :b)"),
                     {"a": moved[0], "b": moved[1], "d": date(2026, 12, 1)})
    now = settled(sample)
    assert moved[0] not in now and moved[1] not in now and kept in now
    assert_settled_owe_nothing(sample)
    with sample.begin() as conn:       # settled again by hand, then the moves deleted: reopened again
        conn.execute(text("UPDATE invoice SET settled_on = :d WHERE invoice_number IN (:a, :b)"),
                     {"a": moved[0], "b": moved[1], "d": date(2026, 12, 31)})
        conn.execute(text("DELETE FROM share_transfer WHERE payment_id LIKE 'REJ-%'"))
    now = settled(sample)
    assert moved[0] not in now and moved[1] not in now and kept in now
    if sample.dialect.name == "postgresql":   # one UPDATE per statement, not a function call per row
        with sample.connect() as conn:
            definitions = conn.execute(text("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname IN "
                                            "('reopen_share_transfer_insert', 'reopen_share_transfer_delete', "
                                            "'reopen_write_off_insert', 'reopen_write_off_delete')")).scalars().all()
        assert len(definitions) == 4 and all("FOR EACH STATEMENT" in d for d in definitions)


def test_a_transfer_reversed_reopens_the_invoice_and_a_clawback_lowering_an_allocation_too(sample):
    with sample.connect() as conn:
        moved = conn.execute(text("SELECT t.id, t.invoice_number FROM share_transfer t JOIN invoice i ON "
                                  "i.invoice_number = t.invoice_number WHERE t.reversed_on IS NULL")).first()
    if moved is not None:
        with sample.begin() as conn:
            conn.execute(text("UPDATE invoice SET settled_on = :d WHERE invoice_number = :n"),
                         {"d": date(2026, 12, 31), "n": moved[1]})
            conn.execute(text("UPDATE share_transfer SET reversed_on = :d WHERE id = :i"),
                         {"d": date(2027, 1, 2), "i": moved[0]})
        assert moved[1] not in settled(sample)
    number = one_settled_with(sample, "EXISTS (SELECT 1 FROM allocation a WHERE a.invoice_number = i.invoice_number "
                                      "AND a.amount_cents > 100)")
    with sample.begin() as conn:
        conn.execute(text("UPDATE allocation SET amount_cents = amount_cents - 100 WHERE id = (SELECT MIN(id) FROM "
                          "allocation WHERE invoice_number = :n AND amount_cents > 100)"), {"n": number})
    assert_reopened(sample, number)


def test_an_invoice_whose_amount_changes_is_reopened_and_one_settled_again_on_another_day_is_not(sample):
    number = one_settled_with(sample, "i.patient_cents > 0")
    with sample.begin() as conn:   # settle's own write: settled_on alone, the invoice stays settled
        conn.execute(text("UPDATE invoice SET settled_on = :d WHERE invoice_number = :n"),
                     {"d": date(2026, 12, 31), "n": number})
    assert settled(sample)[number] == date(2026, 12, 31)
    with sample.begin() as conn:
        conn.execute(text("UPDATE invoice SET patient_cents = patient_cents + 100, total_cents = total_cents + 100 "
                          "WHERE invoice_number = :n"), {"n": number})
    assert_reopened(sample, number)
    if sample.dialect.name == "postgresql":   # the condition in the trigger's WHEN: no function call per row otherwise
        with sample.connect() as conn:
            definition = conn.execute(text("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = "
                                           "'reopen_invoice_update' AND tgrelid = 'invoice'::regclass")).scalar_one()
        assert " WHEN (" in definition and "BEFORE UPDATE" in definition


def test_a_write_off_reopens_the_invoice_so_the_detail_still_lists_it(sample):
    with sample.connect() as conn:
        shares = outstanding(load_snapshot(conn, None))
    owing = sorted(shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]["invoice_number"])
    write_off(sample, owing[0], reason="under_cost", today=date(2026, 11, 2))
    with sample.begin() as conn:
        assert settle(conn) == 0 or owing[0] not in settled(sample)
    assert owing[0] not in settled(sample)
    with sample.connect() as conn:
        shares, _, _ = balance_facts(conn, date(2026, 11, 23))
    assert owing[0] in set(shares[shares["written_off"] > 0]["invoice_number"])


@pytest.mark.parametrize("day", DAYS)
def test_the_open_reads_equal_the_whole_ledgers_on_any_day(sample, settings, day):
    with sample.connect() as conn:
        whole = share_states(conn, day)
        full = load_snapshot(conn, day)
        opened = open_snapshot(conn, day)
        due = outstanding_shares(conn, day)
        accounts = load_accounts(conn, day, settings.rules())
    expected = whole[whole["due_cents"] > 0][list(due.columns)].reset_index(drop=True)
    assert due.reset_index(drop=True).equals(expected)
    money_full, money_open = patient_money(full), patient_money(opened)
    asked = money_full[(money_full != 0).any(axis=1)]
    assert money_open[(money_open != 0).any(axis=1)].equals(asked)
    with sample.connect() as conn:
        reference = load_accounts_from_whole_ledger(conn, day, settings.rules())
    assert accounts == reference


def load_accounts_from_whole_ledger(conn, day, rules):
    """load_accounts as it read before open_snapshot: the whole dated snapshot."""
    from recouvrement.db import accounts
    original = accounts.open_snapshot
    accounts.open_snapshot = lambda conn, day, **_: load_snapshot(conn, day)   # dated, every allocation apart
    try:
        return accounts.load_accounts(conn, day, rules)
    finally:
        accounts.open_snapshot = original


def test_an_invoice_settled_after_the_day_asked_is_read_on_that_day(sample):
    with sample.connect() as conn:
        number, since = conn.execute(text("SELECT invoice_number, settled_on FROM invoice WHERE settled_on > "
                                          "issue_date ORDER BY invoice_number")).first()
        opened = open_snapshot(conn, as_date(since) - timedelta(days=1))
    assert number in set(opened.invoices["invoice_number"])


def settled_by_one_patient_payment(sample) -> tuple[str, str]:
    """A settled invoice with a patient allocation, and the payment of it (one that paid that invoice alone)."""
    number = one_settled_with(sample, "EXISTS (SELECT 1 FROM allocation a WHERE a.invoice_number = i.invoice_number "
                                      "AND a.payer_type = 'patient' AND a.amount_cents > 0) AND NOT EXISTS (SELECT 1 "
                                      "FROM allocation b WHERE b.invoice_number = i.invoice_number AND "
                                      "b.payer_type = 'patient' AND b.payment_id IN (SELECT payment_id FROM allocation "
                                      "GROUP BY payment_id HAVING COUNT(*) > 1))")
    with sample.connect() as conn:
        return number, conn.execute(text("SELECT payment_id FROM allocation WHERE invoice_number = :n AND "
                                         "payer_type = 'patient'"), {"n": number}).scalar_one()


def test_a_payment_matched_again_by_hand_settles_the_invoice_again(sample):
    number, payment = settled_by_one_patient_payment(sample)
    since = settled(sample)[number]
    manual_unmatch(sample, payment)
    assert number not in settled(sample)
    manual_match(sample, payment, number)
    assert settled(sample)[number] == since
    assert_settled_owe_nothing(sample)


@pytest.mark.parametrize("day", DAYS)
def test_the_open_allocations_summed_in_the_database_give_the_same_outstanding_table(sample, day):
    with sample.connect() as conn:
        apart, summed = open_snapshot(conn, day), open_snapshot(conn, day, summed=True)
    assert (summed.allocations["amount_cents"] != 0).all()
    assert summed.allocations[["invoice_number", "payer_type"]].dtypes.tolist() == [object, object]   # as read
    assert outstanding(summed, rejection_due_after_days=30).equals(outstanding(apart, rejection_due_after_days=30))


def _settle_steps(engine, since: int) -> int:
    """SQLite's virtual-machine steps (in hundreds) of a night's settle since allocation `since`, rolled back."""
    steps = [0]
    with engine.connect() as conn:
        with conn.begin() as transaction:
            raw = conn.connection.driver_connection
            raw.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
            try:
                settle(conn, since=since)
            finally:
                raw.set_progress_handler(None, 0)
            transaction.rollback()
    return steps[0]


def test_a_night_s_settle_costs_what_it_touched_not_what_the_ledger_holds(sample):
    """A settle since a mark (a night's) looks at the invoices allocated after it: its cost does not grow with the
    invoices stored. One UPDATE ... FROM of the touched invoices had SQLite walk every invoice for each touched one
    (the 1M night's reconcile: 150 s instead of 0.3). Counted in SQLite's steps, not timed."""
    if sample.dialect.name != "sqlite":
        return
    with sample.begin() as conn:
        since = conn.execute(text("SELECT MAX(id) - 3 FROM allocation")).scalar_one()
        conn.execute(text("UPDATE invoice SET settled_on = NULL WHERE invoice_number IN "
                          "(SELECT invoice_number FROM allocation WHERE id > :s)"), {"s": since})
    small = _settle_steps(sample, since)
    with sample.begin() as conn:   # 20,000 more open invoices, none touched
        conn.execute(text(
            "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 20000) "
            "INSERT INTO invoice (invoice_number, compact_number, patient_id, issue_date, due_date, total_cents, "
            "amo_cents, amc_cents, patient_cents) SELECT 'Z' || k, 'Z' || k, i.patient_id, i.issue_date, i.due_date, "
            "100, 0, 0, 100 FROM n CROSS JOIN (SELECT * FROM invoice LIMIT 1) i"))
    big = _settle_steps(sample, since)
    assert small > 0 and big < 2 * small + 50, (small, big)


def payment_days_apart(engine) -> int:
    """Allocations whose payment_date is not their payment's day (settle reads theirs)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM allocation a LEFT JOIN payment p ON p.payment_id = "
                                 "a.payment_id WHERE a.payment_date IS NULL OR p.payment_date IS NULL OR "
                                 "a.payment_date <> p.payment_date")).scalar_one()


def test_every_allocation_written_carries_its_payment_s_day(sample):
    with sample.connect() as conn:
        rules = set(conn.execute(text("SELECT DISTINCT rule FROM allocation")).scalars())
    assert {"explicit", "rf"} <= rules      # the set-based pass's and the engine's
    assert payment_days_apart(sample) == 0
    number, payment = settled_by_one_patient_payment(sample)
    manual_unmatch(sample, payment)
    manual_match(sample, payment, number)      # by hand
    assert payment_days_apart(sample) == 0


def test_a_payment_whose_day_changes_gives_it_to_its_allocations_and_its_invoice_settles_on_it(sample):
    number = one_settled_with(sample, "EXISTS (SELECT 1 FROM allocation a WHERE a.invoice_number = i.invoice_number "
                                      "AND a.payer_type = 'patient' AND a.amount_cents > 0)")
    with sample.begin() as conn:
        payment = conn.execute(text("SELECT payment_id FROM allocation WHERE invoice_number = :n AND "
                                    "payer_type = 'patient' ORDER BY id"), {"n": number}).scalars().first()
        later = settled(sample)[number] + timedelta(days=40)
        conn.execute(text("UPDATE payment SET payment_date = :d WHERE payment_id = :p"), {"d": later, "p": payment})
    assert number not in settled(sample)
    assert payment_days_apart(sample) == 0
    with sample.begin() as conn:
        settle(conn)
    assert settled(sample)[number] == later
    assert_settled_owe_nothing(sample)
