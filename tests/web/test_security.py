"""The web app lets nobody see or do more than their role allows: sessions, CSRF, throttling, cookies, 403."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.web.conftest import PASSWORD, csrf_of, log_in


def allocations(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM allocation")).scalar_one()


def test_every_page_sends_a_visitor_without_a_session_to_the_login_page(client):
    for path in ("/", "/aujourdhui", "/patients", "/patients/P1", "/exceptions", "/audit"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/connexion", path


def test_a_staff_user_gets_403_on_the_accountants_workbench_and_a_match_changes_nothing(clinic, as_role):
    client = as_role("accueil")
    token = csrf_of(client.get("/patients").text)
    assert client.get("/exceptions").status_code == 403
    before = allocations(clinic)
    response = client.post("/exceptions/Q-NAME/rapprocher", data={"csrf_token": token, "facture": "F2025-000101"})
    assert response.status_code == 403 and "Accès refusé" in response.text
    assert allocations(clinic) == before


def test_an_auditor_reads_the_audit_log_but_gets_403_on_patients_and_the_queue(as_role):
    client = as_role("audit")
    assert client.get("/audit").status_code == 200
    assert client.get("/patients").status_code == 403
    assert client.get("/aujourdhui").status_code == 403
    assert client.get("/patients/P1").status_code == 403
    assert client.get("/exceptions").status_code == 403


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(clinic, as_role):
    client = as_role("compta")
    before = allocations(clinic)
    response = client.post("/exceptions/Q-NAME/rapprocher", data={"facture": "F2025-000101"})
    assert response.status_code == 403 and "jeton de sécurité" in response.text
    assert allocations(clinic) == before


def test_a_form_with_another_sessions_csrf_token_is_refused(clinic, app, as_role):
    from starlette.testclient import TestClient
    with TestClient(app, base_url="https://testserver") as other:
        log_in(other, "compta")
        foreign = csrf_of(other.get("/exceptions").text)
    client = as_role("compta")
    before = allocations(clinic)
    response = client.post("/exceptions/Q-NAME/rapprocher", data={"csrf_token": foreign, "facture": "F2025-000101"})
    assert response.status_code == 403
    assert allocations(clinic) == before


def test_the_login_form_without_its_token_is_refused(client):
    client.get("/connexion")
    response = client.post("/connexion", data={"nom": "compta", "mot_de_passe": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403 and "recouvrement_session" not in response.headers.get("set-cookie", "")


def test_after_five_wrong_passwords_even_the_right_one_is_refused_for_a_while(client):
    for _ in range(5):
        assert log_in(client, "compta", "pas-le-bon-mot-de-passe").status_code == 401
    response = log_in(client, "compta", PASSWORD)
    assert response.status_code == 429 and "Trop de tentatives" in response.text
    assert "recouvrement_session" not in response.headers.get("set-cookie", "")


def test_an_unknown_name_and_a_wrong_password_get_the_same_answer(client):
    unknown, wrong = log_in(client, "personne", "pas-le-bon-mot-de-passe"), log_in(client, "compta", "mauvais-mot")
    assert unknown.status_code == wrong.status_code == 401
    message = re.compile(r'<p class="erreur"[^>]*>([^<]+)</p>')
    assert message.search(unknown.text).group(1) == message.search(wrong.text).group(1)


def test_the_session_cookie_is_secure_httponly_and_samesite_strict(client):
    cookies = log_in(client, "accueil").headers.get_list("set-cookie")
    cookie = next(c for c in cookies if c.startswith("recouvrement_session="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags


def test_the_session_lives_on_the_server_and_ends_at_logout(clinic, as_role):
    client = as_role("accueil")
    token = client.cookies.get("recouvrement_session")
    with clinic.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM web_session")).scalars().all()
    assert token not in stored and len(stored) == 1
    client.post("/deconnexion", data={"csrf_token": csrf_of(client.get("/patients").text)})
    client.cookies.clear()
    replay = client.get("/patients", headers={"cookie": f"recouvrement_session={token}"}, follow_redirects=False)
    assert replay.status_code == 303
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM web_session")).scalar_one() == 0


def test_passwords_are_stored_as_argon2id_hashes(clinic):
    with clinic.connect() as conn:
        hashes = conn.execute(text("SELECT password_hash FROM web_user")).scalars().all()
    assert hashes and all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_pages_forbid_framing_and_scripts_from_elsewhere(as_role):
    response = as_role("accueil").get("/patients")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"


def test_htmx_is_served_from_the_package_with_its_licence(client):
    page = client.get("/connexion").text
    assert 'src="/static/htmx.min.js"' in page and "http" not in re.sub(r'xmlns="[^"]*"', "", page.split("<body")[0])
    assert client.get("/static/htmx.min.js").status_code == 200
    assert "Zero-Clause BSD" in client.get("/static/htmx.LICENSE").text
