"""End to end in headless Chromium (Debian's chromium and chromedriver, through Selenium) on a real
`recouvrement web` server the test starts: each role logs in and does its day's first job.

RECOUVREMENT_SCREENSHOTS=DIR also saves every page at 1280 px and at a phone's 390 px into DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.web.conftest import CHROMIUM, DRIVER, PASSWORD

# How long a page may take to come (seconds): a page is served in milliseconds, but a loaded 2-core machine (the
# suite on SQLite and PostgreSQL at once, a benchmark beside) once took more than 20 s to bring up a page.
PATIENCE = 60

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")


def shoot(driver, name: str) -> None:
    folder = os.environ.get("RECOUVREMENT_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(height, 600) + 140)
        driver.save_screenshot(str(Path(folder) / f"{name}-{width}.png"))
    driver.set_window_size(1280, 900)


def log_in(driver, base: str, name: str) -> None:
    """Signed in at this test's server, from an empty cookie jar: the browser lives through the session and every
    test's server listens on 127.0.0.1 (cookies know no port), so an earlier server's cookies went with this one's
    login form (in the whole suite, the login was once answered "Formulaire expiré"). Returns once signed in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait
    driver.get(base + "/connexion")
    driver.delete_all_cookies()
    driver.get(base + "/connexion")
    driver.find_element(By.NAME, "nom").send_keys(name)
    driver.find_element(By.NAME, "mot_de_passe").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, PATIENCE).until(lambda d: "/connexion" not in d.current_url,
                                          "still on the login page after signing in")


def log_out(driver) -> None:
    from selenium.webdriver.common.by import By
    driver.find_element(By.CSS_SELECTOR, "form.qui button").click()


def test_each_role_logs_in_and_does_its_first_job_in_a_real_browser(server, browser, clinic):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, PATIENCE)
    browser.get(server + "/connexion")
    shoot(browser, "connexion")

    # The front desk: a misspelt name, typed the other way round, finds the patient as she types (htmx).
    log_in(browser, server, "accueil")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("lefebvre eloise")
    wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, "#resultats a[href='/patients/P1']")))
    shoot(browser, "patients")
    browser.find_element(By.CSS_SELECTOR, "#resultats a[href='/patients/P1']").click()
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, ".resume .montant"), "55,00"))
    assert "attendue de la mutuelle" in browser.page_source
    shoot(browser, "patient")
    # She promises to pay by the 20th: recorded from the form, the ladder waits (tests/web/test_desk_actions.py).
    browser.find_element(By.XPATH, "//summary[contains(., 'Promesse de paiement')]").click()
    day = browser.find_element(By.NAME, "paye_le")
    browser.execute_script("arguments[0].value = '2025-06-20'", day)
    browser.find_element(By.XPATH, "//button[contains(., 'Enregistrer la promesse')]").click()
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "p.ok"), "Promesse de paiement enregistrée"))
    assert "jusqu'au 20/06/2025" in browser.find_element(By.CSS_SELECTOR, ".resume").text
    browser.get(server + "/exceptions")
    assert "Accès refusé" in browser.page_source
    shoot(browser, "refus")
    browser.get(server + "/patients")
    log_out(browser)

    # The accountant: one click matches the payment the name and the amount point to; URSSAF is dismissed.
    log_in(browser, server, "compta")
    wait.until(seen.title_contains("Aujourd'hui"))
    shoot(browser, "aujourdhui")
    browser.find_element(By.LINK_TEXT, "Paiements à rapprocher").click()
    wait.until(seen.title_contains("Paiements à rapprocher"))
    shoot(browser, "exceptions")
    browser.find_element(By.CSS_SELECTOR, "table.candidats button[type=submit]").click()
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "p.ok"), "Paiement rapproché."))
    card = browser.find_element(By.XPATH, "//article[.//h2[contains(., 'J F FONTAINNE')]]")
    card.find_element(By.XPATH, ".//summary[contains(., 'Répartir')]").click()
    card.find_element(By.NAME, "montant_1").send_keys("3,00")
    card.find_element(By.XPATH, ".//button[contains(., 'Répartir')]").click()
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "p.ok"), "Paiement réparti"))
    card = browser.find_element(By.XPATH, "//article[.//h2[contains(., 'URSSAF IDF')]]")
    card.find_element(By.XPATH, ".//summary[contains(., 'Écarter')]").click()
    card.find_element(By.NAME, "note").send_keys("cotisations")
    card.find_element(By.CSS_SELECTOR, "button.secondaire").click()
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "p.ok"), "Paiement écarté"))
    assert "URSSAF IDF" not in browser.page_source
    log_out(browser)

    # The auditor: the trail is intact and shows who matched.
    log_in(browser, server, "audit")
    wait.until(seen.title_contains("Journal"))
    assert "Chaîne intacte" in browser.page_source
    assert browser.find_elements(By.XPATH, "//tr[td[.='manual_match'] and td[.='compta']]")
    shoot(browser, "audit")

    with clinic.connect() as conn:
        assert conn.execute(text("SELECT invoice_number FROM allocation WHERE payment_id = 'Q-NAME'")).scalars().all() \
            == ["F2025-000101"]
        assert conn.execute(text("SELECT amount_cents FROM allocation WHERE payment_id = 'Q-REF'")).scalars().all() \
            == [300]
        assert conn.execute(text("SELECT remaining_cents, kind FROM payment_exception WHERE payment_id = 'Q-REF'")).one() \
            == (200, "unmatched")
        assert conn.execute(text("SELECT actor FROM audit_event WHERE kind = 'promise'")).scalar_one() == "accueil"


def test_the_desk_previews_and_approves_the_letters_then_works_the_call_list_in_a_real_browser(
        browser, clinic, desk_settings, db_url, tmp_path):
    """P1's first reminder went on 03/06; on 17/06 the desk previews and approves it, then phones P1 (her second
    reminder is due) from the call list and notes that she was reached."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    from datetime import date

    from recouvrement.app.disputes import close_dispute
    from recouvrement.app.remind import run_remind
    from recouvrement.app.reconcile import match_queued
    from tests.web.conftest import serving

    close_dispute(clinic, 1, on=date(2025, 6, 1))
    match_queued(clinic, "Q-NAME", "F2025-000101", actor="compta")
    [sent] = run_remind(clinic, desk_settings, date(2025, 6, 3), tmp_path / "courriers").letters
    with clinic.begin() as conn:
        conn.execute(text("UPDATE patient SET phone = '06 12 34 56 78' WHERE patient_id = 'P1'"))
    # The night of 17/06 with a phone step at level 2 stores P1's call: the page shows that stored list.
    from tests.app.test_phone_step import PHONE
    run_remind(clinic, desk_settings, date(2025, 6, 17), tmp_path / "courriers" / "17", rules=PHONE)
    wait = WebDriverWait(browser, PATIENCE)
    with serving(db_url, tmp_path, as_of="2025-06-17") as server:
        log_in(browser, server, "accueil")
        browser.get(server + "/courriers")
        wait.until(seen.title_contains("Courriers"))
        assert "Lot du 03/06/2025" in browser.page_source
        preview = browser.find_element(By.CSS_SELECTOR, f"a[href='/courriers/{sent.letter_id}/apercu']")
        browser.get(preview.get_attribute("href"))          # opened in this tab, not a new one
        assert "F2025-000102" in browser.find_element(By.TAG_NAME, "body").text
        browser.back()
        browser.find_element(By.XPATH, "//button[contains(., 'Approuver les courriers cochés')]").click()
        wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "p.ok"), "1 courrier(s) approuvé(s)."))
        assert "Aucun courrier n'attend d'approbation." in browser.page_source

        browser.get(server + "/appels")
        card = browser.find_element(By.XPATH, "//article[contains(@class, 'appel')][.//a[@href='/patients/P1']]")
        assert "06 12 34 56 78" in card.text
        card.find_element(By.XPATH, ".//button[@value='reached']").click()
        wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "p.ok"), "Appel noté"))
        assert "Personne à appeler." in browser.page_source
        log_out(browser)

    with clinic.connect() as conn:
        assert conn.execute(text("SELECT approved_by FROM letter_approval WHERE letter_id = :l"),
                            {"l": sent.letter_id}).scalar_one() == "accueil"
        assert conn.execute(text("SELECT actor, patient_id FROM audit_event WHERE kind = 'call'")).one() \
            == ("accueil", "P1")
