"""Splitting one queued payment across several invoices from the exceptions workbench: what is not allocated
stays on the payment in the queue, never a credit; refused in French when it does not fit; accountant only."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.web.conftest import csrf_of
from tests.web.test_pages import visible


def split(client, payment_id: str, rows: list[tuple[str, str]]):
    token = csrf_of(client.get("/exceptions").text)
    data = {"csrf_token": token}
    for k, (invoice, amount) in enumerate(rows, start=1):
        data[f"facture_{k}"], data[f"montant_{k}"] = invoice, amount
    return client.post(f"/exceptions/{payment_id}/repartir", data=data)


def queue_entry(engine, payment_id: str):
    with engine.connect() as conn:
        return conn.execute(text("SELECT kind, remaining_cents, patient_id FROM payment_exception WHERE payment_id = :p"),
                            {"p": payment_id}).first()


def allocations(engine, payment_id: str):
    with engine.connect() as conn:
        return conn.execute(text("SELECT invoice_number, amount_cents, rule FROM allocation WHERE payment_id = :p "
                                 "ORDER BY invoice_number"), {"p": payment_id}).all()


def test_a_payment_split_across_two_invoices_leaves_the_rest_waiting_in_the_queue_never_as_a_credit(clinic, as_role):
    client = as_role("compta")
    response = split(client, "Q-NAME", [("F2025-000101", "4,00"), ("F2025-000102", "3,00")])
    assert response.status_code == 200 and "Paiement réparti ; ce qui reste attend dans la file." in response.text
    assert allocations(clinic, "Q-NAME") == [("F2025-000101", 400, "manual"), ("F2025-000102", 300, "manual")]
    kind, rest, patient = queue_entry(clinic, "Q-NAME")
    assert (kind, rest, patient) == ("unmatched", 300, None)
    card = visible(response.text[response.text.index("ELOISE LEFEVR"):])
    assert card.startswith("ELOISE LEFEVR 3,00 €") and "montant reçu 10,00 €" in card
    with clinic.connect() as conn:
        payload, actor, who = conn.execute(text("SELECT payload, actor, patient_id FROM audit_event "
                                                "WHERE kind = 'payment_split'")).one()
    assert (json.loads(payload)["left_in_queue_cents"], actor, who) == (300, "compta", "P1")


def test_a_split_of_the_whole_payment_takes_it_out_of_the_queue(clinic, as_role):
    response = split(as_role("compta"), "Q-NAME", [("F2025-000101", "6,00"), ("F2025-000102", "4,00")])
    assert "Paiement réparti en entier." in response.text and queue_entry(clinic, "Q-NAME") is None
    assert sum(a for _, a, _ in allocations(clinic, "Q-NAME")) == 1000


def test_a_split_over_the_payment_or_over_an_invoices_due_is_refused_in_french_and_allocates_nothing(clinic, as_role):
    client = as_role("compta")
    over = split(client, "Q-NAME", [("F2025-000101", "8,00"), ("F2025-000102", "5,00")])
    assert over.status_code == 409
    assert "la répartition (13,00 €) dépasse ce qui reste sur le paiement (10,00 €)" in visible(over.text).replace("\xa0", " ")
    too_much = split(client, "Q-NAME", [("F2025-000101", "10,50")])
    assert too_much.status_code == 409 and "il n'y reste que 10,00" in visible(too_much.text)
    half_row = split(client, "Q-NAME", [("F2025-000101", "")])
    assert half_row.status_code == 400 and "Ligne 1 : indiquez la facture et le montant." in visible(half_row.text)
    assert allocations(clinic, "Q-NAME") == [] and queue_entry(clinic, "Q-NAME")[1] == 1000


def test_a_second_split_sees_only_what_the_first_left(clinic, as_role):
    client = as_role("compta")
    split(client, "Q-NAME", [("F2025-000101", "7,00")])
    second = split(client, "Q-NAME", [("F2025-000102", "4,00")])
    assert second.status_code == 409 and "ce qui reste sur le paiement (3,00" in visible(second.text)
    assert sum(a for _, a, _ in allocations(clinic, "Q-NAME")) == 700


def test_the_front_desk_may_not_split_a_payment(clinic, as_role):
    client = as_role("accueil")
    token = csrf_of(client.get("/patients").text)
    response = client.post("/exceptions/Q-NAME/repartir", data={"csrf_token": token, "facture_1": "F2025-000101",
                                                                 "montant_1": "4,00"})
    assert response.status_code == 403 and allocations(clinic, "Q-NAME") == []
