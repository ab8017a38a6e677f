"""What is open: `invoice.settled_on`, kept by the writes, so that the everyday reads start from the open invoices.

The rule, one for all: an invoice whose `settled_on` is a day D owes nothing on any share (every share's due,
core.ledger.outstanding's due_cents, at most 0) and has no write-off, at the end of D and of every later day.
NULL means open, or not known to be settled: a read at the end of `as_of` takes the invoices issued by then
whose settled_on is NULL or later than as_of, and computes them exactly as before (core.ledger); the others
owe nothing on that day, whatever they were on earlier days.

Who keeps it:
- every write that can raise what a share owes clears it, through triggers the migration creates (so every
  write path, present or future, keeps it right without knowing of it): an allocation deleted, lowered,
  moved or negative (an unmatch, a reversal, a clawback), a share moved onto the patient or its move
  reversed (a rejection), a write-off recorded or removed (the balance's detail lists written-off invoices),
  an invoice's amounts or day changed, a payment's day changed (which its allocations' payment_date, the day
  settle reads, then follows);
- `settle` sets it on the invoices found settled (the migration: every invoice; the reconcile: those its
  new allocations touched; a match by hand, an agency's collection: that invoice). A new invoice starts NULL
  (open).
Settling is only ever an optimisation of the reads: an invoice left NULL is read and computed as before.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# The day from which nothing changes any more: the latest of the invoice's own day and its events' days.
_LAST_EVENT = {
    "sqlite": "MAX(i.issue_date, COALESCE(a.last_day, i.issue_date), COALESCE(t.last_day, i.issue_date), "
              "COALESCE(t.last_reversal, i.issue_date))",
    "postgresql": "GREATEST(i.issue_date, a.last_day, t.last_day, t.last_reversal)",
}

# What each invoice was paid per share and the day of its last payment (each allocation keeps its payment's day:
# joined to the payments for it, the sums cost SQLite 4.0-4.35 s CPU at 1M, 1.9-2.0 s so, read from the covering
# index alone); what was moved between its shares and the days of the last move and the last reversal.
_PAID = """SELECT a.invoice_number,
       SUM(CASE WHEN a.payer_type = 'amo' THEN a.amount_cents ELSE 0 END) AS amo,
       SUM(CASE WHEN a.payer_type = 'amc' THEN a.amount_cents ELSE 0 END) AS amc,
       SUM(CASE WHEN a.payer_type = 'patient' THEN a.amount_cents ELSE 0 END) AS patient,
       MAX(a.payment_date) AS last_day
FROM allocation a {scope_a}
GROUP BY a.invoice_number"""
_MOVED = """SELECT t.invoice_number,
       SUM(CASE WHEN t.reversed_on IS NULL AND t.from_payer = 'amo' THEN t.amount_cents ELSE 0 END) AS amo,
       SUM(CASE WHEN t.reversed_on IS NULL AND t.from_payer = 'amc' THEN t.amount_cents ELSE 0 END) AS amc,
       MAX(t.transfer_date) AS last_day, MAX(t.reversed_on) AS last_reversal
FROM share_transfer t {scope_t}
GROUP BY t.invoice_number"""

_SETTLED = """
SELECT i.{key}, {last_event} AS settled_on
FROM {invoices}
LEFT JOIN {paid} a ON a.invoice_number = i.invoice_number
LEFT JOIN {moved} t ON t.invoice_number = i.invoice_number
WHERE i.settled_on IS NULL {scope_i}
  AND NOT EXISTS (SELECT 1 FROM write_off w WHERE w.invoice_number = i.invoice_number)
  AND i.amo_cents - COALESCE(a.amo, 0) - COALESCE(t.amo, 0) <= 0
  AND i.amc_cents - COALESCE(a.amc, 0) - COALESCE(t.amc, 0) <= 0
  AND i.patient_cents - COALESCE(a.patient, 0) + COALESCE(t.amo, 0) + COALESCE(t.amc, 0) <= 0
"""

# SQLite: the sums staged first, each in a temporary table keyed by the invoice number and filled in that order
# (the allocations' covering index and share_transfer's index give them so), which each open invoice then finds by
# its key; the invoices found settled updated in the same statement, each by its row id. Joined as subqueries,
# SQLite materialised the sums and built an automatic index on each, sorting them again, and the invoices settled
# were staged, then each found by its number: at 1M 3.25 + 1.22 s CPU, against 2.85 + 1.14 s staging the sums,
# and 2.18 + 1.65 s so. A settle of every open invoice (a first run: most of them) sets the settled day's index
# aside (db.bulk) and builds it again after, sorted, as on PostgreSQL: the open invoices are then read straight
# from the table, and 760k entries are not moved one by one within it: at 1M the update 1.70-1.73 s -> 1.03-1.04 s
# + a 0.50-0.52 s build.
_STAGED = (("settle_paid", "invoice_number VARCHAR PRIMARY KEY, amo BIGINT, amc BIGINT, patient BIGINT, last_day DATE"),
           ("settle_moved", "invoice_number VARCHAR PRIMARY KEY, amo BIGINT, amc BIGINT, last_day DATE, last_reversal DATE"))

# The invoices a reconcile's new allocations (id above the mark) touched, staged first (settle_touched): read
# straight from the allocation table's key range, not by scanning an index of every allocation for them, and
# then the driving set of the statement (SQLite otherwise walked every open invoice by ix_invoice_settled_on).
_TOUCHED = "SELECT invoice_number FROM settle_touched"


def allocation_mark(conn: Connection) -> int:
    """The last allocation's id: `settle(conn, since=mark)` later looks only at the invoices allocated after it."""
    return int(conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM allocation").scalar_one())


def _stage_touched(conn: Connection, since: int) -> None:
    """Temporary table settle_touched: each invoice allocated to after allocation id `since`, once."""
    for table in ("settle_allocated", "settle_touched"):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    # In two steps: a DISTINCT over the allocation table itself reads SQLite's whole invoice_number index.
    conn.execute(text("CREATE TEMPORARY TABLE settle_allocated AS SELECT invoice_number FROM allocation "
                      "WHERE id > :since"), {"since": int(since)})
    conn.exec_driver_sql("CREATE TEMPORARY TABLE settle_touched AS SELECT DISTINCT invoice_number FROM settle_allocated")
    conn.exec_driver_sql("CREATE INDEX settle_touched_number ON settle_touched (invoice_number)")
    conn.exec_driver_sql("DROP TABLE settle_allocated")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE settle_touched")


def _set_aside_invoice_indexes(conn: Connection, settled: int) -> list[str]:
    """PostgreSQL, a settle of more than half the invoices (the first reconcile after loading a history): the
    invoice table's indexes set aside (db.bulk) until the update is done. Each updated row is a new row version;
    on a full page it goes to another page and into every index (settled_on is one of them): 760k of a million
    invoices took 9 s of the server's CPU so. The table leaves half of each page free (fillfactor 50, migration
    invoice_room), where the new version stays, heap-only: only settled_on's index is set aside then (at 1M: the
    update 2.1 s and that index's build 0.5 s, where setting the four aside cost 5.8 s of builds). A table without
    that room (its fillfactor reset) has them all set aside. Readers of the invoice table wait for the run's
    commit, as they do for the payment table's (db.reconcile). Elsewhere: nothing, []."""
    if conn.dialect.name != "postgresql":
        return []
    stored, room = conn.exec_driver_sql(
        "SELECT reltuples, COALESCE((SELECT option_value::int <= 50 FROM pg_options_to_table(reloptions) "
        "WHERE option_name = 'fillfactor'), FALSE) FROM pg_class WHERE oid = 'invoice'::regclass").one()
    if stored is None or stored <= 0 or settled * 2 < stored:     # never analysed: -1
        return []
    from recouvrement.db.bulk import set_aside_indexes   # here: db.bulk imports pandas, which db.queue's users
    return set_aside_indexes(conn, "invoice", column="settled_on" if room else None)   # (a match by hand) never need


def settle(conn: Connection, since: int | None = None, invoice_number: str | None = None) -> int:
    """Set settled_on on the open invoices found settled (every one; those allocated to after the allocation id
    `since`; or the one numbered `invoice_number`); the number settled. Set-based, grouped in the database. Its twin,
    app.reconcile._settled_by_outcome, finds a first run's settled invoices by the same rule from what the run holds
    (then settle_days): a change to the rule here is made there too (tests/app/test_settle_from_outcome.py)."""
    params: dict = {}
    invoices = "invoice i"
    if invoice_number is not None:
        scope_a, scope_t, scope_i = ("WHERE a.invoice_number = :n", "WHERE t.invoice_number = :n",
                                     "AND i.invoice_number = :n")
        params["n"] = invoice_number
    elif since is not None:
        _stage_touched(conn, since)
        scope_a = f"WHERE a.invoice_number IN ({_TOUCHED})"
        scope_t = f"WHERE t.invoice_number IN ({_TOUCHED})"
        scope_i = "AND i.invoice_number = s.invoice_number"
        invoices = "settle_touched s CROSS JOIN invoice i"
    else:
        scope_a = scope_t = scope_i = ""
    paid, moved = _PAID.format(scope_a=scope_a), _MOVED.format(scope_t=scope_t)
    whole = since is None and invoice_number is None
    if conn.dialect.name == "postgresql":
        settled = _SETTLED.format(key="invoice_number", invoices=invoices, last_event=_LAST_EVENT["postgresql"],
                                  paid=f"({paid})", moved=f"({moved})", scope_i=scope_i)
        count = _settle_staged(conn, settled, params, whole)
    else:
        for (table, columns), sums in zip(_STAGED, (paid, moved)):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {table} ({columns}) WITHOUT ROWID")
            conn.execute(text(f"INSERT INTO {table} {sums}"), params)
        settled = _SETTLED.format(key="rowid AS invoice_row" if whole else "invoice_number", invoices=invoices,
                                  last_event=_LAST_EVENT["sqlite"], paid=_STAGED[0][0], moved=_STAGED[1][0],
                                  scope_i=scope_i)
        if whole:   # here: db.bulk imports pandas, which db.queue's users (a match by hand) never need
            from recouvrement.db.bulk import build_indexes, set_aside_indexes
            set_aside = set_aside_indexes(conn, "invoice", column="settled_on")
            count = conn.execute(text(f"UPDATE invoice SET settled_on = settled.settled_on FROM ({settled}) settled "
                                      "WHERE settled.invoice_row = invoice.rowid"), params).rowcount
            if set_aside:
                build_indexes(conn, set_aside)
        else:   # staged first, as on PostgreSQL: in one statement SQLite walked every invoice, each looking for
            count = _settle_staged(conn, settled, params, whole)   # itself among the few touched (1M night: 150 s)
        for table, _ in _STAGED:
            conn.exec_driver_sql(f"DROP TABLE {table}")
    if since is not None and invoice_number is None:
        conn.exec_driver_sql("DROP TABLE settle_touched")
    return count


def settle_days(conn: Connection, rows: list, days: list[str]) -> int:
    """settled_on set to days[k] on the invoice rows[k] if it is still open: the invoices a caller found settled by
    the rule above from what it holds (app.reconcile: a first run's outcome), rather than summed again here; the
    number settled. SQLite: rows[k] is the invoice's rowid (ascending); staged first, then each found by its rowid;
    the settled day's index set aside and built again after when they are most of the invoices (see _STAGED).
    PostgreSQL: rows[k] is the invoice's number (_settle_days_postgresql)."""
    if conn.dialect.name == "postgresql":
        return _settle_days_postgresql(conn, rows, days)
    from recouvrement.db.bulk import build_indexes, set_aside_indexes   # (here: db.bulk imports pandas)
    conn.exec_driver_sql("DROP TABLE IF EXISTS settled_days")
    conn.exec_driver_sql("CREATE TEMPORARY TABLE settled_days (invoice_row INTEGER PRIMARY KEY, settled_on DATE)")
    raw = conn.connection.driver_connection
    assert raw is not None
    cells: list = [None] * (2 * len(rows))
    cells[0::2], cells[1::2] = rows, days
    per = 2 * _ROWS_A_STATEMENT
    full = len(cells) - len(cells) % per
    if full:
        raw.executemany("INSERT INTO settled_days VALUES " + ", ".join(["(?, ?)"] * _ROWS_A_STATEMENT),
                        [cells[k:k + per] for k in range(0, full, per)])
    if full < len(cells):
        raw.executemany("INSERT INTO settled_days VALUES (?, ?)", list(zip(cells[full::2], cells[full + 1::2])))
    whole = len(rows) * 2 > _invoice_rows(conn)
    set_aside = set_aside_indexes(conn, "invoice", column="settled_on") if whole else []
    count = conn.exec_driver_sql("UPDATE invoice SET settled_on = s.settled_on FROM settled_days s "
                                 "WHERE s.invoice_row = invoice.rowid AND invoice.settled_on IS NULL").rowcount
    if set_aside:
        build_indexes(conn, set_aside)
    conn.exec_driver_sql("DROP TABLE settled_days")
    return count


_ROWS_A_STATEMENT = 500


def _settle_days_postgresql(conn: Connection, numbers: list[str], days: list[str]) -> int:
    """settle_days on PostgreSQL: the invoices' numbers and days COPYed into settled_now, then updated as settle's
    staged rows are (_settle_staged: the invoice indexes maybe set aside). The 1M first run's 759,863 invoices: the
    COPY and its ANALYZE ~0.5 s of the server's CPU, where settle's statement staging them took 4.8-5.8 s."""
    import pandas as pd    # here: db.queue's users (a match by hand) never need pandas
    from recouvrement.db.bulk import stage
    stage(conn, "settled_now", pd.DataFrame({"invoice_number": pd.Series(numbers, dtype=object),
                                             "settled_on": pd.Series(days, dtype=object)}),
          {"invoice_number": "str", "settled_on": "date"})
    return _settle_from_staged(conn, len(numbers), whole=True)


def _invoice_rows(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT COALESCE(MAX(rowid), 0) FROM invoice").scalar_one())


def settle_facts(conn: Connection) -> tuple[list, list[str]]:
    """What settle_days' callers read of the small tables: (invoice_number, last transfer day, last reversal day) of
    each invoice with a share moved, and the invoices with a write-off."""
    moved = conn.exec_driver_sql("SELECT invoice_number, MAX(transfer_date), MAX(reversed_on) FROM share_transfer "
                                 "GROUP BY invoice_number").all()
    written_off = conn.exec_driver_sql("SELECT DISTINCT invoice_number FROM write_off").scalars().all()
    return [tuple(row) for row in moved], list(written_off)


def _settle_staged(conn: Connection, settled: str, params: dict, whole: bool) -> int:
    """The invoices found settled (`settled`, keyed by their number) staged, then updated (`whole`: a settle of every
    open invoice, with PostgreSQL's invoice indexes maybe set aside)."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS settled_now")
    conn.execute(text(f"CREATE TEMPORARY TABLE settled_now AS {settled}"), params)
    staged = int(conn.exec_driver_sql("SELECT COUNT(*) FROM settled_now").scalar_one())
    return _settle_from_staged(conn, staged, whole)


def _settle_from_staged(conn: Connection, staged: int, whole: bool) -> int:
    """The open invoices settled_now (invoice_number, settled_on; `staged` rows) names given their settled day, then
    settled_now dropped; the number settled. `whole`: a settle of every open invoice, PostgreSQL's invoice indexes
    maybe set aside (_set_aside_invoice_indexes) and built again after. Shared by _settle_staged (the rule's rows)
    and _settle_days_postgresql (a caller's)."""
    count = 0
    if staged:   # driven by the staged rows, each finding its invoice by its key (no index to build on them)
        set_aside = _set_aside_invoice_indexes(conn, staged) if whole else []
        count = conn.exec_driver_sql("UPDATE invoice SET settled_on = s.settled_on FROM settled_now s WHERE "
                                     "s.invoice_number = invoice.invoice_number AND invoice.settled_on IS NULL").rowcount
        if set_aside:
            from recouvrement.db.bulk import build_indexes
            build_indexes(conn, set_aside, analyse="invoice")
    conn.exec_driver_sql("DROP TABLE settled_now")
    return count


# -- the triggers that reopen (the migration creates them; SQLite and PostgreSQL spell them differently) ------

# (table, event, condition on OLD/NEW, the invoice numbers to reopen as SQL expressions)
_REOPEN = (
    ("allocation", "DELETE", "OLD.amount_cents > 0", ("OLD.invoice_number",)),
    ("allocation", "UPDATE", "NEW.amount_cents < OLD.amount_cents OR NEW.invoice_number <> OLD.invoice_number "
                             "OR NEW.payer_type <> OLD.payer_type OR NEW.payment_id <> OLD.payment_id",
     ("OLD.invoice_number", "NEW.invoice_number")),
    ("allocation", "INSERT", "NEW.amount_cents < 0", ("NEW.invoice_number",)),
    ("share_transfer", "INSERT", "1 = 1", ("NEW.invoice_number",)),
    ("share_transfer", "UPDATE", "NEW.reversed_on IS DISTINCT FROM OLD.reversed_on "
                                 "OR NEW.amount_cents <> OLD.amount_cents OR NEW.from_payer <> OLD.from_payer "
                                 "OR NEW.transfer_date IS DISTINCT FROM OLD.transfer_date "
                                 "OR NEW.invoice_number <> OLD.invoice_number",
     ("OLD.invoice_number", "NEW.invoice_number")),
    ("share_transfer", "DELETE", "1 = 1", ("OLD.invoice_number",)),
    ("write_off", "INSERT", "1 = 1", ("NEW.invoice_number",)),
    ("write_off", "UPDATE", "1 = 1", ("OLD.invoice_number", "NEW.invoice_number")),
    ("write_off", "DELETE", "1 = 1", ("OLD.invoice_number",)),
)
_INVOICE_CHANGED = ("NEW.amo_cents <> OLD.amo_cents OR NEW.amc_cents <> OLD.amc_cents OR NEW.patient_cents <> "
                    "OLD.patient_cents OR NEW.issue_date IS DISTINCT FROM OLD.issue_date")
_PAYMENT_MOVED = "NEW.payment_date IS DISTINCT FROM OLD.payment_date OR NEW.payment_id <> OLD.payment_id"


def _reopen_sql(numbers: tuple[str, ...]) -> str:
    return "; ".join(f"UPDATE invoice SET settled_on = NULL WHERE invoice_number = {n} AND settled_on IS NOT NULL"
                     for n in numbers) + ";"


def trigger_names() -> list[str]:
    return ([f"reopen_{table}_{event.lower()}" for table, event, _, _ in _REOPEN]
            + ["reopen_invoice_update", "reopen_payment_update"])


def create_triggers(conn: Connection, carries_day: bool = True) -> None:
    """The triggers that clear settled_on whenever a write may raise what an invoice owes (`carries_day`: see
    create_payment_update_trigger)."""
    postgres = conn.dialect.name == "postgresql"
    for table, event, condition, numbers in _REOPEN:
        name = f"reopen_{table}_{event.lower()}"
        if postgres and _by_statement(event, condition):
            _statement_trigger(conn, name, table, event)
        else:
            _trigger(conn, postgres, name, table, event, condition, _reopen_sql(numbers))
    create_payment_update_trigger(conn, carries_day)
    if postgres:
        create_invoice_update_trigger(conn)
    else:
        conn.exec_driver_sql(
            "CREATE TRIGGER reopen_invoice_update AFTER UPDATE OF amo_cents, amc_cents, patient_cents, issue_date "
            f"ON invoice FOR EACH ROW WHEN {_INVOICE_CHANGED} BEGIN UPDATE invoice SET settled_on = NULL "
            "WHERE invoice_number = NEW.invoice_number; END")


def create_payment_update_trigger(conn: Connection, carries_day: bool = True) -> None:
    """A payment whose day or id changes reopens the invoices it was allocated to and (`carries_day`; migrations
    before 0022: not) gives its day to its allocations, which keep it for settle (allocation.payment_date)."""
    body = ("UPDATE invoice SET settled_on = NULL WHERE settled_on IS NOT NULL AND invoice_number IN "
            "(SELECT invoice_number FROM allocation WHERE payment_id IN (OLD.payment_id, NEW.payment_id));")
    if carries_day:
        body += (" UPDATE allocation SET payment_date = NEW.payment_date WHERE payment_id = NEW.payment_id "
                 "AND payment_date IS DISTINCT FROM NEW.payment_date;")
    _trigger(conn, conn.dialect.name == "postgresql", "reopen_payment_update", "payment", "UPDATE", _PAYMENT_MOVED,
             body)


def create_invoice_update_trigger(conn: Connection) -> None:
    """PostgreSQL: an invoice whose amounts or day change is reopened in the same row version (BEFORE UPDATE). The
    condition is the trigger's WHEN, evaluated by the executor, so that the function runs only for such a change:
    called for every updated row, to test it, it cost settle's update of 760k invoices (the first reconcile at 1M)
    0.8-1.0 s of the server's time for an update of settled_on alone, which never reopens anything."""
    conn.exec_driver_sql("CREATE OR REPLACE FUNCTION reopen_invoice_update() RETURNS trigger LANGUAGE plpgsql AS $$ "
                         "BEGIN NEW.settled_on := NULL; RETURN NEW; END $$")
    conn.exec_driver_sql("CREATE TRIGGER reopen_invoice_update BEFORE UPDATE ON invoice FOR EACH ROW "
                         f"WHEN ({_INVOICE_CHANGED}) EXECUTE FUNCTION reopen_invoice_update()")


def _by_statement(event: str, condition: str) -> bool:
    """PostgreSQL: an insert or a delete that reopens whatever its rows are (a share moved or its move deleted, a
    write-off) reopens their invoices in one statement per statement, over its transition table, rather than a
    plpgsql call and an UPDATE per row: the first reconcile at 1M copies 46,140 share transfers; inserted in one
    statement on the reconciled 1M database, their trigger cost 0.46-0.63 s of the server's CPU per row, 0.25-0.27 s
    per statement (the invoices looked up by an array of their numbers: IN (SELECT …) scanned the invoice table)."""
    return event in ("INSERT", "DELETE") and condition == "1 = 1"


def _statement_trigger(conn: Connection, name: str, table: str, event: str) -> None:
    rows, which = ("new_rows", "NEW") if event == "INSERT" else ("old_rows", "OLD")
    conn.exec_driver_sql(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                         "UPDATE invoice SET settled_on = NULL WHERE settled_on IS NOT NULL AND invoice_number = "
                         f"ANY(ARRAY(SELECT invoice_number FROM {rows})); RETURN NULL; END $$")
    conn.exec_driver_sql(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {which} TABLE AS {rows} "
                         f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")


def reopen_by_statement(conn: Connection, by_statement: bool = True) -> None:
    """PostgreSQL: the reopening triggers _by_statement names made again, statement triggers (or, `by_statement`
    False, row triggers as they were before migration 0021)."""
    for table, event, condition, numbers in _REOPEN:
        if _by_statement(event, condition):
            name = f"reopen_{table}_{event.lower()}"
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            if by_statement:
                _statement_trigger(conn, name, table, event)
            else:
                _trigger(conn, True, name, table, event, condition, _reopen_sql(numbers))


def _trigger(conn: Connection, postgres: bool, name: str, table: str, event: str, condition: str, body: str) -> None:
    if postgres:
        # A PostgreSQL row trigger's WHEN may not name OLD on INSERT nor NEW on DELETE: the condition only does
        # where the event has it.
        conn.exec_driver_sql(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                             f"{body} RETURN NULL; END $$")
        conn.exec_driver_sql(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW WHEN ({condition}) "
                             f"EXECUTE FUNCTION {name}()")
    else:
        conn.exec_driver_sql(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW WHEN {condition} "
                             f"BEGIN {body} END")


def drop_triggers(conn: Connection) -> None:
    postgres = conn.dialect.name == "postgresql"
    for name in trigger_names():
        table = {"allocation": "allocation", "share": "share_transfer", "write": "write_off", "invoice": "invoice",
                 "payment": "payment"}[name.split("_")[1]]
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
        if postgres:
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}()")
