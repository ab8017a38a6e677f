"""The one-page relevé de compte: what the patient owes, invoice by invoice, net of credits, with how to pay and
an offer to talk and to spread; as a page and as a PDF; never a care detail; desk staff only."""

from __future__ import annotations

import io

from pypdf import PdfReader

from recouvrement.core.privacy import scan_text
from recouvrement.scanner import html_text, pdf_text
from tests.web.conftest import PLANTED
from tests.web.test_pages import visible


def test_the_statement_lists_the_patients_own_share_of_each_invoice_and_the_net_amount_due(as_role):
    page = as_role("accueil").get("/patients/P1/releve")
    text = visible(page.text)
    assert page.status_code == 200 and "Relevé de compte au 02/06/2025" in text
    assert "F2025-000102 10/02/2025 12/03/2025 45,00 € 0,00 € 45,00 €" in text.replace("\xa0", " ")
    assert "Montant dû 55,00 €" in text.replace("\xa0", " ")
    assert "Centre de santé des Lilas" in text and "FR7630006000011234567890189" in text
    assert "étaler le paiement, sans frais" in text
    assert "script-src" not in page.headers["content-security-policy"]
    assert scan_text(html_text(page.text)) == [] and not any(p.lower() in page.text.lower() for p in PLANTED)


def test_the_statement_pdf_is_one_page_without_a_care_detail(as_role):
    response = as_role("accueil").get("/patients/P1/releve.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content, "releve.pdf")
    assert "Relevé de compte au 02/06/2025" in text and "Retour au compte" not in text
    assert len(PdfReader(io.BytesIO(response.content)).pages) == 1
    assert not any(p.lower() in text.lower() for p in PLANTED)


def test_an_auditor_may_not_print_a_patients_statement(as_role):
    assert as_role("audit").get("/patients/P1/releve").status_code == 403
