"""The NIR key is found from the settings file (or one documented place), never from the current folder:
the same NIR gets the same hash whatever folder a command is run from."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from recouvrement.config import Settings, load_settings, read_or_create_key

SAMPLE_TOML = Path(__file__).resolve().parents[1] / "recouvrement" / "sample_clinic" / "recouvrement.toml"


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("RECOUVREMENT_NIR_KEY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


def clinic(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True)
    config = folder / "recouvrement.toml"
    config.write_text(SAMPLE_TOML.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return config


def test_the_key_lives_beside_the_settings_file_whatever_the_current_folder(tmp_path, monkeypatch):
    config = clinic(tmp_path / "clinic")
    keys = []
    for here in ("a", "b"):
        (tmp_path / here).mkdir()
        monkeypatch.chdir(tmp_path / here)
        keys.append(load_settings(config).nir_key())
        assert list((tmp_path / here).iterdir()) == []
    assert keys[0] == keys[1]
    assert (tmp_path / "clinic" / "recouvrement-nir.key").read_text().strip().encode() == keys[0]


def test_a_relative_settings_path_still_puts_the_key_beside_it(tmp_path, monkeypatch):
    clinic(tmp_path / "clinic")
    monkeypatch.chdir(tmp_path)
    settings = load_settings("clinic/recouvrement.toml")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    settings.nir_key()
    assert (tmp_path / "clinic" / "recouvrement-nir.key").exists() and list((tmp_path / "elsewhere").iterdir()) == []


def test_an_explicit_key_file_is_read_relative_to_the_settings_file(tmp_path, monkeypatch):
    config = clinic(tmp_path / "clinic", '\n[privacy]\nnir_key_file = "secrets/nir.key"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(config).nir_key_path() == (tmp_path / "clinic" / "secrets" / "nir.key")


def test_without_a_settings_file_the_key_lives_in_the_users_data_folder(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    key = Settings().nir_key()
    assert (tmp_path / "data-home" / "recouvrement" / "nir.key").read_text().strip().encode() == key
    assert list((tmp_path / "work").iterdir()) == []


def test_the_key_file_is_readable_by_its_owner_only(tmp_path):
    read_or_create_key(tmp_path / "k" / "nir.key")
    assert (tmp_path / "k" / "nir.key").stat().st_mode & 0o777 == 0o600


def test_processes_creating_the_key_at_the_same_moment_all_get_the_same_key(tmp_path):
    keys, start = [], threading.Barrier(8)

    def create():
        start.wait()
        keys.append(read_or_create_key(tmp_path / "nir.key"))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and [p.name for p in tmp_path.iterdir()] == ["nir.key"]
