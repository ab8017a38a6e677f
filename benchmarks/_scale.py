"""Shared by the benchmarks: the scale data set (generated once into a folder) and the figures printed."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv")


def ensure_scale_data(folder: Path, invoices: int) -> None:
    marker = folder / f".complete-{invoices}"
    if marker.exists():
        return
    print(f"generating the {invoices:,}-invoice scale data set in {folder} …", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tools.samples", "--out", str(folder.resolve()), "--invoices", str(invoices)],
                   cwd=Path(__file__).resolve().parents[1], check=True)
    marker.write_text("ok")
    print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemorySampler:
    """This process and its child processes (the imports' read-ahead), sampled every `every` seconds from /proc:
    the peak of their summed resident memory, and the largest child's own peak (its VmHWM). getrusage cannot
    say it: a child started by fork and exec reports the parent's memory at the fork as its peak.

    A child caught between its fork and its exec (multiprocessing's "spawn" forks, or vforks, then execs Python)
    is not counted: until the exec it runs in our memory (vfork) or a copy-on-write view of it, and /proc shows our
    resident size and our peak as its own. Counted, it doubled us once in a while (a 1M run printed 2,271 MB
    together and a child of 1,367 MB: our own size when the pool started; the child's real peak is ~650 MB). It
    is told by its command line, still ours until the exec."""

    def __init__(self, every: float = 0.02) -> None:
        import threading

        self.every, self.together_kb, self.child_kb = every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _status(pid: str) -> dict[str, int]:
        try:
            with open(f"/proc/{pid}/status") as handle:
                return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in handle)
                        if k in ("VmRSS", "VmHWM")}
        except (OSError, ValueError):
            return {}

    def _children(self) -> set[str]:
        found: set[str] = set()
        for task in Path("/proc/self/task").iterdir():
            try:
                found.update((task / "children").read_text().split())
            except OSError:
                pass
        return found

    @staticmethod
    def _command(pid: str) -> bytes | None:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def _run(self) -> None:
        ours = self._command("self")
        while not self._stop.wait(self.every):
            total = self._status("self").get("VmRSS", 0)
            for pid in self._children():
                if self._command(pid) in (ours, None):      # not yet exec'd: our own pages (or gone)
                    continue
                status = self._status(pid)
                total += status.get("VmRSS", 0)
                self.child_kb = max(self.child_kb, status.get("VmHWM", 0))
            self.together_kb = max(self.together_kb, total)

    def stop(self) -> tuple[float, float]:
        """(MB: the peak of this process and its children together, the largest child's own peak)."""
        self._stop.set()
        self._thread.join()
        return self.together_kb / 1024, self.child_kb / 1024


def bare_parse_seconds(folder: Path) -> float:
    """The floor: pyarrow alone parsing the same CSV files (all columns as text, as the importers read them), in a
    process kept out of transparent huge pages as the imports keep theirs (db.session.without_huge_pages): with
    them, the kernel's zeroing of mimalloc's huge pages doubled the floor on this machine (2.7-3.5 s wall for
    1.3-1.7), and the ratio to it looked better than it was."""
    import pyarrow.csv as pacsv

    from recouvrement.db.session import without_huge_pages
    without_huge_pages()

    started = time.perf_counter()
    for name in FILES:
        path = folder / name
        with open(path, "rb") as handle:
            head = handle.readline().decode("utf-8", "replace")
        delimiter = max(";,\t", key=head.count)
        encoding = "cp1252" if name == "invoices.csv" else "utf8"
        header = [c.strip().lstrip("\ufeff") for c in head.split(delimiter)]
        pacsv.read_csv(path, read_options=pacsv.ReadOptions(encoding=encoding),
                       parse_options=pacsv.ParseOptions(delimiter=delimiter),
                       convert_options=pacsv.ConvertOptions(column_types={c: "string" for c in header}))
    return time.perf_counter() - started


def arguments(default_db: str, postgresql: bool = False):
    """The benchmarks' shared options: size of the data set, where it lives, the SQLite file to use (and, with
    `postgresql`, --postgresql [URL]: PostgreSQL instead, a throwaway server unless a URL is given)."""
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-scale"))
    parser.add_argument("--db", type=Path, default=Path(default_db))
    if postgresql:
        parser.add_argument("--postgresql", nargs="?", const="throwaway", default=None, metavar="URL",
                            help="run on PostgreSQL: a throwaway server, or the server of URL")
    return parser.parse_args()


def fresh_database(args, keep: bool = False):
    """A new, empty SQLite database (and the settings to import into it); with `keep`, the database already
    at --db, as it is."""
    from recouvrement.audit import seal_engine, settings_seal
    from recouvrement.config import Audit, Privacy, Settings
    from recouvrement.db.session import open_engine
    for suffix in ("", "-wal", "-shm") if not keep else ():
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    settings = Settings(privacy=Privacy(nir_key_file=args.data / "nir.key"),
                        audit=Audit(args.data / "audit.key", Path(f"{args.db}.audit-checkpoint")))
    return seal_engine(open_engine(f"sqlite:///{args.db}"), settings_seal(settings)), settings


def import_all(engine, settings, folder: Path, line) -> int:
    """Import every scale file, printing a line per file through `line(name, report, seconds)`; the rows read."""
    from recouvrement.app.imports import import_file
    rows = 0
    for name in FILES:
        started = time.perf_counter()
        report = import_file(engine, folder / name, settings)
        rows += report.rows_read
        line(name, report, time.perf_counter() - started)
    return rows
