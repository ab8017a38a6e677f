"""Bulk loading and staging: executemany on SQLite, COPY on PostgreSQL, temporary staging tables."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import BigInteger, Column, Connection, Date, MetaData, String, Table, Text

_TYPES = {"int": BigInteger, "date": Date, "str": String, "text": Text}


def rows_of(frame: pd.DataFrame):
    """Plain Python tuples, with None for missing cells (drivers accept neither numpy types nor NA)."""
    for column in frame.columns[[pd.api.types.is_datetime64_any_dtype(t) for t in frame.dtypes]]:
        frame = frame.assign(**{column: frame[column].dt.strftime("%Y-%m-%d %H:%M:%S.%f")})
    return frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)


def bulk_insert(conn: Connection, table: str, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    columns = ", ".join(frame.columns)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(frame.columns))
        raw.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows_of(frame))
    else:
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows_of(frame):
                copy.write_row(row)


def stage(conn: Connection, name: str, frame: pd.DataFrame, types: dict[str, str]) -> str:
    """A temporary table `name` holding `frame`, typed as `types` says (int | date | str | text)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    table = Table(name, MetaData(), *(Column(c, _TYPES[types.get(c, "str")]) for c in frame.columns),
                  prefixes=["TEMPORARY"])
    table.create(conn)
    bulk_insert(conn, name, frame)
    conn.exec_driver_sql(f"ANALYZE {name}") if conn.dialect.name == "postgresql" else None
    return name
