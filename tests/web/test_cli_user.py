"""`recouvrement user add` creates the first user as a person runs it: a real process, one line, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess

from recouvrement.app.users import authenticate


def run(db_url, *args, stdin: str, cwd):
    env = {**os.environ}
    env.pop("RECOUVREMENT_CONFIG", None)
    result = subprocess.run([shutil.which("recouvrement"), "--db", db_url, *args], input=stdin, cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_user_add_creates_a_user_who_can_log_in(engine, db_url, tmp_path):
    result = run(db_url, "user", "add", "marie", "--role", "staff", "--password-stdin",
                 stdin="un-mot-de-passe-long\n", cwd=tmp_path)
    assert result.returncode == 0 and "utilisateur marie créé (rôle : accueil)" in result.stdout
    assert authenticate(engine, "marie", "un-mot-de-passe-long").role == "staff"


def test_user_add_refuses_a_short_password_in_one_line(db_url, tmp_path):
    result = run(db_url, "user", "add", "marie", "--role", "staff", "--password-stdin", stdin="court\n", cwd=tmp_path)
    assert result.returncode == 2 and "au moins 12 caractères" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_user_add_refuses_a_name_already_taken(db_url, tmp_path):
    run(db_url, "user", "add", "marie", "--role", "staff", "--password-stdin", stdin="un-mot-de-passe-long\n",
        cwd=tmp_path)
    again = run(db_url, "user", "add", "marie", "--role", "auditor", "--password-stdin",
                stdin="un-autre-mot-de-passe\n", cwd=tmp_path)
    assert again.returncode == 2 and "existe déjà" in again.stderr
