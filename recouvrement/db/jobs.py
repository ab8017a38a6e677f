"""The scheduler's job store, as APScheduler keeps it in the project's database: what it remembers of a job."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text


def stored_next_run(db_url: str, table: str, job_id: str) -> float | None:
    """The next fire time (POSIX seconds) the job store kept for the job, or None (no table, no job, no time)."""
    engine = create_engine(db_url)
    try:
        if not inspect(engine).has_table(table):
            return None
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT next_run_time FROM {table} WHERE id = :i"),
                                {"i": job_id}).scalar_one_or_none()
    finally:
        engine.dispose()
