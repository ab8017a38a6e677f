"""How a command ends as a process: what it opened is closed by the command itself (the database's connections,
so SQLite folds its WAL back into the file), since the interpreter's end no longer walks the objects left
(cli.main freezes them as it starts: 0.25 s after a reminder run at 1M)."""

from __future__ import annotations

import os
import subprocess
import sys


def command_line(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RECOUVREMENT_CONFIG", "RECOUVREMENT_DB")}
    return subprocess.run([sys.executable, "-c", "from recouvrement.cli import main; main()", *args],
                          capture_output=True, text=True, env=env)


def test_a_command_closes_the_database_before_the_process_ends(tmp_path):
    database = tmp_path / "recouvrement.db"
    url = f"sqlite:///{database}"
    assert command_line("--db", url, "db", "upgrade").returncode == 0
    for args in (["balance", "--as-of", "2025-06-02"],
                 ["remind", "--as-of", "2025-06-02", "--out", str(tmp_path / "out"), "--dry-run"]):
        shown = command_line("--db", url, *args)
        assert shown.returncode == 0, shown.stderr
        assert sorted(p.name for p in tmp_path.glob("recouvrement.db*")) == ["recouvrement.db"], args


def test_the_interpreter_s_end_freezes_once_however_often_main_runs():
    script = ("import gc, io, sys, contextlib\n"
              "real = gc.freeze\n"
              "def counted():\n"
              "    print('frozen', file=sys.stderr)\n"
              "    real()\n"
              "gc.freeze = counted\n"
              "from recouvrement.cli import main\n"
              "sys.argv = ['recouvrement', '--help']\n"
              "for _ in range(3):\n"
              "    with contextlib.redirect_stdout(io.StringIO()):\n"
              "        main()\n"
              "print('ran', file=sys.stderr)\n")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    said = shown.stderr.split()     # a command's import also freezes what it imported (memory.no_cycle_collection)
    assert said[said.index("ran"):] == ["ran", "frozen"]
