"""`recouvrement web` as it starts serving, and what every command pays when it starts."""

from __future__ import annotations

import gc

from click.testing import CliRunner

from recouvrement.cli import cli
from recouvrement.cli import commands  # noqa: F401  (registers the commands)


def test_the_server_starts_with_its_startup_heap_kept_out_of_the_collectors_full_passes(engine, db_url, tmp_path,
                                                                                          monkeypatch):
    import uvicorn

    served = {}

    def run(app, **options):
        served.update(frozen=gc.get_freeze_count(), app=app)
    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.delenv("RECOUVREMENT_CONFIG", raising=False)
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    try:
        result = CliRunner().invoke(cli, ["--db", db_url, "--config", str(tmp_path / "none.toml"), "web"])
    finally:
        gc.unfreeze()
    assert result.exit_code == 0, result.output
    assert served["app"] is not None and served["frozen"] > 0


def test_no_password_is_hashed_when_a_command_starts_the_web_app_hashes_its_unknown_names_before_its_first_login(
        engine):
    import subprocess
    import sys

    from recouvrement.app import users
    from recouvrement.web.app import create_app
    on_import = subprocess.run([sys.executable, "-c", "from recouvrement.cli import commands; "
                                "from recouvrement.app import users; print(users.dummy_hash.cache_info().currsize)"],
                               capture_output=True, text=True, check=True)
    assert on_import.stdout.strip() == "0"
    users.dummy_hash.cache_clear()
    create_app(engine)
    assert users.dummy_hash.cache_info().currsize == 1
