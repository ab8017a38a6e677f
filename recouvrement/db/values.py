"""The one place a stored value becomes a Python value: DATE columns as `datetime.date`, times as UTC.

SQLite hands dates and times back as ISO text, PostgreSQL as `date` / aware `datetime`; every read of the
store passes them through these converters, so that nothing past the store compares ISO strings.

>>> as_date("2025-03-01"), as_date(None)
(datetime.date(2025, 3, 1), None)
>>> as_date(datetime(2025, 3, 1, 12, 30))
datetime.date(2025, 3, 1)
>>> as_utc("2025-03-01 12:30:00")
datetime.datetime(2025, 3, 1, 12, 30, tzinfo=datetime.timezone.utc)
>>> as_naive_utc("2025-03-01T13:30:00+01:00")
datetime.datetime(2025, 3, 1, 12, 30)
>>> is_iso_day("2025-03-01"), is_iso_day("01/03/2025"), is_iso_day("2025-03-01 12:30"), is_iso_day(None)
(True, False, False, False)
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any, overload


@overload
def as_date(value: date | str) -> date: ...
@overload
def as_date(value: None) -> None: ...
def as_date(value: object) -> date | None:
    """A DATE column's value as a date (None stays None)."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@overload
def as_utc(value: datetime | str) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: object) -> datetime | None:
    """A time column's value as an aware UTC datetime (a naive one is taken as UTC; None stays None)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.utcoffset() is None else moment.astimezone(timezone.utc)


@overload
def as_naive_utc(value: datetime | str) -> datetime: ...
@overload
def as_naive_utc(value: None) -> None: ...
def as_naive_utc(value: Any) -> datetime | None:
    """A time column's value as a naive UTC datetime (as the web session columns hold it)."""
    moment = as_utc(value)
    return None if moment is None else moment.replace(tzinfo=None)


def is_iso_day(value: object) -> bool:
    """Whether a stored day is text written yyyy-mm-dd (ten characters, digits where digits go), which compares as
    the days it names and whose digits make the integer yyyymmdd; the calendar is not checked (the store wrote it)."""
    return isinstance(value, str) and _ISO_DAY.fullmatch(value) is not None


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
