"""A run's private folders in the output folder: a dead run's are found, a live run's left alone, and a folder left
under its making name by a run killed in the instant between making and renaming it is removed."""

from __future__ import annotations

import fcntl
import os
import time

from recouvrement.render.files import OWNER, UNBORN_AFTER_SECONDS, abandoned_private_folders, open_private_folder

PREFIX = ".remind-"


def _unborn(parent, name: str, *, age: float, owner: bool = True):
    """A folder under its making name, `age` seconds old, with its lock file or none."""
    path = parent / f"{PREFIX}new-{name}"
    path.mkdir(parents=True)
    if owner:
        (path / OWNER).touch()
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_folders_left_under_their_making_name_by_a_killed_run_are_removed(tmp_path):
    old = UNBORN_AFTER_SECONDS + 5
    locked = _unborn(tmp_path, "locked", age=old)
    dead, no_lock, young = (_unborn(tmp_path, "dead", age=old), _unborn(tmp_path, "nolock", age=old, owner=False),
                            _unborn(tmp_path, "young", age=1))
    holder = os.open(locked / OWNER, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)      # its run, between taking the lock and renaming the folder
    try:
        assert list(abandoned_private_folders(tmp_path, PREFIX)) == []
        assert not dead.exists() and not no_lock.exists()
        assert young.exists(), "a folder made an instant ago may be a live run's, about to be renamed"
        assert locked.exists(), "a folder whose lock is held is a live run's"
    finally:
        os.close(holder)


def test_a_dead_runs_folder_is_given_and_a_live_runs_is_not(tmp_path):
    dead, alive = open_private_folder(tmp_path, PREFIX), open_private_folder(tmp_path, PREFIX)
    dead_path = dead.path
    os.close(dead.lock)                    # its process gone: the lock goes with it
    try:
        found = list(abandoned_private_folders(tmp_path, PREFIX))
        assert [f.path for f in found] == [dead_path]
        for folder in found:
            folder.close(remove=True)
        assert not dead_path.exists() and alive.path.exists()
    finally:
        alive.close(remove=True)
