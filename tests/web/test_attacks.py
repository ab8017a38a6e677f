"""Attacks on the web app beyond the issue's list: markup and template text in a patient's name and in the
search box, SQL in the search box and in the path, paths that climb out of the letters' folder."""

from __future__ import annotations

from sqlalchemy import text

from recouvrement.app.imports import import_file
from tests.app.world import INVOICE_HEADER, write

NAME = '<script>alert(1)</script>"><img src=x onerror=alert(1)>{{ 7*7 }}'
ROW = (f"F2025-000301;01/04/2025;15/04/2025;P9;{NAME};Claire;5 rue Haute;75011;Paris;;;;45,00;0;0;45,00;;none;;")


def test_markup_and_template_text_in_a_name_are_shown_as_text_on_every_page(clinic, settings, tmp_path, as_role):
    import_file(clinic, write(tmp_path / "hostile.csv", INVOICE_HEADER, [ROW]), settings)
    client = as_role("accueil")
    pages = [client.get("/patients", params={"q": "P9"}).text, client.get("/patients/P9").text,
             client.get("/patients/P9/releve").text, client.get("/appels").text]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1] and "{{ 7*7 }}" in pages[1]


def test_markup_typed_in_the_search_box_is_shown_back_as_text(as_role):
    page = as_role("accueil").get("/patients", params={"q": '"><script>alert(1)</script>{{ 7*7 }}'}).text
    assert "<script>alert" not in page and "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}" in page


def test_sql_in_the_search_box_and_in_a_patient_path_finds_nobody_and_changes_nothing(clinic, as_role):
    client = as_role("accueil")
    with clinic.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one()
    for attack in ("' OR '1'='1", "%' OR 1=1 --", "'; DROP TABLE patient; --"):
        page = client.get("/patients", params={"q": attack}).text
        assert 'href="/patients/P' not in page
        assert client.get(f"/patients/P1{attack}").status_code == 404
    with clinic.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one() == before


def test_a_path_climbing_out_of_the_letters_is_a_404_and_reads_no_file(as_role):
    client = as_role("accueil")
    for path in ("/courriers/..%2F..%2F..%2Fetc%2Fpasswd/apercu", "/courriers/lots/..%2F..%2Fetc%2Fpasswd",
                 "/courriers/lots/%2E%2E", "/courriers/%2E%2E/pdf", "/static/..%2F..%2F..%2Fetc%2Fpasswd",
                 "/static/%2E%2E/%2E%2E/app.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "root:" not in response.text and "import" not in response.text
