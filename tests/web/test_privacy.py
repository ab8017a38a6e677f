"""No page of the web app ever shows a care detail planted in the database (kept care, free text)."""

from __future__ import annotations


from recouvrement.core.privacy import scan_text
from recouvrement.scanner import html_text
from tests.web.conftest import PLANTED, csrf_of

PAGES = {
    "compta": ["/patients", "/patients?q=lefevre", "/patients?q=F2025-000102", "/patients/P1", "/patients/P2",
               "/patients/P3", "/exceptions", "/audit", "/aujourdhui"],
    "accueil": ["/aujourdhui", "/patients?q=fontaine", "/patients/P1", "/patients/P2", "/exceptions", "/courriers",
                "/appels", "/patients/P1/releve", "/patients/P2/releve"],
    "audit": ["/audit", "/patients/P1"],
}


def assert_clean(html: str, where: str) -> None:
    for planted in PLANTED:
        assert planted.lower() not in html.lower(), f"{where} shows {planted!r}"
    assert scan_text(html_text(html)) == [], where


def test_no_page_for_any_role_contains_a_care_detail_planted_in_the_database(app, clinic):
    from starlette.testclient import TestClient
    for name, paths in PAGES.items():
        with TestClient(app, base_url="https://testserver") as client:
            page = client.get("/connexion")
            assert_clean(page.text, "/connexion")
            client.post("/connexion", data={"csrf_token": csrf_of(page.text), "nom": name,
                                            "mot_de_passe": "motdepasse-solide"})
            for path in paths:
                assert_clean(client.get(path).text, f"{name} {path}")


def test_a_hold_reason_with_a_care_word_is_masked_on_the_account_page(as_role):
    page = as_role("accueil").get("/patients/P2").text
    assert "Depuis le 01/05/2025" in page and "[masqué : donnée médicale possible]" in page
