"""The store speaks UTC on PostgreSQL whatever the server's time zone: every time it writes is UTC, and a naive one
(sent by COPY or as a parameter: the explicit pass's created_at) is read in the session's zone."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, make_url, text

from recouvrement.db.session import open_engine
from tests.conftest import _use_postgres

pytestmark = pytest.mark.skipif(not _use_postgres(), reason="PostgreSQL's session time zone")


def test_a_server_in_paris_time_still_stores_the_naive_utc_times_the_store_writes_as_utc(db_url):
    plain = create_engine(db_url)
    with plain.begin() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE {make_url(db_url).database} SET TimeZone = 'Europe/Paris'")
    plain.dispose()
    with plain.connect() as conn:                # what a new connection gets from this server without our options
        assert conn.exec_driver_sql("SHOW TimeZone").scalar_one() == "Europe/Paris"
    plain.dispose()
    engine = open_engine(db_url, migrate=False)
    try:
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar_one() == "UTC"
            conn.exec_driver_sql("CREATE TEMPORARY TABLE moment (at timestamptz)")
            conn.execute(text("INSERT INTO moment VALUES (:at)"), {"at": datetime(2026, 7, 1, 22, 30)})   # naive UTC
            stored = conn.exec_driver_sql("SELECT at FROM moment").scalar_one()
            epoch = conn.exec_driver_sql("SELECT extract(epoch FROM at)::bigint FROM moment").scalar_one()
        assert stored == datetime(2026, 7, 1, 22, 30, tzinfo=timezone.utc)
        assert epoch == int(datetime(2026, 7, 1, 22, 30, tzinfo=timezone.utc).timestamp())
    finally:
        engine.dispose()


def test_a_clinics_schema_and_the_urls_own_options_are_kept_beside_the_utc_time_zone(db_url):
    url = db_url + ("&" if "?" in db_url else "?") + "options=-c%20application_name%3Dnuit"
    engine = open_engine(url, migrate=False, schema="clinique_est")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar_one() == "UTC"
            assert conn.exec_driver_sql("SHOW application_name").scalar_one() == "nuit"
            assert conn.exec_driver_sql("SHOW search_path").scalar_one() == "clinique_est"
    finally:
        engine.dispose()
