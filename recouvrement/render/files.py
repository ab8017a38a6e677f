"""Writing files: atomically, and every CSV through the one safe writer (`render.csvfile`).

A CSV is built from whitelisted columns, its text cells made inert in a spreadsheet, its free-text
cells that come from outside (a bank transfer's label, a payer's name: they may carry what a patient
typed, "séance kiné") masked when the scanner flags their row, then scanned whole and refused if
anything is still found.

A run's letters are written first into its private folder (`open_private_folder`), inside the output folder so
that each file is then moved into place by one rename, once the letters are recorded.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from recouvrement.render.csvfile import PLAIN, Dialect, csv_document


def write_atomically(path: Path, data: str | bytes) -> None:
    """The file written whole or not at all: into a hidden `.<name>.<unique>.part` beside it, then renamed over
    it. The part's name is this writer's own, so two processes writing the same file at once (two runs of a day
    both writing its manifest) never rename each other's part: the last rename wins, each file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def lock_beside(path: Path, *, wait: bool = True) -> int | None:
    """An exclusive lock (flock) on the hidden `.<name>.lock` beside `path`, held while the descriptor is open (a
    killed process lets it go): the descriptor, or None when another process holds it and `wait` is False. Whoever
    makes `path` under the lock makes it before letting go, and looks whether it exists once the lock is taken; so
    the lock file may be removed (`unlock_beside`) once `path` is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _take_lock(path.with_name(f".{path.name}.lock"), wait=wait)


def _take_lock(file: Path, *, wait: bool, create: bool = True) -> int | None:
    """An exclusive flock on `file` (made when `create`): its open descriptor, or None when another process holds
    it and `wait` is False. OSError when the file cannot be opened."""
    lock = os.open(file, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return None
    return lock


def unlock_beside(path: Path, lock: int) -> None:
    """The lock of `lock_beside` let go, its file removed when `path` was made (nobody needs it any more)."""
    try:
        if path.exists():
            path.with_name(f".{path.name}.lock").unlink(missing_ok=True)
    finally:
        os.close(lock)


OWNER = ".owner"   # in a private folder: locked (flock) by its run as long as the run lives


@dataclass(frozen=True)
class PrivateFolder:
    """A run's own folder inside the output folder, locked by it (the lock goes with the process, also when it is
    killed): a leftover whose lock can be taken is a dead run's."""
    path: Path
    lock: int   # the open, locked descriptor of path / OWNER

    def close(self, *, remove: bool) -> None:
        """The lock released; the folder and whatever is left in it removed first when `remove`."""
        try:
            if remove:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(self.lock)


def open_private_folder(parent: Path, prefix: str) -> PrivateFolder:
    """A new folder `<prefix>run-…` in `parent`, locked. Made under another name and renamed once locked, so that
    `abandoned_private_folders` never sees it unlocked."""
    parent.mkdir(parents=True, exist_ok=True)
    making = Path(tempfile.mkdtemp(prefix=f"{prefix}new-", dir=parent))
    lock = _take_lock(making / OWNER, wait=True)
    assert lock is not None      # nobody else knows the folder yet: the lock is taken at once
    path = parent / f"{prefix}run-{making.name.removeprefix(f'{prefix}new-')}"
    os.rename(making, path)
    return PrivateFolder(path, lock)


# A folder still under its making name (`<prefix>new-…`) lives for the instant between its making and its rename:
# one older than this, whose lock is free or never made, is a run's killed in that instant. It holds no letter.
UNBORN_AFTER_SECONDS = 60.0


def abandoned_private_folders(parent: Path, prefix: str) -> Iterator[PrivateFolder]:
    """Each private folder in `parent` whose run is gone (killed, or stopped by an error after recording), locked now
    by the caller, who moves into place what it should and closes it. Folders left under their making name by a run
    killed before it renamed one are removed on the way (they never hold a letter)."""
    _remove_unborn(parent, prefix)
    for path in sorted(parent.glob(f"{prefix}run-*")):
        try:
            lock = _take_lock(path / OWNER, wait=False, create=False)
        except OSError:            # removed meanwhile by another run that recovered it
            continue
        if lock is None:           # its run is alive
            continue
        if not path.exists():      # recovered and removed by another run between our open and our lock
            os.close(lock)
            continue
        yield PrivateFolder(path, lock)


def _remove_unborn(parent: Path, prefix: str) -> None:
    """The `<prefix>new-…` folders of runs killed between making and renaming them (older than UNBORN_AFTER_SECONDS,
    their lock free or never made) removed."""
    now = time.time()
    for path in parent.glob(f"{prefix}new-*"):
        try:
            if now - path.stat().st_mtime < UNBORN_AFTER_SECONDS:
                continue
            lock = _take_lock(path / OWNER, wait=False, create=False)
        except FileNotFoundError:
            if not path.exists():     # renamed or removed meanwhile
                continue
            lock = -1                 # killed before its lock was made
        if lock is None:              # its run holds it: alive (it renames the folder in an instant)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            if lock >= 0:
                os.close(lock)


def waiting_in_private_folder(path: Path) -> Path | None:
    """Where `path` waits, whole, in a private folder beside it (`<prefix>run-…`: a run killed or stopped after
    recording its letters, before moving them into place; the next run moves them): that file, or None."""
    for folder in sorted(path.parent.glob(".*run-*")):
        if (folder / OWNER).exists() and (folder / path.name).is_file():
            return folder / path.name
    return None


def move_into_place(private: Path, parent: Path, names: Sequence[str]) -> None:
    """The files moved from the private folder into `parent`, in the given order (a file already moved is
    skipped: a recovery finishes a move cut half-way)."""
    source, target = f"{private}{os.sep}", f"{parent}{os.sep}"   # strings: a night moves tens of thousands
    for name in names:
        try:
            os.replace(source + name, target + name)
        except FileNotFoundError:
            continue


def write_checked_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence], free_text: Sequence[str] = (), *,
                      dialect: Dialect = PLAIN) -> int:
    """Write the CSV atomically (see render.csvfile for what it guarantees); the number of rows."""
    write_atomically(path, csv_document(path.name, header, rows, dialect=dialect, free_text=free_text))
    return len(rows)


REJECTS_HEADER = ["file", "line", "field", "reason"]


def rejects_document(name: str, rejects: Iterable[tuple]) -> bytes:
    """The refused rows (file, line, field, reason) as CSV; file names and reasons echo outside text,
    so they are masked on a row where the scanner finds anything medical."""
    rows = [[file, line if isinstance(line, int) else str(line or ""), field or "", reason]
            for file, line, field, reason in rejects]
    return csv_document(name, REJECTS_HEADER, rows, free_text=("file", "reason"))


def write_rejects(path: Path, rejects: Iterable[tuple]) -> int:
    """The refused rows as CSV, written atomically (an import's rejects file, `<file>.rejects.csv` of the
    nightly run)."""
    rows = list(rejects)
    write_atomically(path, rejects_document(path.name, rows))
    return len(rows)
