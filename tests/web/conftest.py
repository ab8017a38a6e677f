"""A small clinic for the web app: three patients, care details planted in the database, a queue of three
payments, one user per role; a TestClient over HTTPS (the session cookie is Secure)."""

from __future__ import annotations

import contextlib

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from datetime import date, datetime, timezone

import pytest
from starlette.testclient import TestClient

from recouvrement.app.disputes import open_dispute
from recouvrement.app.holds import place_hold
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.users import add_user
from recouvrement.config import Creditor, Paths, Privacy
from recouvrement.web.app import create_app
from tests.app.world import invoices_file, payments_file

PASSWORD = "motdepasse-solide"
TODAY = date(2025, 6, 2)
# Care details the import keeps (keep_care) or staff typed into free text: no page may ever show them.
PLANTED = ("cardiologie", "Détartrage", "DEQP003", "HBJD001", "chimiothérapie")
PAYMENTS = [
    "AMO-1;2025-03-01;amo;CPAM PARIS;70,00;;F2025-000101;paid;",
    "Q-NAME;2025-04-01;patient;ELOISE LEFEVR;10,00;VIREMENT;;paid;",
    "Q-URSSAF;2025-04-02;patient;URSSAF IDF;123,45;COTISATIONS T1;;paid;",
    "Q-REF;2025-04-03;patient;J F FONTAINNE;5,00;FACT 000103;;paid;",
]


@pytest.fixture
def clinic(engine, settings, tmp_path):
    """The database of a small clinic, reconciled: Q-NAME, Q-URSSAF and Q-REF wait in the queue."""
    keep = replace(settings, privacy=Privacy(keep_care=True, nir_key_file=settings.privacy.nir_key_file))
    import_file(engine, invoices_file(tmp_path), keep)
    import_file(engine, payments_file(tmp_path, PAYMENTS), keep)
    run_reconcile(engine)
    place_hold(engine, "P2", "en chimiothérapie, rappeler en septembre", since=date(2025, 5, 1))
    open_dispute(engine, "F2025-000102", "conteste le détartrage (cardiologie)", received=date(2025, 5, 20))
    for name, role in (("compta", "accountant"), ("accueil", "staff"), ("audit", "auditor")):
        add_user(engine, name, role, PASSWORD)
    return engine


CREDITOR = Creditor("Centre de santé des Lilas", "12 rue des Lilas", "75019", "Paris", "01 42 00 00 00",
                    "compta@lilas.example", "12345678900011", "FR7630006000011234567890189", "AGRIFRPP")


@pytest.fixture
def desk_settings(settings, tmp_path):
    """The clinic's settings for letters the desk writes (a plan's proposal): its creditor, an output folder."""
    return replace(settings, creditor=CREDITOR, paths=Paths(output=tmp_path / "out"))


@pytest.fixture
def app(clinic, desk_settings):
    return create_app(clinic, today=lambda: TODAY, settings=desk_settings)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client: TestClient, name: str, password: str = PASSWORD):
    page = client.get("/connexion")
    return client.post("/connexion", data={"csrf_token": csrf_of(page.text), "nom": name, "mot_de_passe": password},
                       follow_redirects=False)


@pytest.fixture
def as_role(client):
    def login(name: str) -> TestClient:
        response = log_in(client, name)
        assert response.status_code == 303, response.text
        return client
    return login


def now() -> datetime:
    return datetime.now(timezone.utc)


# -- a real server and headless Chromium, for the browser tests ------------------------------------------

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(db_url: str, folder: Path, as_of: str = "2025-06-02"):
    """A real `recouvrement web` server on a free port, its day fixed at as_of; yields its address."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("RECOUVREMENT_CONFIG", None)
    process = subprocess.Popen([shutil.which("recouvrement"), "--db", db_url, "web", "--port", str(port),
                                "--as-of", as_of],
                               cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(base + "/connexion", timeout=2)
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def server(clinic, db_url, tmp_path):
    with serving(db_url, tmp_path) as base:
        yield base


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=fr-FR",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(10)
    yield driver
    driver.quit()
