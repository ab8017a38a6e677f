"""Letters in the web app: the day's letters wait for approval, each previewed (its stored HTML) and its PDF
served only to logged-in desk staff; approval audited with the user."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from recouvrement.app.disputes import close_dispute
from recouvrement.app.remind import run_remind
from recouvrement.app.reconcile import match_queued
from recouvrement.core.privacy import scan_text
from recouvrement.scanner import html_text, pdf_text
from recouvrement.web.app import create_app
from tests.web.conftest import PLANTED, csrf_of, log_in
from tests.web.test_pages import visible

DAY = date(2025, 6, 3)


@pytest.fixture
def letter_id(clinic, desk_settings, tmp_path):
    """P1's first reminder, written by the reminder run of DAY (her dispute withdrawn, her payment matched)."""
    close_dispute(clinic, 1, on=date(2025, 6, 1))
    match_queued(clinic, "Q-NAME", "F2025-000101", actor="compta")
    report = run_remind(clinic, desk_settings, DAY, tmp_path / "courriers")
    [letter] = report.letters
    return letter.letter_id


@pytest.fixture
def desk(clinic, desk_settings):
    with TestClient(create_app(clinic, today=lambda: DAY, settings=desk_settings), base_url="https://testserver") as c:
        yield c


def test_the_days_letters_wait_for_approval_with_a_preview_and_a_pdf_link(letter_id, desk):
    log_in(desk, "accueil")
    page = desk.get("/courriers").text
    assert "Lot du 03/06/2025" in page and f'href="/courriers/{letter_id}/apercu"' in page
    assert f'href="/courriers/{letter_id}/pdf"' in page and "1re relance" in page


def test_a_letters_preview_is_its_stored_html_with_its_own_narrow_content_policy_and_no_care_detail(letter_id, desk):
    log_in(desk, "accueil")
    response = desk.get(f"/courriers/{letter_id}/apercu")
    assert response.status_code == 200 and "F2025-000102" in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert scan_text(html_text(response.text)) == [] and not any(p.lower() in response.text.lower() for p in PLANTED)


def test_a_letters_pdf_is_served_to_desk_staff_only(letter_id, desk, client):
    assert desk.get(f"/courriers/{letter_id}/pdf", follow_redirects=False).headers["location"] == "/connexion"
    log_in(desk, "accueil")
    response = desk.get(f"/courriers/{letter_id}/pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and "F2025-000102" in pdf_text(response.content, "lettre.pdf")
    log_in(client, "audit")
    assert client.get(f"/courriers/{letter_id}/pdf").status_code == 403


def test_a_letter_whose_file_was_changed_after_it_was_written_is_not_shown(letter_id, desk, clinic):
    with clinic.connect() as conn:
        folder = conn.execute(text("SELECT folder FROM letter WHERE letter_id = :l"), {"l": letter_id}).scalar_one()
    from pathlib import Path
    path = Path(folder) / f"{letter_id}.html"
    path.write_text(path.read_text(encoding="utf-8").replace("F2025-000102", "F2025-999999"), encoding="utf-8")
    log_in(desk, "accueil")
    response = desk.get(f"/courriers/{letter_id}/apercu")
    assert response.status_code == 409 and "a été modifié depuis son envoi" in visible(response.text)


def test_a_letters_preview_and_pdf_answer_the_same_for_an_unknown_letter_and_a_changed_file(letter_id, desk, clinic):
    log_in(desk, "accueil")
    for kind in ("apercu", "pdf"):
        assert desk.get(f"/courriers/inconnu/{kind}").status_code == 404
    with clinic.connect() as conn:
        folder = conn.execute(text("SELECT folder FROM letter WHERE letter_id = :l"), {"l": letter_id}).scalar_one()
    from pathlib import Path
    for name in (f"{letter_id}.html", f"{letter_id}.pdf"):
        if (Path(folder) / name).exists():
            (Path(folder) / name).write_bytes((Path(folder) / name).read_bytes() + b" ")
    for kind in ("apercu", "pdf"):
        response = desk.get(f"/courriers/{letter_id}/{kind}")
        assert response.status_code == 409 and "a été modifié depuis son envoi" in visible(response.text)


def test_approving_the_days_batch_is_audited_with_the_user_and_empties_the_list(letter_id, desk, clinic):
    log_in(desk, "accueil")
    token = csrf_of(desk.get("/courriers").text)
    response = desk.post("/courriers/approuver", data={"csrf_token": token, "courrier": [letter_id]})
    assert response.status_code == 200 and "1 courrier(s) approuvé(s)." in response.text
    assert "Aucun courrier n'attend d'approbation." in response.text
    with clinic.connect() as conn:
        payload, actor, patient = conn.execute(text("SELECT payload, actor, patient_id FROM audit_event "
                                                     "WHERE kind = 'letter_approved'")).one()
        assert conn.execute(text("SELECT approved_by FROM letter_approval")).scalar_one() == "accueil"
    assert (json.loads(payload)["letter_id"], actor, patient) == (letter_id, "accueil", "P1")
    again = desk.post("/courriers/approuver", data={"csrf_token": token, "courrier": [letter_id]})
    assert "0 courrier(s) approuvé(s)." in again.text


def test_approving_without_a_csrf_token_is_refused(letter_id, desk, clinic):
    log_in(desk, "accueil")
    assert desk.post("/courriers/approuver", data={"courrier": [letter_id]}).status_code == 403
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter_approval")).scalar_one() == 0


def test_today_says_how_many_letters_wait_for_approval(letter_id, desk):
    log_in(desk, "accueil")
    assert "1 courrier(s) attendent votre approbation" in visible(desk.get("/aujourdhui").text)


def test_the_days_postal_letters_print_as_one_pdf_from_the_letters_page(clinic, desk_settings, tmp_path, desk):
    close_dispute(clinic, 1, on=date(2025, 6, 1))
    match_queued(clinic, "Q-NAME", "F2025-000101", actor="compta")
    with clinic.begin() as conn:                   # no e-mail address: the letter goes by post, in the day's batch
        conn.execute(text("UPDATE patient SET email = '' WHERE patient_id = 'P1'"))
    run_remind(clinic, desk_settings, DAY, tmp_path / "courriers")
    log_in(desk, "accueil")
    page = desk.get("/courriers").text
    assert 'href="/courriers/lots/batch-2025-06-03.pdf"' in page and "(un PDF, 1 courrier(s))" in page
    response = desk.get("/courriers/lots/batch-2025-06-03.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert "F2025-000102" in pdf_text(response.content, "lot.pdf")
    assert desk.get("/courriers/lots/batch-2099-01-01.pdf").status_code == 404
