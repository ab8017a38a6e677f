"""The front desk's actions on a patient's account: a promise to pay, a hold with a review date, a dispute, a
plan — each a form with the session's CSRF token, audited with the logged-in user, refused in one French line."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import text

from recouvrement.app.disputes import close_dispute
from recouvrement.app.remind import run_remind
from recouvrement.app.reconcile import match_queued
from starlette.testclient import TestClient

from recouvrement.web.app import create_app
from tests.web.conftest import csrf_of, log_in
from tests.web.test_pages import visible


def post_form(client, path: str, fields: dict, page: str = "/patients/P1"):
    token = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf_token": token, **fields}, follow_redirects=False)


def events(engine, kind: str) -> list[tuple[dict, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT payload, actor, patient_id FROM audit_event WHERE kind = :k ORDER BY seq"),
                            {"k": kind}).all()
    return [(json.loads(p), a, who) for p, a, who in rows]


def test_a_promise_to_pay_is_recorded_shown_and_audited_with_the_desk_user(clinic, as_role):
    client = as_role("accueil")
    response = post_form(client, "/patients/P1/promesse", {"paye_le": "2025-06-20", "montant": "45,00"})
    assert response.status_code == 303 and response.headers["location"] == "/patients/P1?fait=promesse"
    page = visible(client.get(response.headers["location"]).text)
    assert "Promesse de paiement enregistrée" in page
    assert "Promesse de paiement jusqu'au 20/06/2025 (45,00 €) : aucune relance d'ici là." in page
    [(payload, actor, patient)] = events(clinic, "promise")
    assert (payload["pay_by"], payload["amount_cents"], actor, patient) == ("2025-06-20", 4500, "accueil", "P1")


def test_a_promise_in_the_past_or_too_far_or_a_second_one_is_refused_in_french_and_changes_nothing(clinic, as_role):
    client = as_role("accueil")
    past = post_form(client, "/patients/P1/promesse", {"paye_le": "2025-06-02"})
    assert past.status_code == 409 and "la date promise doit être après aujourd'hui (02/06/2025)" in visible(past.text)
    far = post_form(client, "/patients/P1/promesse", {"paye_le": "2025-12-31"})
    assert far.status_code == 409 and "au-delà, proposez un échéancier" in visible(far.text)
    unreadable = post_form(client, "/patients/P1/promesse", {"paye_le": "demain"})
    assert unreadable.status_code == 400 and "date promise illisible" in visible(unreadable.text)
    assert events(clinic, "promise") == []
    assert post_form(client, "/patients/P1/promesse", {"paye_le": "20/06/2025"}).status_code == 303
    second = post_form(client, "/patients/P1/promesse", {"paye_le": "2025-06-25"})
    assert second.status_code == 409 and "une promesse est déjà en cours jusqu'au 20/06/2025" in visible(second.text)
    assert len(events(clinic, "promise")) == 1


def test_the_ladder_waits_through_the_promised_day_then_resumes_by_itself_if_unpaid(clinic, as_role, settings, tmp_path):
    # P1 becomes remindable: the dispute on F2025-000102 is withdrawn, the payment in her name is matched.
    close_dispute(clinic, 1, on=date(2025, 6, 1))
    match_queued(clinic, "Q-NAME", "F2025-000101", actor="compta")

    def letters_on(day: date) -> tuple[list[str], list[str]]:
        report = run_remind(clinic, settings, day, tmp_path / "out", dry_run=True)
        return ([d.patient_id for d in report.decisions],
                [e.reason for e in report.exclusions if e.patient_id == "P1" and e.code == "promise"])

    assert letters_on(date(2025, 6, 3))[0] == ["P1"]
    assert post_form(as_role("accueil"), "/patients/P1/promesse", {"paye_le": "2025-06-20"}).status_code == 303
    assert letters_on(date(2025, 6, 3)) == ([], ["promesse de paiement : pas de relance jusqu'au 20/06/2025"])
    assert letters_on(date(2025, 6, 20))[0] == []
    assert letters_on(date(2025, 6, 21))[0] == ["P1"]


def test_a_hold_with_a_review_date_stops_the_letters_and_shows_on_the_page_and_today(clinic, as_role, app):
    client = as_role("accueil")
    response = post_form(client, "/patients/P1/suspension", {"motif": "difficultés financières",
                                                             "revoir_le": "2025-07-01"})
    assert response.status_code == 303
    page = visible(client.get("/patients/P1").text)
    assert "Relances suspendues" in page and "Depuis le 02/06/2025 : difficultés financières À revoir le 01/07/2025" in page
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT since FROM hold WHERE patient_id = 'P1' AND released_on IS NULL")).scalar_one()
    [(hold, actor, _)] = [e for e in events(clinic, "hold") if e[2] == "P1"]
    [(review, review_actor, _)] = events(clinic, "hold_review")
    assert (actor, review_actor, review["review_on"]) == ("accueil", "accueil", "2025-07-01")
    with TestClient(create_app(clinic, today=lambda: date(2025, 7, 1)), base_url="https://testserver") as later:
        log_in(later, "accueil")
        assert "Patient P1 : à revoir depuis le 01/07/2025" in visible(later.get("/aujourdhui").text)


def test_a_hold_without_a_review_date_or_with_a_care_detail_in_its_reason_is_refused_and_nothing_is_held(clinic, as_role):
    client = as_role("accueil")
    no_date = post_form(client, "/patients/P1/suspension", {"motif": "difficultés financières", "revoir_le": ""})
    assert no_date.status_code == 400 and "date de revue illisible" in visible(no_date.text)
    past = post_form(client, "/patients/P1/suspension", {"motif": "difficultés financières", "revoir_le": "2025-06-01"})
    assert past.status_code == 409 and "la date de revue doit être après aujourd'hui" in visible(past.text)
    care = post_form(client, "/patients/P1/suspension", {"motif": "en chimiothérapie", "revoir_le": "2025-07-01"})
    assert care.status_code == 400 and "semble contenir une donnée médicale" in visible(care.text)
    assert "chimiothérapie" not in care.text
    already = post_form(client, "/patients/P2/suspension", {"motif": "décès", "revoir_le": "2025-07-01"},
                        page="/patients/P2")
    assert already.status_code == 409 and "le patient P2 est déjà suspendu" in visible(already.text)
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM hold WHERE patient_id = 'P1'")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM hold_review")).scalar_one() == 0


def test_a_hold_whose_review_date_cannot_be_written_leaves_the_patient_not_held(clinic, app):
    from tests.app.test_holds import refuse_inserts_into
    refuse_inserts_into(clinic, "hold_review")
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        log_in(client, "accueil")
        response = post_form(client, "/patients/P1/suspension", {"motif": "difficultés financières",
                                                                 "revoir_le": "2025-07-01"})
    assert response.status_code == 500
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM hold WHERE patient_id = 'P1'")).scalar_one() == 0
    assert [e for e in events(clinic, "hold") if e[2] == "P1"] == []


def test_a_hold_is_released_from_the_page_and_the_release_is_audited(clinic, as_role):
    client = as_role("accueil")
    response = post_form(client, "/patients/P2/suspension/lever", {}, page="/patients/P2")
    assert response.status_code == 303
    assert "Suspension levée : les relances reprennent." in visible(client.get(response.headers["location"]).text)
    [(_, actor, patient)] = events(clinic, "hold_release")
    assert (actor, patient) == ("accueil", "P2")


def test_the_desk_actions_refuse_a_missing_csrf_token_and_an_auditor(clinic, client):
    log_in(client, "accueil")
    refused = client.post("/patients/P1/promesse", data={"paye_le": "2025-06-20"})
    assert refused.status_code == 403
    client.post("/deconnexion", data={"csrf_token": csrf_of(client.get("/patients").text)})
    log_in(client, "audit")
    token = csrf_of(client.get("/audit").text)
    assert client.post("/patients/P1/promesse", data={"csrf_token": token, "paye_le": "2025-06-20"}).status_code == 403
    assert events(clinic, "promise") == []


def test_a_dispute_opened_from_the_page_stops_the_letters_and_shows_its_60_day_clock(clinic, as_role):
    client = as_role("accueil")
    response = post_form(client, "/patients/P2/contestation", {"facture": "F2025-000103", "canal": "phone",
                                                               "categorie": "amount", "motif": "conteste le montant"},
                         page="/patients/P2")
    assert response.status_code == 303
    page = visible(client.get(response.headers["location"]).text)
    assert "Contestation enregistrée" in page and "Contestée : pas de relance" in page
    assert "Facture F2025-000103, reçue le 02/06/2025 — ouverte : réponse due le 01/08/2025 (60 jour(s) restant(s))" in page
    [(payload, actor, patient)] = [e for e in events(clinic, "dispute_open") if e[2] == "P2"]
    assert (payload["answer_due"], payload["channel"], actor) == ("2025-08-01", "phone", "accueil")


def test_a_second_dispute_on_an_invoice_or_one_on_another_patients_invoice_is_refused(clinic, as_role):
    client = as_role("accueil")
    again = post_form(client, "/patients/P1/contestation", {"facture": "F2025-000102", "motif": "conteste"})
    assert again.status_code == 400 and "Une contestation est déjà en cours sur la facture F2025-000102." in visible(again.text)
    other = post_form(client, "/patients/P1/contestation", {"facture": "F2025-000103", "motif": "conteste"})
    assert other.status_code == 400 and "n'est pas une facture de ce patient" in visible(other.text)
    assert len(events(clinic, "dispute_open")) == 1         # the fixture's own


def test_a_plan_is_proposed_then_its_acceptance_recorded_from_the_page_both_audited_with_the_user(clinic, as_role,
                                                                                                 desk_settings):
    close_dispute(clinic, 1, on=date(2025, 6, 1))
    client = as_role("accueil")
    proposed = post_form(client, "/patients/P1/echeancier", {"mois": "3"})
    assert proposed.status_code == 303
    page = visible(client.get(proposed.headers["location"]).text)
    assert "Échéancier proposé" in page and "Proposé le 02/06/2025 : 45,00 € en 3 mensualité(s)" in page
    assert "Réponse attendue jusqu'au" in page
    assert (desk_settings.paths.output / "plans" / "echeancier_1.pdf").exists()
    twice = post_form(client, "/patients/P1/echeancier", {"mois": "3"})
    assert twice.status_code == 400 and "attend la réponse du patient" in visible(twice.text)
    accepted = post_form(client, "/patients/P1/echeancier/acceptation", {"echeancier": "1"})
    assert accepted.status_code == 303
    page = visible(client.get(accepted.headers["location"]).text)
    assert "Acceptation enregistrée" in page and "En cours le 02/06/2025" in page
    assert [(e[1], e[2]) for e in events(clinic, "plan_proposed")] == [("accueil", "P1")]
    assert [(e[1], e[2]) for e in events(clinic, "plan_accepted")] == [("accueil", "P1")]


def test_a_plan_for_a_patient_whose_shares_are_still_awaited_from_insurers_is_refused_in_french(clinic, as_role):
    client = as_role("accueil")
    refused = post_form(client, "/patients/P2/echeancier", {"mois": ""}, page="/patients/P2")
    assert refused.status_code == 409 and "ne doit rien qu'un échéancier pourrait couvrir" in visible(refused.text)
    assert events(clinic, "plan_proposed") == []
