"""PostgreSQL's binary COPY stream of a table's rows, built by Arrow's and numpy's kernels (bytes only, no SQL).

The server reads each value in its binary form, where it parses CSV text into int8, date and bool: the 1M imports'
server CPU is mostly that parse. The stream (PostgreSQL's "Binary Format" of COPY): the signature
``PGCOPY\\n\\377\\r\\n\\0``, flags and header extension (int32 0 each); each row an int16 field count, then each field
an int32 length (-1: NULL) and its value, big-endian; the trailer int16 -1.

Each column becomes one Arrow array of its fields (length and value together): the fixed-width values as numpy
records, the text as a 4-byte length array joined to the UTF-8 bytes; Arrow's binary_join_element_wise then lays the
rows out, field after field, in one buffer. No Python runs per row or per cell.

A value must be sent as exactly the target column's type: `stream` is given each column's type (its pg_type oid)
and returns None where it cannot send a column so (a type not handled here, a number out of the column's range, text
into a number or a number into text, a date not written yyyy-mm-dd, a NUL in a text, a time that is not sent as CSV
would store it: see _micros): the caller then sends CSV, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

# pg_type oids of the types sent in binary
BOOL, INT8, INT2, INT4, TEXT, VARCHAR, DATE, TIMESTAMPTZ = 16, 20, 21, 23, 25, 1043, 1082, 1184
_WHOLE: dict[int, np.dtype] = {INT8: np.dtype(">i8"), INT4: np.dtype(">i4"), INT2: np.dtype(">i2")}

_EPOCH_2000 = (date(2000, 1, 1) - date(1970, 1, 1)).days
# The dates both Arrow and PostgreSQL read from yyyy-mm-dd (year 0000 is no year to PostgreSQL's ISO input).
_FIRST_DAY = (date(1, 1, 1) - date(1970, 1, 1)).days
_LAST_DAY = (date(9999, 12, 31) - date(1970, 1, 1)).days
# A timestamptz is sent as microseconds since 2000-01-01 00:00 UTC; the instants sent, those of 0001-01-01 to
# 9999-12-31 (UTC), in seconds since 1970 (what Python's datetime holds; PostgreSQL's range is wider).
_MICROS_2000 = _EPOCH_2000 * 86_400 * 1_000_000
_FIRST_SECOND, _END_SECOND = _FIRST_DAY * 86_400, (_LAST_DAY + 1) * 86_400
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def stream(table: pa.Table, types: Sequence[int | None], naive_utc: bool = False) -> list[pa.Buffer] | None:
    """The binary COPY stream of `table`'s rows into columns of `types` (pg_type oids, in the table's column order),
    as buffers to send one after the other; None when a column cannot be sent in binary (see the module's doc).
    `naive_utc`: the session's time zone is UTC, in which the server reads a naive time's text (_micros).

    >>> rows = pa.table({"n": [1, None], "name": ["é", None], "on": ["2000-01-02", None]})
    >>> b"".join(stream(rows, [INT8, TEXT, DATE])).hex(" ")  # doctest: +NORMALIZE_WHITESPACE
    '50 47 43 4f 50 59 0a ff 0d 0a 00 00 00 00 00 00 00 00 00
     00 03 00 00 00 08 00 00 00 00 00 00 00 01 00 00 00 02 c3 a9 00 00 00 04 00 00 00 01
     00 03 ff ff ff ff ff ff ff ff ff ff ff ff
     ff ff'
    >>> stream(pa.table({"n": [2 ** 40]}), [INT4]) is None      # out of an int4's range
    True
    """
    if len(types) != table.num_columns or table.num_columns > 32_767:
        return None
    if not table.num_rows:
        return [pa.py_buffer(HEADER + TRAILER)]
    fields: list[pa.Array] = []
    for column, oid in zip(table.columns, types):
        field = _fields(column.combine_chunks(), oid, naive_utc)
        if field is None:
            return None
        fields += field
    count = pa.scalar(table.num_columns.to_bytes(2, "big"), pa.large_binary())
    rows = pc.binary_join_element_wise(count, *fields, pa.scalar(b"", pa.large_binary()))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=len(rows) + 1, offset=rows.offset * 8)
    data = rows.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    return [pa.py_buffer(HEADER), data, pa.py_buffer(TRAILER)]


def _fields(values: pa.Array, oid: int | None, naive_utc: bool = False) -> list[pa.Array] | None:
    """One column's fields (length and value, or -1 alone for NULL) as large_binary arrays whose elements, joined
    row by row, are the fields; None if the column cannot be sent as type `oid`."""
    if pa.types.is_null(values.type):
        return [_fixed(np.zeros(len(values), dtype=">i1"), np.zeros(len(values), dtype=bool))]
    valid = None if not values.null_count else pc.is_valid(values).to_numpy(zero_copy_only=False)
    if oid in _WHOLE and pa.types.is_integer(values.type):
        numbers = _whole(values, _WHOLE[oid])
        return None if numbers is None else [_fixed(numbers, valid)]
    if oid == BOOL and pa.types.is_boolean(values.type):
        return [_fixed(pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(">i1"), valid)]
    if oid in (TEXT, VARCHAR) and (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return _text(values.cast(pa.large_string()), valid)
    if oid == DATE:
        days = _days(values)
        return None if days is None else [_fixed((days - _EPOCH_2000).astype(">i4"), valid)]
    if oid == TIMESTAMPTZ and pa.types.is_timestamp(values.type):
        micros = _micros(values, naive_utc)
        return None if micros is None else [_fixed((micros - _MICROS_2000).astype(">i8"), valid)]
    return None


def _whole(values: pa.Array, dtype: np.dtype) -> np.ndarray | None:
    """Whole numbers as big-endian int8, int4 or int2 (0 where NULL): None when one is out of the column's range."""
    if values.type == pa.uint64() and (pc.max(values).as_py() or 0) > np.iinfo(np.int64).max:
        return None
    numbers = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    limits = np.iinfo(dtype)
    if len(numbers) and (numbers.min() < limits.min or numbers.max() > limits.max):
        return None
    return numbers.astype(dtype)


def _days(values: pa.Array) -> np.ndarray | None:
    """Dates as days since 1970-01-01 (int32, 0 where NULL): from Arrow dates, or from text written yyyy-mm-dd
    (Arrow's cast reads only that: 2025-3-1, a time or a space fail it); None otherwise, or out of 0001-9999."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        if values.null_count < len(values) and not pc.all(pc.equal(pc.utf8_length(values), 10)).as_py():
            return None
        try:
            values = values.cast(pa.date32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    elif pa.types.is_date64(values.type):
        values = values.cast(pa.date32())
    elif not pa.types.is_date32(values.type):
        return None
    days = pc.fill_null(values.cast(pa.int32()), _EPOCH_2000).to_numpy(zero_copy_only=False)
    if len(days) and (days.min() < _FIRST_DAY or days.max() > _LAST_DAY):
        return None
    return days


def _micros(values: pa.Array, naive_utc: bool) -> np.ndarray | None:
    """Times (an Arrow timestamp) as microseconds since 1970-01-01 UTC (0 where NULL), the instants COPY's CSV path
    stores in a timestamptz: an aware time's own (CSV writes it with its offset); a naive one's only when the session's
    zone is UTC (`naive_utc`: CSV's text, without offset, is read in the session's zone). None otherwise, or when one
    has a part below the microsecond (the server rounds CSV's) or lies outside 0001-01-01 to 9999-12-31."""
    if values.type.tz is None and not naive_utc:
        return None
    per_second = _PER_SECOND[values.type.unit]
    numbers = pc.fill_null(values.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    if len(numbers) and (int(numbers.min()) < _FIRST_SECOND * per_second
                         or int(numbers.max()) >= _END_SECOND * per_second):
        return None
    if per_second > 1_000_000:
        if (numbers % (per_second // 1_000_000)).any():
            return None
        return numbers // (per_second // 1_000_000)
    return numbers * (1_000_000 // per_second)


def _fixed(values: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """Fixed-width big-endian values as fields: numpy records of (int32 length, value), the value's bytes dropped
    from the NULL ones (valid: False) and their length set to -1."""
    width = values.dtype.itemsize
    records = np.empty(len(values), dtype=np.dtype([("length", ">i4"), ("value", values.dtype)]))
    records["length"] = width
    records["value"] = values
    if valid is None:
        data = records.view(np.uint8)
        offsets = np.arange(len(values) + 1, dtype=np.int64) * (4 + width)
    else:
        records["length"][~valid] = -1
        keep = np.ones((len(values), 4 + width), dtype=bool)
        keep[~valid, 4:] = False
        data = records.view(np.uint8).reshape(len(values), 4 + width)[keep]
        offsets = _offsets(np.where(valid, 4 + width, 4))
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(values), [None, pa.py_buffer(offsets),
                                                                             pa.py_buffer(data)])


def _text(values: pa.Array, valid: np.ndarray | None) -> list[pa.Array] | None:
    """Text as fields: each value's length (-1: NULL, where valid is False), then its UTF-8 bytes, as two arrays
    (joined with the rest of the row, the bytes are copied once). None when one holds a NUL (no PostgreSQL text
    does: CSV's path refuses it as before)."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64, count=len(values) + 1, offset=values.offset * 8)
    data = values.buffers()[2]
    if data is not None and not np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]].all():
        return None
    lengths = np.diff(offsets)
    if len(lengths) and lengths.max() >= 2 ** 31:
        return None
    if valid is not None:
        lengths[~valid] = -1
    prefixes = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(values), [
        None, pa.py_buffer(np.arange(len(values) + 1, dtype=np.int64) * 4), pa.py_buffer(lengths.astype(">i4"))])
    return [prefixes, pc.fill_null(values, "").cast(pa.large_binary())]


def _offsets(sizes: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets
