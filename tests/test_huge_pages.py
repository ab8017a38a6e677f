"""db.session.without_huge_pages: a process that imports keeps its memory out of transparent huge pages, and so do
the processes it starts (the read-ahead child): Arrow's allocator asked for them, and the kernel's zeroing of 2 MiB
pages cost the 1M invoices file's parse seconds of CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.world import invoices_file

ROOT = Path(__file__).resolve().parent.parent

# Run in a process of its own, huge pages allowed again first (the test's process may have imported already, and
# its children keep that). It prints THP_enabled (the kernel's word for the process: 1, huge pages allowed; 0, not)
# before an import, after it, and in a child started after it as the read-ahead starts its child ("spawn": a new
# interpreter).
SCRIPT = """
import ctypes
import multiprocessing
import sys
from pathlib import Path

from recouvrement.app.imports import import_file
from recouvrement.audit import AuditSeal, seal_engine
from recouvrement.config import Privacy, Settings
from recouvrement.db.session import open_engine


def huge_pages_allowed():
    with open("/proc/self/status") as status:
        return next(line.split()[1] for line in status if line.startswith("THP_enabled:"))


if __name__ == "__main__":
    url, path, key, checkpoint = sys.argv[1:]
    ctypes.CDLL(None).prctl(41, 0, 0, 0, 0)      # PR_SET_THP_DISABLE, off
    before = huge_pages_allowed()
    engine = seal_engine(open_engine(url), AuditSeal(key.encode(), Path(checkpoint)))
    report = import_file(engine, Path(path), Settings(privacy=Privacy(nir_key_file=Path(path).parent / "nir.key")))
    engine.dispose()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        child = pool.apply(huge_pages_allowed)
    print(report.imported, before, huge_pages_allowed(), child)
"""


def _reports_huge_pages() -> bool:
    try:
        with open("/proc/self/status") as status:
            return any(line.startswith("THP_enabled:") for line in status)
    except OSError:
        return False


@pytest.mark.skipif(not _reports_huge_pages(), reason="the kernel does not say whether a process may use huge pages")
def test_an_import_keeps_its_process_and_its_children_out_of_huge_pages(db_url, audit_key, tmp_path):
    script = tmp_path / "import_and_tell.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), db_url, str(invoices_file(tmp_path)), audit_key.decode(),
                             str(tmp_path / "checkpoint")], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["4", "1", "0", "0"]
