"""The file scanner: text out of PDF, e-mail, HTML, JSON and CSV files, folders, and the write guard."""

from __future__ import annotations

import html
from email.message import EmailMessage
from pathlib import Path

import pytest
import weasyprint

from recouvrement.errors import RecouvrementError
from recouvrement.scanner import (
    PrivacyLeak, ensure_clean, extract_text, format_finding, scan_file, scan_paths,
)

CLEAN_LETTER = (Path(__file__).parent / "data" / "privacy" / "clean_letter.txt").read_text(encoding="utf-8")
LEAK = "Suite à votre séance de chimiothérapie"


def letter_html(body: str) -> str:
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in body.splitlines() if line.strip())
    return f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Relance</title></head>\n" \
           f"<body>\n{paragraphs}\n</body></html>\n"


def write_pdf(path: Path, body: str) -> Path:
    weasyprint.HTML(string=letter_html(body)).write_pdf(path)
    return path


def write_eml(path: Path, body: str, *, attachment_name: str | None = None, cte: str = "base64") -> Path:
    message = EmailMessage()
    message["From"] = "Centre de santé des Lilas <facturation@lilas.example>"
    message["To"] = "eloise.lefevre@example.org"
    message["Subject"] = "Relance amiable - facture F2025-000123"
    message.set_content(body, cte=cte)
    message.add_alternative(letter_html(body), subtype="html", cte=cte)
    if attachment_name:
        message.add_attachment(b"%PDF-", maintype="image", subtype="png", filename=attachment_name)
    path.write_bytes(message.as_bytes())
    return path


def kinds(path: Path) -> list[str]:
    return [f.kind for f in scan_file(path)]


# ---------------------------------------------------------------- PDF

def test_a_clean_pdf_letter_passes(tmp_path):
    assert scan_file(write_pdf(tmp_path / "relance.pdf", CLEAN_LETTER)) == []


def test_a_leak_in_a_pdf_letter_is_found(tmp_path):
    path = write_pdf(tmp_path / "relance.pdf", CLEAN_LETTER + "\n" + LEAK)
    assert kinds(path) == ["lexicon"]


def test_the_pure_python_pdf_reader_finds_the_leak_too(tmp_path):
    from recouvrement.scanner import _pypdf_text  # the fallback when poppler is not installed
    path = write_pdf(tmp_path / "relance.pdf", CLEAN_LETTER + "\n" + LEAK)
    assert "chimiothérapie" in _pypdf_text(path.read_bytes(), str(path))


def test_a_file_that_is_not_a_pdf_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"not a pdf")
    with pytest.raises(RecouvrementError, match="broken.pdf"):
        extract_text(path)


# ---------------------------------------------------------------- e-mail

@pytest.mark.parametrize("cte", ["base64", "quoted-printable"])
def test_a_clean_email_passes(tmp_path, cte):
    assert scan_file(write_eml(tmp_path / "relance.eml", CLEAN_LETTER, cte=cte)) == []


@pytest.mark.parametrize("cte", ["base64", "quoted-printable"])
def test_a_leak_in_an_email_is_found_in_its_text_and_html_parts(tmp_path, cte):
    path = write_eml(tmp_path / "relance.eml", CLEAN_LETTER + "\n" + LEAK, cte=cte)
    assert kinds(path) == ["lexicon", "lexicon"]


def test_an_attachment_file_name_is_scanned(tmp_path):
    path = write_eml(tmp_path / "relance.eml", CLEAN_LETTER, attachment_name="compte-rendu-IRM.png")
    assert kinds(path) == ["lexicon"]


def test_an_email_subject_is_scanned(tmp_path):
    message = EmailMessage()
    message["Subject"] = "Votre dialyse du 3 mars"
    message.set_content("Bonjour")
    path = tmp_path / "mail.eml"
    path.write_bytes(message.as_bytes())
    assert [(f.line, f.kind) for f in scan_file(path)] == [(1, "lexicon")]


# ---------------------------------------------------------------- HTML, JSON, CSV, text

def test_a_clean_html_letter_passes(tmp_path):
    path = tmp_path / "relance.html"
    path.write_text(letter_html(CLEAN_LETTER), encoding="utf-8")
    assert scan_file(path) == []


def test_a_leak_in_an_html_page_is_found_on_its_source_line(tmp_path):
    path = tmp_path / "relance.html"
    path.write_text("<html>\n<body>\n<p>Madame,</p>\n<p>s&eacute;ance de <b>chimio</b>th&eacute;rapie</p>\n"
                    "</body></html>", encoding="utf-8")
    assert [(f.line, f.kind) for f in scan_file(path)] == [(4, "lexicon")]


def test_html_attributes_and_comments_that_travel_with_the_page_are_scanned(tmp_path):
    path = tmp_path / "page.html"
    path.write_text('<p><img src="a.png" alt="Radiographie"></p>\n<!-- acte HBLD038 -->', encoding="utf-8")
    assert kinds(path) == ["lexicon", "ccam"]


def test_html_text_keeps_words_split_by_inline_tags_whole(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<td>Dialy<span>se</span></td><td>Montant</td>", encoding="utf-8")
    assert "Dialyse" in extract_text(path)
    assert "Montant" in extract_text(path)


def test_json_escapes_do_not_hide_a_word(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('{"motif": "\\u00e9chographie",\n "note": "ok\\nPsychiatrie"}', encoding="utf-8")
    assert [(f.line, f.kind) for f in scan_file(path)] == [(1, "lexicon"), (2, "lexicon")]


def test_a_windows_1252_csv_is_read_with_its_accents(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("facture;motif\nF2025-000123;Échographie\n".encode("cp1252"))
    assert [(f.line, f.kind) for f in scan_file(path)] == [(2, "lexicon")]


def test_an_unknown_file_type_is_read_as_text(tmp_path):
    path = tmp_path / "notes.log"
    path.write_bytes(b"ok\n\xe9t\xe9 AMI 3\n")  # not UTF-8: read as Windows-1252
    assert [(f.line, f.kind) for f in scan_file(path)] == [(2, "ngap")]


# ---------------------------------------------------------------- folders and reports

def test_folders_are_scanned_recursively_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("dialyse", encoding="utf-8")
    (tmp_path / "b" / "a.txt").write_text("ok\nDEQP003", encoding="utf-8")
    (tmp_path / "a.txt").write_text(CLEAN_LETTER, encoding="utf-8")
    found = scan_paths([tmp_path])
    assert [(p.relative_to(tmp_path).as_posix(), f.line, f.kind) for p, f in found] == [
        ("b/a.txt", 2, "ccam"), ("b/z.txt", 1, "lexicon")]


def test_hidden_folders_are_left_out_of_a_folder_scan(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "note").write_text("dialyse", encoding="utf-8")
    assert scan_paths([tmp_path]) == []


def test_a_file_given_twice_is_scanned_once(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("dialyse", encoding="utf-8")
    assert len(scan_paths([path, tmp_path])) == 1


def test_a_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(RecouvrementError, match="nowhere"):
        scan_paths([tmp_path / "nowhere"])


def test_a_finding_is_printed_as_file_line_kind_excerpt(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("ligne\nActe DEQP003 le 3 mars", encoding="utf-8")
    [(where, finding)] = scan_paths([path])
    assert format_finding(where, finding) == f"{path}:2: ccam: Acte [ccam:****] le 3 mars"


# ---------------------------------------------------------------- the write guard

def test_a_clean_document_may_be_written():
    ensure_clean(CLEAN_LETTER, "relance-F2025-000123.pdf")


def test_a_leaking_document_is_refused_with_its_name_the_kinds_and_lines_found():
    with pytest.raises(PrivacyLeak) as refused:
        ensure_clean("Madame,\nActe DEQP003, cotation AMI 3\ndialyse\nIRM\nVIH", "relance-42.pdf")
    message = str(refused.value)
    assert message.startswith("relance-42.pdf:2: document refusé")
    assert "5 constats" in message and "lignes 2, 3, 4 et 1 autre" in message
    assert "code d'acte CCAM" in message and "terme de soin" in message
    assert "DEQP003" not in message and "AMI 3" not in message and "dialyse" not in message
    assert len(refused.value.findings) == 5


def test_a_refusal_says_how_to_proceed_in_french():
    with pytest.raises(PrivacyLeak) as refused:
        ensure_clean("Madame,\nvotre séance de kiné", "L20261123-P42-1.html")
    message = str(refused.value)
    assert message.startswith("L20261123-P42-1.html:2: ")
    assert "réimportez" in message and "[creditor]" in message


def test_a_refusal_quotes_no_word_of_the_document():
    """The excerpts (masked tokens, but their context) stay in the findings, out of the message."""
    with pytest.raises(PrivacyLeak) as refused:
        ensure_clean("Madame Éloïse Lefèvre, 12 rue des Lilas\nsuivi de grossesse", "L1.html")
    message = str(refused.value)
    assert "Lefèvre" not in message and "Lilas" not in message and "suivi" not in message
    assert "grossesse" not in message


def test_a_privacy_leak_is_a_recouvrement_error():
    with pytest.raises(RecouvrementError):
        ensure_clean("IVG", "export.csv")


def test_a_csv_s_key_columns_are_identifiers_to_the_file_scan_but_its_other_cells_are_not(tmp_path):
    path = tmp_path / "export.csv"
    """The file scan tells identifiers by their values, not their cells: "P10" typed as a name on line 3 is
    not told from the patient P10 here (render.csvfile masks it before, scanning free-text cells alone)."""
    path.write_text("patient_id;nom;note\nP10;Martin;\nP11;Durand;P10.1\nP12;Durand;J45\n", encoding="utf-8")
    assert [(f.line, f.kind) for f in scan_file(path)] == [(3, "cim10"), (4, "cim10")]
    path.write_text("nom;note\nP10;Martin\n", encoding="utf-8")
    assert [(f.line, f.kind) for f in scan_file(path)] == [(2, "cim10")]


def test_an_e_mail_s_parts_the_caller_scanned_are_not_read_twice_but_its_headers_and_other_parts_are():
    import dataclasses

    from recouvrement.channels.email import email_bytes, email_html
    from recouvrement.core.privacy import scan_text
    from recouvrement.scanner import email_text
    from recouvrement.render.letters import render_html, render_text
    from recouvrement.render.views import specimen
    view = specimen("relance_1")
    html, text = render_html(view), render_text(view)
    data = email_bytes(view, "facturation@cds-lilas.example", html, text)
    whole, skipped = email_text(data, "l.eml"), email_text(data, "l.eml", scanned=(text, email_html(view, html)))
    assert view.lines[0].invoice_number in whole and view.lines[0].invoice_number not in skipped
    assert skipped.count("\n") == whole.count("\n") and "Subject: " in skipped      # the same lines, headers read
    assert scan_text(skipped) == []
    planted = dataclasses.replace(view, recipient=dataclasses.replace(view.recipient, name="Claire Cardiologie"))
    data = email_bytes(planted, "facturation@cds-lilas.example", html, text + "\nSuivi de chimiothérapie\n")
    read = email_text(data, "l.eml", scanned=(text, email_html(planted, html)))
    flagged = [read.splitlines()[f.line - 1] for f in scan_text(read)]
    assert any(line.startswith("To: ") for line in flagged)            # a header is always read
    assert any("chimiothérapie" in line for line in flagged)           # a part that is not the scanned text too
