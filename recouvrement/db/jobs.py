"""The scheduler's job store, as APScheduler keeps it in the project's database: what it remembers of a job."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text


def stored_next_run(db_url: str, table: str, job_id: str, schema: str = "") -> float | None:
    """The next fire time (POSIX seconds) the job store kept for the job, or None (no table, no job, no time);
    `schema`: the clinic's (a name checked by the settings), where its scheduler keeps its job."""
    engine = create_engine(db_url)
    try:
        if not inspect(engine).has_table(table, schema=schema or None):
            return None
        qualified = f"{schema}.{table}" if schema else table
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT next_run_time FROM {qualified} WHERE id = :i"),
                                {"i": job_id}).scalar_one_or_none()
    finally:
        engine.dispose()
