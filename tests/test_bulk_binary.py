"""Binary COPY on PostgreSQL (db.pgcopy through db.bulk._binary): rows stored as the CSV path stores them, the CSV
path taken where a column cannot be sent in binary."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import text

from recouvrement.db import bulk, pgcopy

ON_POSTGRES = os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres")
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="binary COPY is PostgreSQL's")

COLUMNS = ("n bigint, k integer, s smallint, yes boolean, label text, name varchar(40), "
           "day date")


def _tables(conn, *names: str, columns: str = COLUMNS) -> None:
    for name in names:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE TABLE {name} (row_number integer, {columns})")


def _by_csv(conn, table: str, frame: pd.DataFrame, monkeypatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(bulk, "_binary", lambda raw, table, frame: False)
        bulk.bulk_insert(conn, table, frame)


def _in_binary(conn, table: str, frame: pd.DataFrame, monkeypatch) -> None:
    """bulk_insert, failing if it took the CSV path."""
    def no_csv(frame):
        raise AssertionError("the CSV path was taken")
    with monkeypatch.context() as patch:
        patch.setattr(bulk, "_csv", no_csv)
        bulk.bulk_insert(conn, table, frame)


def _stored(conn, table: str) -> list[tuple]:
    return [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY row_number"))]


EDGES = pd.DataFrame({
    "row_number": range(7),
    "n": pd.Series([0, -1, 2 ** 63 - 1, -2 ** 63, None, 42, 10 ** 12], dtype="Int64"),
    "k": [0, -2 ** 31, 2 ** 31 - 1, 7, -7, 1, 2],
    "s": pd.Series([-2 ** 15, 2 ** 15 - 1, None, 0, 1, -1, 3], dtype="Int16"),
    "yes": pd.Series([True, False, None, True, pd.NA, False, True], dtype=object),
    "label": pd.Series(["", None, "é ü ß — 日本", "a,b\"c\nd\\e", "NULL", "\\N", " x "], dtype="string[pyarrow]"),
    "name": pd.Series(["Müller", "", None, "O'Brien", "😀", "x" * 40, "ǅ"], dtype="str"),
    "day": pd.Series(["1999-12-31", "2000-01-01", None, "0001-01-01", "9999-12-31", "1970-01-01", "1900-02-28"],
                     dtype="str"),
})


@postgres_only
def test_every_type_sent_in_binary_is_stored_as_the_csv_path_stores_it(engine, monkeypatch):
    # NULLs, empty text, non-ASCII text, CSV's own specials, the ends of each integer type, dates before 2000.
    with engine.begin() as conn:
        _tables(conn, "by_binary", "by_csv")
        _in_binary(conn, "by_binary", EDGES, monkeypatch)
        _by_csv(conn, "by_csv", EDGES, monkeypatch)
        stored = _stored(conn, "by_binary")
        assert stored == _stored(conn, "by_csv")
    assert stored[2][1:] == (2 ** 63 - 1, 2 ** 31 - 1, None, None, "é ü ß — 日本", None, None)
    assert stored[0][5:] == ("", "Müller", date(1999, 12, 31)) and stored[1][5] is None
    assert stored[3][7] == date(1, 1, 1) and stored[4][7] == date(9999, 12, 31)


@postgres_only
def test_dates_given_as_dates_and_columns_of_objects_are_sent_in_binary(engine, monkeypatch):
    frame = pd.DataFrame({"row_number": [1, 2, 3], "day": pd.Series([date(1969, 7, 20), None, date(2026, 12, 3)],
                                                                      dtype=object),
                          "label": pd.Series(["a", None, "ç"], dtype=object),
                          "yes": pd.Series([None, None, None], dtype=object)})
    with engine.begin() as conn:
        _tables(conn, "by_binary", "by_csv")
        _in_binary(conn, "by_binary", frame, monkeypatch)
        _by_csv(conn, "by_csv", frame, monkeypatch)
        assert _stored(conn, "by_binary") == _stored(conn, "by_csv")
        assert _stored(conn, "by_binary")[0][7] == date(1969, 7, 20)


TIMES = pd.DataFrame({
    "row_number": [1, 2, 3, 4, 5],
    "at": pd.to_datetime(["2026-12-03 08:00:01.5", "1999-01-01 00:00:00", None, "0001-01-01 00:00:00.000001",
                          "9999-12-31 23:59:59.999999"], format="ISO8601").as_unit("us"),
    "n": [1, 2, 3, 4, 5]})


@postgres_only
def test_naive_times_into_a_timestamptz_are_sent_in_binary_in_a_utc_session_and_stored_as_csv_stores_them(
        engine, monkeypatch):
    # Naive times, as the run writes allocation.created_at: CSV's text is read in the session's zone (UTC here).
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        _tables(conn, "by_binary", "by_csv", columns="at timestamp with time zone, n bigint")
        _in_binary(conn, "by_binary", TIMES, monkeypatch)
        _by_csv(conn, "by_csv", TIMES, monkeypatch)
        stored = _stored(conn, "by_binary")
        assert stored == _stored(conn, "by_csv")
    assert [row[1] for row in stored] == [datetime(2026, 12, 3, 8, 0, 1, 500000, tzinfo=timezone.utc),
                                          datetime(1999, 1, 1, tzinfo=timezone.utc), None,
                                          datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc),
                                          datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)]


@postgres_only
def test_aware_times_are_sent_in_binary_as_their_instants_whatever_the_session_zone(engine, monkeypatch):
    frame = TIMES.assign(at=TIMES["at"].dt.tz_localize("Europe/Paris"))   # 0001-01-01 in Paris is 0000 in UTC
    frame = frame[frame["row_number"] != 4]
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'America/New_York'")
        _tables(conn, "by_binary", "by_csv", columns="at timestamp with time zone, n bigint")
        _in_binary(conn, "by_binary", frame, monkeypatch)
        _by_csv(conn, "by_csv", frame, monkeypatch)
        stored = _stored(conn, "by_binary")
        assert stored == _stored(conn, "by_csv")
    assert stored[0][1] == datetime(2026, 12, 3, 7, 0, 1, 500000, tzinfo=timezone.utc)


@postgres_only
def test_naive_times_into_a_timestamptz_are_sent_as_csv_in_a_session_not_in_utc(engine, monkeypatch):
    # The server reads CSV's naive text in the session's zone: the stream does not guess it.
    sent = []
    monkeypatch.setattr(bulk, "_csv", lambda frame, csv=bulk._csv: sent.append(len(frame)) or csv(frame))
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'Europe/Paris'")
        _tables(conn, "by_csv", columns="at timestamp with time zone, n bigint")
        bulk.bulk_insert(conn, "by_csv", TIMES.iloc[:2])
        stored = conn.execute(text("SELECT at AT TIME ZONE 'Europe/Paris', n FROM by_csv ORDER BY row_number")).all()
    assert sent == [2]
    assert [tuple(row) for row in stored] == [(datetime(2026, 12, 3, 8, 0, 1, 500000), 1), (datetime(1999, 1, 1), 2)]


@postgres_only
def test_allocations_as_a_run_writes_them_are_sent_in_binary(engine, monkeypatch):
    # app.reconcile._store's frame: its creation time naive (UTC, the run's now), its payment's day as text. Sent as
    # CSV before (the timestamptz): the 1M first run's engine allocations, 448k rows parsed from text by the server.
    now = datetime(2026, 12, 3, 14, 0, 0, 123456)
    frame = pd.DataFrame({"payment_id": ["P1", "P2"], "invoice_number": ["F1", "F2"], "payer_type": ["amo", "patient"],
                          "amount_cents": [1250, 300], "rule": ["rf", "text"]}).assign(
        created_at=now, payment_date=pd.Series(["2026-11-30", None], dtype=object))
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        _in_binary(conn, "allocation", frame, monkeypatch)
        stored = conn.execute(text("SELECT payment_id, amount_cents, created_at, payment_date FROM allocation "
                                   "ORDER BY id")).all()
    at = now.replace(tzinfo=timezone.utc)
    assert [tuple(row) for row in stored] == [("P1", 1250, at, date(2026, 11, 30)), ("P2", 300, at, None)]


@postgres_only
def test_dates_not_written_yyyy_mm_dd_are_sent_as_csv_which_the_server_reads(engine, monkeypatch):
    frame = pd.DataFrame({"row_number": [1, 2], "day": pd.Series(["2025-3-1", "2025-03-02"], dtype="str")})
    sent = []
    monkeypatch.setattr(bulk, "_csv", lambda frame, csv=bulk._csv: sent.append(len(frame)) or csv(frame))
    with engine.begin() as conn:
        _tables(conn, "by_csv")
        bulk.bulk_insert(conn, "by_csv", frame)
        assert [row[7] for row in _stored(conn, "by_csv")] == [date(2025, 3, 1), date(2025, 3, 2)]
    assert sent == [2]


@postgres_only
def test_a_nul_in_a_text_is_refused_as_before(engine):
    # The binary stream is not built (None); the CSV path refuses it too and the rows go one by one, which the
    # driver refuses: the same error as without binary COPY.
    frame = pd.DataFrame({"row_number": [1], "label": pd.Series(["a\x00b"], dtype="string[pyarrow]")})
    with engine.begin() as conn:
        _tables(conn, "with_nul")
        with pytest.raises(Exception, match="NUL"):
            bulk.bulk_insert(conn, "with_nul", frame)


@postgres_only
def test_a_temporary_table_made_again_with_other_types_is_sent_in_its_new_types(engine):
    # A permanent table's types are read once per connection; a staged (temporary) one's at each load.
    with engine.begin() as conn:
        bulk.stage(conn, "retyped", pd.DataFrame({"v": [1, 2]}), {"v": "int"})
        bulk.stage(conn, "retyped", pd.DataFrame({"v": ["2025-01-02", None]}), {"v": "date"})
        assert conn.exec_driver_sql("SELECT v FROM retyped ORDER BY v").scalars().all() == [date(2025, 1, 2), None]


@pytest.mark.parametrize("column, oid", [
    (pa.array([2 ** 31]), pgcopy.INT4), (pa.array([-2 ** 15 - 1]), pgcopy.INT2), (pa.array(["1"]), pgcopy.INT8),
    (pa.array([1]), pgcopy.TEXT), (pa.array(["a\x00"]), pgcopy.VARCHAR), (pa.array([1.5]), pgcopy.INT8),
    (pa.array(["2025-03-01T10:00"]), pgcopy.DATE), (pa.array(["0000-01-01"]), pgcopy.DATE),
    (pa.array([datetime(2025, 1, 1)]), pgcopy.DATE), (pa.array([True]), 1184), (pa.array([1]), None),
    (pa.array([2 ** 64 - 1], pa.uint64()), pgcopy.INT8),
])
def test_a_column_that_cannot_be_sent_as_its_target_type_gives_no_stream(column, oid):
    assert pgcopy.stream(pa.table({"c": column}), [oid]) is None


@pytest.mark.parametrize("column", [
    pa.array([datetime(2025, 1, 1)]),                                                    # naive, zone not UTC
    pa.array([1], pa.timestamp("ns", tz="UTC")),                                          # below the microsecond
    pa.array([-62_135_596_801], pa.timestamp("s", tz="UTC")),                             # before 0001-01-01
    pa.array([253_402_300_800_000], pa.timestamp("ms", tz="UTC")),                        # after 9999-12-31
])
def test_a_time_not_sent_as_csv_would_store_it_gives_no_stream(column):
    assert pgcopy.stream(pa.table({"c": column}), [pgcopy.TIMESTAMPTZ]) is None


def test_times_in_any_unit_give_the_microseconds_since_2000_of_their_instants():
    # 2000-01-01 00:00:01 UTC, written in seconds, milliseconds, microseconds, nanoseconds, aware or naive in UTC.
    second = b"\x00\x01\x00\x00\x00\x08" + (1_000_000).to_bytes(8, "big")
    for unit, per_second in (("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)):
        for zone in ("UTC", None):
            values = pa.array([(946_684_800 + 1) * per_second], pa.timestamp(unit, tz=zone))
            parts = pgcopy.stream(pa.table({"c": values}), [pgcopy.TIMESTAMPTZ], naive_utc=True)
            assert b"".join(map(bytes, parts)) == pgcopy.HEADER + second + pgcopy.TRAILER


def test_the_stream_of_no_rows_is_the_header_and_the_trailer():
    parts = pgcopy.stream(pa.table({"c": pa.array([], pa.int64())}), [pgcopy.INT8])
    assert b"".join(bytes(p) for p in parts) == pgcopy.HEADER + b"\xff\xff"


def test_columns_in_several_chunks_or_sliced_give_the_stream_of_the_same_rows_whole():
    whole = pa.table({"n": [1, None, 3, 4], "t": ["a", None, "ccc", "é"]})
    pieces = pa.concat_tables([whole.slice(0, 1), whole.slice(1, 0), whole.slice(1, 3)])
    types = [pgcopy.INT8, pgcopy.TEXT]
    assert b"".join(map(bytes, pgcopy.stream(pieces, types))) == b"".join(map(bytes, pgcopy.stream(whole, types)))
    tail = b"".join(map(bytes, pgcopy.stream(whole.slice(2), types)))
    assert tail == b"".join(map(bytes, pgcopy.stream(pa.table({"n": [3, 4], "t": ["ccc", "é"]}), types)))


_texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@st.composite
def _frames(draw):
    rows = draw(st.integers(0, 40))
    def column(values, missing=True):
        return draw(st.lists(st.one_of(st.none(), values) if missing else values, min_size=rows, max_size=rows))
    return pd.DataFrame({
        "row_number": range(rows),
        "n": pd.Series(column(st.integers(-2 ** 63, 2 ** 63 - 1)), dtype="Int64"),
        "k": pd.Series(column(st.integers(-2 ** 31, 2 ** 31 - 1), missing=False), dtype="int64"),
        "s": pd.Series(column(st.integers(-2 ** 15, 2 ** 15 - 1)), dtype="Int64"),
        "yes": pd.Series(column(st.booleans()), dtype=object),
        "label": pd.Series(column(_texts), dtype="string[pyarrow]"),
        "name": pd.Series(column(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                         max_size=40)), dtype=object),
        "day": pd.Series([None if d is None else d.isoformat() for d in column(st.dates())], dtype=object),
    })


@postgres_only
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frame=_frames())
def test_random_frames_are_stored_by_binary_copy_as_by_csv(engine, monkeypatch, frame):
    with engine.begin() as conn:
        _tables(conn, "by_binary", "by_csv")
        _in_binary(conn, "by_binary", frame, monkeypatch)
        _by_csv(conn, "by_csv", frame, monkeypatch)
        assert _stored(conn, "by_binary") == _stored(conn, "by_csv")
        assert conn.exec_driver_sql("SELECT count(*) FROM by_binary").scalar() == len(frame)
