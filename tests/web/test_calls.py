"""The call list: patients the ladder would send a second-level reminder today, with a phone number, a neutral
script, and the call's outcome recorded (audited with the user) — after which they leave today's list."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from recouvrement.app.disputes import close_dispute
from recouvrement.app.remind import run_remind
from recouvrement.app.reconcile import match_queued
from recouvrement.web.app import create_app
from tests.web.conftest import csrf_of, log_in
from tests.web.test_pages import visible

CALL_DAY = date(2025, 6, 17)


@pytest.fixture
def caller(clinic, desk_settings, tmp_path):
    """P1 had her first reminder on 03/06; on CALL_DAY the ladder has her second due. She has a phone."""
    close_dispute(clinic, 1, on=date(2025, 6, 1))
    match_queued(clinic, "Q-NAME", "F2025-000101", actor="compta")
    run_remind(clinic, desk_settings, date(2025, 6, 3), tmp_path / "courriers")
    with clinic.begin() as conn:
        conn.execute(text("UPDATE patient SET phone = '06 12 34 56 78' WHERE patient_id = 'P1'"))
    app = create_app(clinic, today=lambda: CALL_DAY, settings=desk_settings)
    with TestClient(app, base_url="https://testserver") as client:
        log_in(client, "accueil")
        yield client


def test_a_patient_due_a_second_reminder_is_on_the_call_list_with_a_neutral_script(caller):
    page = visible(caller.get("/appels").text)
    assert "Lefèvre Éloïse 45,00 €" in page.replace("\xa0", " ") and "Tél. 06 12 34 56 78" in page
    assert "avant la relance de niveau 2" in page and "étaler le paiement, sans frais" in page
    assert "rien d'autre (ni montant, ni motif)" in page


def test_a_calls_outcome_is_audited_with_the_user_and_takes_the_patient_off_todays_list(caller, clinic):
    token = csrf_of(caller.get("/appels").text)
    response = caller.post("/appels/P1", data={"csrf_token": token, "issue": "wrong_number"})
    assert response.status_code == 200 and "Appel noté : faux numéro." in response.text
    assert "Personne à appeler aujourd'hui." in visible(response.text)
    with clinic.connect() as conn:
        actor, patient = conn.execute(text("SELECT actor, patient_id FROM audit_event WHERE kind = 'call'")).one()
    assert (actor, patient) == ("accueil", "P1")


def test_a_patient_who_promised_to_pay_is_not_on_the_list(caller, clinic):
    token = csrf_of(caller.get("/patients/P1").text)
    assert caller.post("/patients/P1/promesse", data={"csrf_token": token, "paye_le": "2025-06-30"},
                       follow_redirects=False).status_code == 303
    assert "Personne à appeler aujourd'hui." in visible(caller.get("/appels").text)


def test_an_unknown_outcome_is_refused(caller):
    token = csrf_of(caller.get("/appels").text)
    response = caller.post("/appels/P1", data={"csrf_token": token, "issue": "menace"})
    assert response.status_code == 409 and "issue d'appel inconnue" in visible(response.text)
