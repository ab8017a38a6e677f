"""Shared by the benchmarks on PostgreSQL: a throwaway server (Debian's binaries, as the test setup starts one),
a fresh database on it or on a given server, and the server's CPU time read from /proc (its processes are not
this one's children, so getrusage does not count them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PG_BIN = Path("/usr/lib/postgresql/15/bin")

# The benchmark's own server is set as README's "Deployment" section advises a clinic group's server (durable:
# fsync and full-page writes stay on), scaled to the 2-core benchmark machine.
BULK_SETTINGS = {
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "temp_buffers": "256MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_compression": "lz4",
    "effective_cache_size": "4GB",
    "random_page_cost": "1.1",
    "jit": "off",
}
# Where the server's time goes: PG_BENCH_LOG_MS=200 logs each statement that took 200 ms or more, with its duration,
# and PG_BENCH_KEEP_LOG=path keeps the throwaway server's log there when it is removed (session 11 found the 1M run's
# biggest statements so: the payment COPYs, settle's CTAS, the explicit pass's inserts, the index builds).
if os.environ.get("PG_BENCH_LOG_MS"):
    BULK_SETTINGS["log_min_duration_statement"] = os.environ["PG_BENCH_LOG_MS"]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def throwaway_server(settings: dict[str, str] | None = None) -> Iterator[str]:
    """A PostgreSQL server in a temporary folder, for the block: its URL (database `postgres`)."""
    folder = Path(tempfile.mkdtemp(prefix="recouvrement-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    options = " ".join(f"-c {name}={value}" for name, value in (settings or {}).items())
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--encoding=UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                                 f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 {options}", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        if os.environ.get("PG_BENCH_KEEP_LOG"):
            shutil.copy(folder / "log", os.environ["PG_BENCH_KEEP_LOG"])
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """Database `name` on the server of `server_url`, dropped and created empty: its URL."""
    from sqlalchemy import create_engine, make_url

    from recouvrement.db.session import database_url
    url = make_url(database_url(server_url))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()     # fields from the 3rd (state) on; the name may hold spaces


class ServerCpu:
    """CPU seconds (user + system) of a local PostgreSQL server: its postmaster, with what its ended children
    (backends, parallel workers, autovacuum) used, plus its live children. None when the server is not on this
    machine (or /proc is not readable)."""

    def __init__(self, engine) -> None:
        with engine.connect() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            fields = _stat(backend)
        self.postmaster = int(fields[1]) if fields else None

    def seconds(self) -> float | None:
        if self.postmaster is None:
            return None
        own = _stat(self.postmaster)
        if own is None:
            return None
        ticks = sum(int(v) for v in own[11:15])              # utime, stime, cutime, cstime
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields and fields[1] == str(self.postmaster):
                    ticks += sum(int(v) for v in fields[11:15])
        return ticks / _TICK

    def by_process(self) -> dict[str, float]:
        """CPU seconds so far by kind of server process: each live child by its title (the backends together as
        "backends"), and "ended children" (backends gone, autovacuum workers, parallel workers: counted in the
        postmaster's cutime/cstime) with the postmaster's own."""
        spent: dict[str, float] = {}
        own = _stat(self.postmaster) if self.postmaster is not None else None
        if own is None:
            return spent
        spent["postmaster and ended children"] = sum(int(v) for v in own[11:15]) / _TICK
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields and fields[1] == str(self.postmaster):
                    try:
                        title = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")[0].decode()
                    except OSError:
                        continue
                    kind = title.removeprefix("postgres: ").strip()
                    kind = kind if kind in ("walwriter", "checkpointer", "background writer", "logical replication "
                                            "launcher", "autovacuum launcher") else "backends"
                    spent[kind] = spent.get(kind, 0.0) + sum(int(v) for v in fields[11:15]) / _TICK
        return spent
