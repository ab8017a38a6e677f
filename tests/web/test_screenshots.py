"""Every page of the web app in headless Chromium at 1280 px and at a phone's 390 px: its visible text holds no
care detail (the privacy scanner and the words planted in the database), and nothing overflows the phone's width.

The screenshots go to RECOUVREMENT_SCREENSHOTS when set (`python tools/web_screenshots.py` sets it to
docs/screenshots/), else to the test's own folder.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from recouvrement.app.disputes import close_dispute
from recouvrement.app.promises import record_promise
from recouvrement.app.remind import run_remind
from recouvrement.app.reconcile import match_queued
from recouvrement.core.privacy import scan_text
from tests.web.conftest import CHROMIUM, DRIVER, PASSWORD, PLANTED, TODAY

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")
WIDTHS = (1280, 390)

# (file name, who, path): every page each role opens; "apercu" is the letter's own preview.
PAGES = [
    ("connexion", None, "/connexion"),
    ("aujourdhui", "compta", "/aujourdhui"),
    ("patients", "accueil", "/patients?q=lefebvre+eloise"),
    ("patient", "accueil", "/patients/P1"),
    ("patient-suspendu", "accueil", "/patients/P2"),
    ("releve", "accueil", "/patients/P1/releve"),
    ("appels", "accueil", "/appels"),
    ("courriers", "accueil", "/courriers"),
    ("apercu", "accueil", "/courriers/{letter}/apercu"),
    ("refus", "accueil", "/exceptions"),
    ("exceptions", "compta", "/exceptions"),
    ("audit", "audit", "/audit"),
]


@pytest.fixture
def shown_world(clinic, desk_settings, tmp_path):
    """The clinic with a letter of the day (P1's dispute withdrawn, her first payment matched) and a promise."""
    close_dispute(clinic, 1, on=date(2025, 5, 30))
    match_queued(clinic, "Q-NAME", "F2025-000101", cents=600, actor="compta")
    [letter] = run_remind(clinic, desk_settings, TODAY, tmp_path / "courriers").letters
    record_promise(clinic, "P1", date(2025, 6, 20), TODAY, owed_cents=4500, actor="accueil")
    return letter.letter_id


def log_in(driver, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By
    driver.delete_all_cookies()
    driver.get(base + "/connexion")
    driver.find_element(By.NAME, "nom").send_keys(name)
    driver.find_element(By.NAME, "mot_de_passe").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def test_every_page_at_desktop_and_phone_width_shows_no_care_detail_and_fits_the_phone(shown_world, server, browser,
                                                                                       tmp_path):
    folder = Path(os.environ.get("RECOUVREMENT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    who = None
    for name, user, path in PAGES:
        if user != who:
            if user:
                log_in(browser, server, user)
            who = user
        browser.get(server + path.format(letter=shown_world))
        browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        text = browser.execute_script("return document.body.innerText")
        assert scan_text(text) == [], f"{name}: {scan_text(text)}"
        assert not any(word.lower() in text.lower() for word in PLANTED), name
        for width in WIDTHS:
            browser.set_window_size(width, 900)
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(width, max(height, 600) + 140)
            if width < 1280 and name != "apercu":
                wide = browser.execute_script("return document.documentElement.scrollWidth")
                inner = browser.execute_script("return document.documentElement.clientWidth")
                assert wide <= inner + 1, f"{name} overflows a {width} px screen ({wide} px)"
            browser.save_screenshot(str(folder / f"{name}-{width}.png"))
        browser.set_window_size(1280, 900)
    assert len(list(folder.glob("*.png"))) >= len(PAGES) * len(WIDTHS)
