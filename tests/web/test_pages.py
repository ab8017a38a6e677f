"""The front desk's patient account and the accountant's exceptions workbench, through the web app."""

from __future__ import annotations

import json
import re

from sqlalchemy import text

from tests.web.conftest import csrf_of


def visible(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def test_a_patient_is_found_by_a_misspelt_name_given_in_any_order(as_role):
    page = as_role("accueil").get("/patients", params={"q": "eloise lefebvre"}).text
    assert 'href="/patients/P1"' in page and "P2" not in visible(page)


def test_a_patient_is_found_by_an_invoice_number_written_another_way(as_role):
    page = as_role("accueil").get("/patients", params={"q": "f2025 000103"}).text
    assert 'href="/patients/P2"' in page and "facture F2025-000103" in page


def test_the_search_answers_htmx_with_the_results_only(as_role):
    response = as_role("accueil").get("/patients", params={"q": "fontaine"},
                                      headers={"HX-Request": "true", "HX-Target": "resultats"})
    assert response.text.lstrip().startswith("<ul") and 'href="/patients/P2"' in response.text


def test_the_account_says_what_the_patient_owes_and_each_shares_state(as_role):
    page = visible(as_role("accueil").get("/patients/P1").text)
    assert "Ce que le patient doit au 02/06/2025 55,00 €" in page
    assert "Assurance Maladie (CPAM) 70,00 € 70,00 € 0,00 € payée" in page
    assert "MGEN 20,00 € 0,00 € 20,00 € attendue de la mutuelle" in page
    assert "Patient 10,00 € 0,00 € 10,00 € à régler par le patient" in page
    assert "Contestée : pas de relance" in page and "réponse due le 19/07/2025 (47 jour(s) restant(s))" in page
    assert "01/03/2025 CPAM F2025-000101 70,00 €" in page


def test_an_unknown_patient_is_a_404_page_in_french(as_role):
    response = as_role("accueil").get("/patients/P999")
    assert response.status_code == 404 and "Ce patient n'existe pas" in response.text


def test_the_queue_ranks_the_invoice_with_the_payers_name_and_exact_amount_first(as_role):
    page = as_role("compta").get("/exceptions").text
    card = page[page.index("ELOISE LEFEVR"):page.index("URSSAF IDF")]
    body = card[card.index("<tbody>"):]
    first = visible(body[:body.index("</tr>")])
    assert "F2025-000101" in first and "nom proche de ELOISE LEFEVRE" in first
    assert "montant exact de la part patient ouverte" in first
    reference = page[page.index("J F FONTAINNE"):]
    assert "F2025-000103" in reference and "référence : « 000103 »" in visible(reference)


def test_one_click_match_allocates_the_payment_and_audits_it_with_the_user(clinic, as_role):
    client = as_role("compta")
    token = csrf_of(client.get("/exceptions").text)
    response = client.post("/exceptions/Q-NAME/rapprocher", data={"csrf_token": token, "facture": "F2025-000101"})
    assert response.status_code == 200 and "Paiement rapproché." in response.text
    assert "ELOISE LEFEVR" not in response.text
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT invoice_number, amount_cents, rule FROM allocation WHERE payment_id = "
                                 "'Q-NAME'")).all() == [("F2025-000101", 1000, "manual")]
        actor = conn.execute(text("SELECT actor FROM audit_event WHERE kind = 'manual_match'")).scalar_one()
    assert actor == "compta"


def test_matching_a_payment_someone_already_matched_tells_the_second_user_and_allocates_nothing(clinic, as_role):
    client = as_role("compta")
    token = csrf_of(client.get("/exceptions").text)
    client.post("/exceptions/Q-NAME/rapprocher", data={"csrf_token": token, "facture": "F2025-000101"})
    second = client.post("/exceptions/Q-NAME/rapprocher", data={"csrf_token": token, "facture": "F2025-000102"})
    assert second.status_code == 409 and "un autre utilisateur l&#39;a traité" in second.text
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM allocation WHERE payment_id = 'Q-NAME'")).scalar_one() == 1


def test_dismissing_a_receipt_takes_it_out_of_the_queue_with_its_reason_and_never_makes_a_credit(clinic, as_role):
    client = as_role("compta")
    token = csrf_of(client.get("/exceptions").text)
    response = client.post("/exceptions/Q-URSSAF/ecarter", data={"csrf_token": token, "motif": "organisme",
                                                                 "note": "cotisations du 1er trimestre"})
    assert "Paiement écarté de la file." in response.text and "URSSAF IDF" not in response.text
    with clinic.connect() as conn:
        kind, reason, patient = conn.execute(text("SELECT kind, reason, patient_id FROM payment_exception "
                                                  "WHERE payment_id = 'Q-URSSAF'")).one()
        payload, actor = conn.execute(text("SELECT payload, actor FROM audit_event WHERE kind = 'payment_dismissed'")).one()
        event = json.loads(payload)
        assert conn.execute(text("SELECT COUNT(*) FROM allocation WHERE payment_id = 'Q-URSSAF'")).scalar_one() == 0
    assert kind == "dismissed" and patient is None and "URSSAF" in reason and "1er trimestre" in reason
    assert actor == "compta" and event["category"] == "organisme"


def test_a_wrong_amount_is_explained_in_french_and_changes_nothing(clinic, as_role):
    client = as_role("compta")
    token = csrf_of(client.get("/exceptions").text)
    response = client.post("/exceptions/Q-REF/rapprocher", data={"csrf_token": token, "facture": "F2025-000103",
                                                                "montant": "6,00"})
    assert response.status_code == 409 and "impossible d&#39;affecter 6,00" in response.text
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM allocation WHERE payment_id = 'Q-REF'")).scalar_one() == 0


def test_today_shows_disputes_nearing_their_60_days_and_the_waiting_payments(clinic, app):
    from starlette.testclient import TestClient

    from recouvrement.web.app import create_app
    from tests.web.conftest import log_in
    later = create_app(clinic, today=lambda: __import__("datetime").date(2025, 7, 12))
    with TestClient(later, base_url="https://testserver") as client:
        log_in(client, "compta")
        page = visible(client.get("/aujourdhui").text)
    assert "Facture F2025-000102 : réponse due le 19/07/2025 (dans 7 jour(s))" in page
    assert "3 paiement(s) attendent" in page and "Aucun run de nuit pour l'instant." in page
