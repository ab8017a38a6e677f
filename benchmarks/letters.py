"""N letters made by the real run: `run_remind` (app/remind.py, what `recouvrement remind` and the nightly run call)
on a SQLite database of N patients each owing one to three overdue invoices, every letter sent by post AND by
e-mail (the ladder's level 1 set to "both": the worst case, each letter gets its HTML with its QR code, its text,
its e-mail and its pages in the print batch, every one privacy-scanned).

Prints, for the run: wall and CPU time of each step of the main process, CPU time of each stage of the composing
workers (channels.compose: HTML, text, scans, e-mail, PDF layout, PDF scan), the total wall and CPU time (this
process and its children), letters per second, and the peak memory of the main process and of the largest
worker. The database is built first (import and reconcile), not counted.

    python benchmarks/letters.py --letters 10000        # the issue's size (go through flock /work/bench.lock)
    python benchmarks/letters.py --letters 1000 [--keep DIR]
Target on the 2-core machine (issue #16): 10,000 letters in under 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AS_OF = date(2026, 11, 23)       # a Monday, not a holiday
HEADER = ("invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;email;"
          "email_consent;phone;total_amount;amo_amount;amc_amount;patient_amount;amc_payer;coverage")
FIRST = ("Claire", "Jean-François", "Maëlle", "Éloïse", "Mamadou", "Zoé", "Hugo", "Inès")
LAST = ("Martin", "Lefèvre", "N'Diaye", "De La Fontaine", "Dufour", "Nguyen", "Moreau", "Garcia")


def invoices_csv(path: Path, letters: int) -> Path:
    """One patient per letter, owing 1 to 3 overdue shares (due 1-2 months before AS_OF), with an e-mail address
    and consent."""
    rows = [HEADER]
    for p in range(letters):
        for k in range(1 + p % 3):
            cents = 1500 + (p * 37 + k * 1013) % 20000
            amount = f"{cents // 100},{cents % 100:02d}"
            rows.append(f"F{p:07d}{k};{1 + k:02d}/09/2026;{1 + k:02d}/10/2026;P{p:06d};{LAST[p % 8]};{FIRST[p % 7]};"
                        f"{p % 90 + 1} rue des Lilas;75019;Paris;p{p}@example.org;oui;;{amount};0;0;{amount};;none")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def world(folder: Path, letters: int):
    """The database, settings and rules of the run: level 1 by post and e-mail."""
    from recouvrement.app.imports import import_file
    from recouvrement.app.reconcile import run_reconcile
    from recouvrement.audit import seal_engine, settings_seal
    from recouvrement.config import Audit, Creditor, Paths, Privacy, Settings
    from recouvrement.db.session import open_engine
    from recouvrement.rules import DEFAULT_RULES_DIR
    rules = folder / "rules"
    rules.mkdir()
    ladder = (DEFAULT_RULES_DIR / "ladder.toml").read_text(encoding="utf-8")
    head, _, tail = ladder.partition('template = "relance_1"')
    (rules / "ladder.toml").write_text(head + 'template = "relance_1"' + tail.replace('channel = "email"', 'channel = "both"', 1),
                                       encoding="utf-8")
    creditor = Creditor("Centre de santé des Lilas", "12 rue des Lilas", "75019", "Paris", "01 42 00 00 00",
                        "facturation@centre-lilas.example", "84512367800011", "FR7630004019250001234567876",
                        "BNPAFRPPXXX")
    settings = Settings(privacy=Privacy(nir_key_file=folder / "nir.key"), creditor=creditor,
                        audit=Audit(folder / "audit.key", folder / "audit-checkpoint"), paths=Paths(rules=rules))
    engine = seal_engine(open_engine(f"sqlite:///{folder / 'letters.db'}"), settings_seal(settings))
    import_file(engine, invoices_csv(folder / "invoices.csv", letters), settings)
    run_reconcile(engine)
    return engine, settings


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the workers, pdftotext, pdfunite)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, default=None, help="build and keep the run's folder there")
    args = parser.parse_args()
    from recouvrement.app.remind import run_remind
    n = args.letters
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="letters-", dir=args.keep)) if args.keep else Path(tempfile.mkdtemp())
    started = time.perf_counter()
    engine, settings = world(folder, n)
    print(f"database of {n} patients built in {time.perf_counter() - started:.1f} s (not counted)", flush=True)
    wall, cpu = time.perf_counter(), cpu_seconds()
    report = run_remind(engine, settings, AS_OF, folder / "out")
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    made = len(report.letters)
    assert made == n and not report.errors, (made, report.errors[:3])
    assert all(w.channel == "both" for w in report.letters)
    print(f"\n{made} letters (HTML + e-mail + print batch each), {len(list((folder / 'out').glob('*.eml')))} .eml, "
          f"batch {report.batch_pdf.stat().st_size / 1e6:.1f} MB, {max(last for _, last in report.pages.values())} pages")
    print("\nmain process               wall s     CPU s   CPU ms/letter")
    for name, seconds, used in report.stages:
        print(f"  {name:<24} {seconds:8.2f}  {used:8.2f}  {1000 * used / n:10.2f}")
    print("workers (CPU, overlapped)            CPU s   CPU ms/letter")
    for name, used in report.worker_cpu.items():
        print(f"  {name:<24}           {used:8.2f}  {1000 * used / n:10.2f}")
    print(f"{'total':<26} {wall:8.2f}  {cpu:8.2f}  {1000 * cpu / n:10.2f}   {n / wall:.1f} letters/s")
    print(f"CPU over 2 cores: {cpu / 2:.1f} s at best; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs (other work slows the wall time)")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: {own:.0f} MB (main process), {workers:.0f} MB (largest worker)")
    if not args.keep:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
