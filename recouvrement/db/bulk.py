"""Bulk loading and staging: executemany on SQLite, COPY on PostgreSQL, temporary staging tables."""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import BigInteger, Boolean, Column, Connection, Date, MetaData, String, Table, Text, text

from recouvrement.db import pgcopy


def _driver(conn: Connection) -> Any:
    """The driver's own connection under SQLAlchemy's (sqlite3's or psycopg's)."""
    raw = conn.connection.driver_connection
    if raw is None:                  # only once the connection is closed
        raise RuntimeError("the database connection is closed")
    return raw


def read_frame(conn: Connection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """A query's result as a DataFrame, column by column. On SQLite the driver's own cursor is used
    (it understands :name parameters): SQLAlchemy's row objects cost more than the query itself."""
    if conn.dialect.name == "sqlite":
        cursor = _driver(conn).execute(sql, _plain(params or {}))
        columns = [d[0] for d in cursor.description]
        values: list = _cells(cursor.fetchall(), len(columns))
    else:
        # psycopg's own cursor too, the statement compiled to its parameter style by SQLAlchemy (which escapes a
        # literal %): its rows are plain tuples made in C, where SQLAlchemy's Row objects cost more than the query.
        compiled = text(sql).compile(dialect=conn.dialect)
        with _driver(conn).cursor() as cursor:
            cursor.execute(str(compiled), compiled.construct_params(params or {}))
            columns = [d.name for d in cursor.description]
            values = _cells(cursor.fetchall(), len(columns))
    return pd.DataFrame({name: _column(column) for name, column in zip(columns, values)})


# read_columns: each column of a SQLite result read as one value, its cells joined by a NUL byte (no text the
# importers store holds one: a cell that did would split in two, and the read falls back to rows), a missing
# cell written as the byte 0xFF, which no UTF-8 text holds.
_JOINED = "CAST(group_concat(COALESCE({column}, CAST(x'ff' AS TEXT)), char(0)) AS BLOB)"
_MISSING = pa.scalar(b"\xff", pa.binary())


def read_columns(conn: Connection, sql: str, params: dict | None = None, ints: Sequence[str] = ()) -> pd.DataFrame:
    """The frame read_frame gives (the same values, dtypes and order), read on SQLite column by column as one value
    each (group_concat, in one pass over the query's rows) cut by Arrow, where the driver makes a tuple a row and an
    object a cell that _cells then lays out. Each column's objects are then made one after the other, together in
    memory: what reads them after goes faster too. The 1M first run's 541,085 pending payments, ten columns (same
    transaction, alternated, under the bench lock): the read 2.8-4.4 -> 2.3-3.1 s CPU, the matching engine on them
    7.2 / 7.9 -> 7.1 / 5.3, the run's digest of its allocations 0.44-0.50 -> 0.32-0.34.
    `ints`: the columns holding whole numbers (int64; Python ints beside None when one is missing); every other
    column is text. A result with a column too long for one SQLite value (a gigabyte) is read by rows, as it is on
    PostgreSQL (read_frame)."""
    if conn.dialect.name != "sqlite":
        return read_frame(conn, sql, params)
    driver, plain = _driver(conn), _plain(params or {})
    columns = [d[0] for d in driver.execute(f"SELECT * FROM ({sql}) LIMIT 0", plain).description]
    joined = ", ".join(_JOINED.format(column='"' + c.replace('"', '""') + '"') for c in columns)
    try:
        count, *values = driver.execute(f"SELECT COUNT(*), {joined} FROM ({sql})", plain).fetchone()
    except sqlite3.DataError:      # a column longer than one SQLite value may be (SQLITE_MAX_LENGTH, a gigabyte)
        return read_frame(conn, sql, params)
    if not count:
        return read_frame(conn, sql, params)
    cells = [pc.split_pattern(pa.array([v], pa.binary()), b"\x00").values for v in values]
    if any(len(c) != count for c in cells):       # a NUL inside a cell
        return read_frame(conn, sql, params)
    return pd.DataFrame({name: _arrow_column(column, name in ints) for name, column in zip(columns, cells)})


def _arrow_column(cells: pa.Array, whole: bool) -> pd.Series:
    """One column of read_columns' cells (binary, 0xFF where missing) as read_frame's _column gives it."""
    cells = pc.if_else(pc.equal(cells, _MISSING), pa.scalar(None, pa.binary()), cells).cast(pa.string())
    if not whole:
        return pd.Series(cells.to_numpy(zero_copy_only=False), dtype=object)
    numbers = cells.cast(pa.int64())
    if not numbers.null_count:
        return pd.Series(numbers.to_numpy())
    objects = numbers.fill_null(0).to_numpy().astype(object)
    objects[pc.is_null(numbers).to_numpy(zero_copy_only=False)] = None
    return pd.Series(objects, dtype=object)


def _cells(rows: list[tuple], width: int) -> list[np.ndarray]:
    """The rows as columns, through one two-dimensional array of their cells (a cell is never a sequence: no
    query reads an array): a million rows of seven cells in 0.3 s, where zip(*rows) took 1.3 s."""
    table = np.empty((len(rows), width), dtype=object)
    if rows:
        table[:] = rows
    return [table[:, j] for j in range(width)]


def _column(values: tuple | np.ndarray) -> pd.Series:
    """Whole numbers as int64 (when none is missing), anything else as Python objects: text is hashed
    and compared as it comes, and converted to Arrow only where a bulk string operation needs it."""
    if len(values) and type(values[0]) is int:
        try:
            return pd.Series(np.fromiter(values, dtype=np.int64, count=len(values)))
        except TypeError:                      # a missing value: keep the column as objects
            pass
    objects = np.empty(len(values), dtype=object)
    objects[:] = values
    return pd.Series(objects, dtype=object)


def _plain(params: dict) -> dict:
    """Dates and times as text, in the format SQLAlchemy stores them in SQLite."""
    def plain(value):
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value.isoformat() if isinstance(value, date) else value
    return {key: plain(value) for key, value in params.items()}


_TYPES = {"int": BigInteger, "date": Date, "str": String, "text": Text, "bool": Boolean}


# Rows turned into Python objects at a time: a million invoices' cells at once held a gigabyte of str objects.
ROWS_AT_ONCE = 100_000


def rows_of(frame: pd.DataFrame):
    """Plain Python tuples, with None for missing cells (drivers accept neither numpy types nor NA), made
    ROWS_AT_ONCE rows at a time so that a big load never holds all its cells as Python objects at once."""
    for start in range(0, len(frame), ROWS_AT_ONCE):
        yield from _plain_rows(frame.iloc[start:start + ROWS_AT_ONCE])


def _plain_rows(frame: pd.DataFrame):
    columns = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            column = _times_text(column)
        if isinstance(column.dtype, pd.StringDtype):
            # Arrow makes the str objects in C, missing cells as None: twice as fast as .tolist().
            columns.append(column.array.__arrow_array__().to_numpy(zero_copy_only=False).tolist())
            continue
        values = column.tolist()               # Python ints and str, NA as a missing-value marker
        if column.hasnans:
            values = [None if v is None or v is pd.NA or v != v else v for v in values]
        columns.append(values)
    return zip(*columns)


def bulk_insert(conn: Connection, table: str, frame: pd.DataFrame) -> None:
    """`frame`'s rows added to `table`. PostgreSQL: COPY in binary (_binary), else CSV (_csv), else row by row."""
    if frame.empty:
        return
    columns = ", ".join(frame.columns)
    raw = _driver(conn)
    if conn.dialect.name == "sqlite":
        _insert_sqlite(raw, table, frame)
    elif not _binary(raw, table, frame):
        data = _csv(frame)
        with raw.cursor() as cursor:
            if data is None:
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows_of(frame):
                        copy.write_row(row)
            else:
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(data)


def _binary(raw: Any, table: str, frame: pd.DataFrame) -> bool:
    """`frame` sent by COPY in binary (db.pgcopy), each value in the target column's own type, when every column can
    be (else False: nothing sent). The server then parses no text: the 1M set's rows COPYed alone into empty tables,
    CSV / binary alternated 3 times, server CPU invoices 1.8-2.7 -> 0.8-1.0 s, payments 4.7-5.2 -> 3.2-3.6 s, patients
    1.2-1.5 -> 0.6-0.7 s; building the stream costs the client what Arrow's CSV writer did (0.4-0.5 s, invoices)."""
    types = _column_types(raw, table)
    try:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return False
    parts = pgcopy.stream(arrow, [types.get(column) for column in frame.columns], _session_in_utc(raw))
    if parts is None:
        return False
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN (FORMAT binary)") \
            as copy:
        for part in parts:
            copy.write(memoryview(part))
    return True


# The names of UTC among PostgreSQL's time zones (the session's TimeZone as psycopg reports it, a ZoneInfo).
_UTC_ZONES = {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}


def _session_in_utc(raw: Any) -> bool:
    """Whether the session's time zone (TimeZone, as the server last reported it) is UTC: the zone the server reads a
    naive time's text in (COPY's CSV), which the binary stream then sends as that instant (db.pgcopy)."""
    zone = raw.info.timezone
    return zone is timezone.utc or getattr(zone, "key", None) in _UTC_ZONES


# Each permanent table's column types (pg_type oids) as one connection read them from the catalog: a table's types
# change only by a migration, and the migrations run before any load. A temporary table's are read at each load
# (stage drops and creates its tables again, maybe with other types).
_COLUMN_TYPES: weakref.WeakKeyDictionary[Any, dict[str, dict[str, int]]] = weakref.WeakKeyDictionary()


def _column_types(raw: Any, table: str) -> dict[str, int]:
    """`table`'s columns and their types' oids, on PostgreSQL (raw: psycopg's connection)."""
    known = _COLUMN_TYPES.setdefault(raw, {})
    if table in known:
        return known[table]
    with raw.cursor() as cursor:
        cursor.execute("SELECT a.attname, a.atttypid::int8, c.relpersistence FROM pg_attribute a JOIN pg_class c "
                       "ON c.oid = a.attrelid WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
                       "AND NOT a.attisdropped", (table,))
        rows = cursor.fetchall()
    types = {name: int(oid) for name, oid, _ in rows}
    if rows and all(persistence == "p" for _, _, persistence in rows):
        known[table] = types
    return types


# Rows one INSERT statement writes on SQLite (a VALUES list): stepping and resetting a statement per row cost more
# than storing it. At most SQLITE_VARIABLES cells a statement (SQLite's limit since 3.32).
ROWS_A_STATEMENT = 500
SQLITE_VARIABLES = 32_766
# Text columns with fewer distinct values than this among their first SAMPLE cells are made Python objects once
# per distinct value (a payer, a status, a date), not once per cell.
SAMPLE, FEW_DISTINCT = 1_000, 100


def _insert_sqlite(raw: Any, table: str, frame: pd.DataFrame) -> None:
    """executemany of multi-row INSERTs, ROWS_AT_ONCE rows made Python objects at a time."""
    width = len(frame.columns)
    per = max(1, min(ROWS_A_STATEMENT, SQLITE_VARIABLES // width))
    head = f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES "
    for start in range(0, len(frame), ROWS_AT_ONCE):
        cells, marks = _row_cells(frame.iloc[start:start + ROWS_AT_ONCE])
        row = f"({', '.join(marks)})"
        full = len(cells) - len(cells) % per
        if full:
            raw.executemany(head + ", ".join([row] * per), cells[:full].reshape(-1, per * width).tolist())
        if full < len(cells):
            raw.executemany(head + row, cells[full:].tolist())


def _row_cells(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The frame's cells as plain Python values in a rows x columns array (drivers accept neither numpy types nor
    NA), and each column's placeholder: a text column whose missing cells are its only empty ones sends them as
    '' through NULLIF(?, ''), as sqlite3 binds None (and bool) through its adapters' lookup, a str directly; a
    column of truths with missing cells, as ints through NULLIF(?, -1) (_truth_cells)."""
    cells = np.empty((len(frame), len(frame.columns)), dtype=object)
    marks = []
    for j, name in enumerate(frame.columns):
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            column = _times_text(column)
        if isinstance(column.dtype, pd.StringDtype):
            text = column.array.__arrow_array__()
            values, mark = _text_cells(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
        elif column.dtype == bool:
            values, mark = column.to_numpy(dtype=np.int64), "?"
        elif pd.api.types.is_integer_dtype(column.dtype) and not column.hasnans:
            values, mark = column.to_numpy(dtype=np.int64), "?"
        elif column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "boolean":
            values, mark = _truth_cells(column)
        else:
            values, mark = column.to_numpy(dtype=object, copy=True), "?"
            if column.hasnans:                  # NA, NaN, NaT as None
                values[pd.isna(column).to_numpy()] = None
        cells[:, j] = values
        marks.append(mark)
    return cells, marks


def _times_text(column: pd.Series) -> pd.Series:
    """A column of times as SQLAlchemy writes them in SQLite (missing: None), each distinct time formatted once: a
    run's allocations share one created_at, its now (the 1M first run's 403,175 formatted one by one: 0.18-0.25 s
    CPU of the write stage, against 0.01)."""
    codes, uniques = pd.factorize(column)
    texts = np.empty(len(uniques) + 1, dtype=object)         # the last one None: code -1, a missing time
    texts[:-1] = pd.DatetimeIndex(uniques).strftime("%Y-%m-%d %H:%M:%S.%f")
    return pd.Series(texts[codes], index=column.index, dtype=object)


def _truth_cells(column: pd.Series) -> tuple[np.ndarray, str]:
    """A column of True, False and missing cells (a consent) as 1, 0 and -1, sent through NULLIF(?, -1) when one is
    missing: sqlite3 binds an int directly, a bool and None through its adapters' lookup (a first file's 410,000
    patients, two such columns: 0.3-0.5 s of the insert's CPU). Stored the same: 1, 0 and NULL."""
    missing = pd.isna(column).to_numpy()
    values = np.where(missing, -1, column.where(~missing, False).to_numpy(dtype=bool)).astype(np.int64)
    return values, "NULLIF(?, -1)" if missing.any() else "?"


def _text_cells(values: pa.Array) -> tuple[np.ndarray, str]:
    mark = "?"
    if values.null_count and not pc.any(pc.equal(values, "")).as_py():
        values, mark = pc.fill_null(values, ""), "NULLIF(?, '')"
    if len(values) > SAMPLE and len(pc.unique(values.slice(0, SAMPLE))) < FEW_DISTINCT:
        encoded = pc.dictionary_encode(values, null_encoding="encode")
        return encoded.dictionary.to_numpy(zero_copy_only=False)[encoded.indices.to_numpy()], mark
    return values.to_numpy(zero_copy_only=False), mark


def _csv(frame: pd.DataFrame) -> bytes | None:
    """`frame` as COPY's CSV, written by Arrow in C (five times less CPU than psycopg's write_row, row by row):
    every value quoted, a missing one left unquoted and empty, which COPY reads as NULL (and "" as an empty
    text). None when Arrow cannot type a column (mixed Python objects), or wrote a NUL byte (pyarrow 26 writes
    garbage for a column in several chunks with an empty one, hence combine_chunks too): the caller then sends
    the rows one by one."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
        out = pa.BufferOutputStream()
        pacsv.write_csv(table, out, write_options=pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    except (pa.ArrowException, TypeError, ValueError):
        return None
    data = out.getvalue().to_pybytes()
    return None if b"\0" in data else data


def stage(conn: Connection, name: str, frame: pd.DataFrame, types: dict[str, str], index: str | None = None) -> str:
    """A temporary table `name` holding `frame`, typed as `types` says (int | date | str | text | bool),
    indexed on `index` (built after the load: cheaper than maintaining it row by row)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    table = Table(name, MetaData(), *(Column(c, _TYPES[types.get(c, "str")]) for c in frame.columns),
                  prefixes=["TEMPORARY"])
    table.create(conn)
    bulk_insert(conn, name, frame)
    if index:
        conn.exec_driver_sql(f"CREATE INDEX {name}_{index} ON {name} ({index})")
    conn.exec_driver_sql(f"ANALYZE {name}") if conn.dialect.name == "postgresql" else None
    return name


def set_aside_indexes(conn: Connection, table: str, column: str | None = None, keys: bool = True) -> list[str]:
    """Drops `table`'s indexes (PostgreSQL: its keys too, primary and unique; SQLite: the secondary indexes, not
    the keys' own) and returns the statements that build them again (`build_indexes`), for a bulk write that
    would otherwise update every index row by row. In the caller's transaction: a failure rolls the drop back
    too. Readers of the table wait until the transaction ends. `column`: only the indexes (PostgreSQL: and keys)
    on that column, and any on an expression or with a condition (an update of that column alone then changes
    no other index; on PostgreSQL a row version kept on its page, heap-only, needs no entry in them). `keys`:
    False keeps PostgreSQL's keys too. A key another table's foreign key points to is always kept (it cannot be
    dropped alone; the schema has none today)."""
    if conn.dialect.name != "postgresql":
        indexes = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                                    "AND sql IS NOT NULL ORDER BY name"), {"t": table}).all()
        if column is not None:   # index_info names each indexed column; an expression's name is NULL
            indexes = [index for index in indexes if " WHERE " in index[1].upper() or {row[2] for row in
                       conn.exec_driver_sql(f'PRAGMA index_info("{index[0]}")')} & {column, None}]
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        return [definition for _, definition in indexes]
    oid = f"'{table}'::regclass"
    on = ("" if column is None else " AND (x.indexprs IS NOT NULL OR x.indpred IS NOT NULL OR EXISTS (SELECT 1 FROM "
          "pg_attribute a WHERE a.attrelid = x.indrelid AND a.attname = :column AND a.attnum = ANY(x.indkey)))")
    constraints = conn.execute(text(
        f"SELECT conname, pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_index x ON x.indexrelid = k.conindid "
        f"WHERE k.conrelid = {oid} AND k.contype IN ('p', 'u') AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE "
        f"f.contype = 'f' AND f.conindid = k.conindid){on} ORDER BY conname"), {"column": column}).all() if keys else []
    indexes = conn.execute(text(f"SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c "
                                f"ON c.oid = x.indexrelid WHERE x.indrelid = {oid} AND NOT EXISTS (SELECT 1 FROM "
                                f"pg_constraint k WHERE k.conindid = x.indexrelid){on} ORDER BY c.relname"),
                           {"column": column}).all()
    for name, _ in constraints:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return ([f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]
            + [definition for _, definition in indexes])


def build_indexes(conn: Connection, statements: list[str], analyse: str | None = None) -> None:
    """Runs the statements `set_aside_indexes` returned (sorted builds), then, on PostgreSQL, analyses table
    `analyse` when there were some: its rows changed wholesale (SQLite plans without statistics: none are made)."""
    for statement in statements:
        conn.exec_driver_sql(statement)
    if statements and analyse and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {analyse}")
