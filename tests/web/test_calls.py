"""The call list: the phone steps the night stored (never the ladder run again on a page load), a neutral
script, and each call's outcome recorded from the page (audited with the user)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from recouvrement.app.disputes import close_dispute
from recouvrement.app.remind import run_remind
from recouvrement.app.reconcile import match_queued
from recouvrement.web.app import create_app
from tests.app.test_phone_step import PHONE
from tests.web.conftest import csrf_of, log_in
from tests.web.test_pages import visible

CALL_DAY = date(2025, 6, 17)
CALL_ID = "C20250617-P1-2"


@pytest.fixture
def desk(clinic, desk_settings, tmp_path):
    """P1 had her first reminder on 03/06; on CALL_DAY her level 2 is due, by phone in these rules. She has a
    phone. The night of CALL_DAY has not run yet."""
    close_dispute(clinic, 1, on=date(2025, 6, 1))
    match_queued(clinic, "Q-NAME", "F2025-000101", actor="compta")
    run_remind(clinic, desk_settings, date(2025, 6, 3), tmp_path / "courriers", rules=PHONE)
    with clinic.begin() as conn:
        conn.execute(text("UPDATE patient SET phone = '06 12 34 56 78' WHERE patient_id = 'P1'"))
    app = create_app(clinic, today=lambda: CALL_DAY, settings=desk_settings, rules=PHONE)
    with TestClient(app, base_url="https://testserver") as client:
        log_in(client, "accueil")
        yield client


@pytest.fixture
def caller(desk, clinic, desk_settings, tmp_path):
    """The night of CALL_DAY ran: it stored P1's call."""
    run_remind(clinic, desk_settings, CALL_DAY, tmp_path / "courriers" / "17", rules=PHONE)
    return desk


def test_the_call_list_is_the_nights_stored_list_not_the_ladder_run_on_a_page_load(desk):
    assert "Personne à appeler." in visible(desk.get("/appels").text)


def test_the_call_the_night_stored_is_listed_with_a_neutral_script(caller):
    page = visible(caller.get("/appels").text)
    assert "Lefèvre Éloïse 45,00 €" in page.replace("\xa0", " ") and "Tél. 06 12 34 56 78" in page
    assert "relance de niveau 2 par téléphone · liste du 17/06/2025" in page
    assert "étaler le paiement, sans frais" in page and "rien d'autre (ni montant, ni motif)" in page


def test_a_calls_outcome_is_audited_with_the_user_and_takes_the_call_off_the_list(caller, clinic):
    token = csrf_of(caller.get("/appels").text)
    response = caller.post(f"/appels/{CALL_ID}", data={"csrf_token": token, "issue": "wrong_number"})
    assert response.status_code == 200 and "Appel noté : faux numéro." in response.text
    assert "Personne à appeler." in visible(response.text)
    with clinic.connect() as conn:
        actor, patient = conn.execute(text("SELECT actor, patient_id FROM audit_event WHERE kind = 'call'")).one()
        assert conn.execute(text("SELECT status FROM call_task")).scalar_one() == "wrong_number"
    assert (actor, patient) == ("accueil", "P1")


def test_a_promise_noted_on_the_call_list_records_the_promise_with_its_date(caller, clinic):
    token = csrf_of(caller.get("/appels").text)
    response = caller.post(f"/appels/{CALL_ID}", data={"csrf_token": token, "issue": "promise",
                                                        "paye_le": "2025-06-30"})
    assert "Appel noté : promesse de paiement." in response.text
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT patient_id, pay_by FROM promise")).one()[0] == "P1"
        assert conn.execute(text("SELECT status FROM call_task")).scalar_one() == "promise"


def test_a_dispute_noted_on_the_call_list_opens_it_on_the_invoice(caller, clinic):
    token = csrf_of(caller.get("/appels").text)
    response = caller.post(f"/appels/{CALL_ID}", data={"csrf_token": token, "issue": "dispute",
                                                        "facture": "F2025-000102", "motif": "montant inexact"})
    assert "Appel noté : contestation." in response.text
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT channel FROM dispute WHERE invoice_number = 'F2025-000102' "
                                 "AND status <> 'closed'")).scalar_one() == "phone"


def test_a_dispute_with_care_details_in_its_reason_is_refused(caller, clinic):
    token = csrf_of(caller.get("/appels").text)
    response = caller.post(f"/appels/{CALL_ID}", data={"csrf_token": token, "issue": "dispute",
                                                        "facture": "F2025-000102", "motif": "le détartrage"})
    assert response.status_code == 400
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT status FROM call_task")).scalar_one() == "open"


def test_an_unknown_outcome_is_refused(caller):
    token = csrf_of(caller.get("/appels").text)
    response = caller.post(f"/appels/{CALL_ID}", data={"csrf_token": token, "issue": "menace"})
    assert response.status_code == 409 and "issue d'appel inconnue" in visible(response.text)
