"""The one-page relevé de compte the desk prints for a patient: its PDF, refused whole if the privacy scanner
finds anything in it (the page is rendered by the web app from the patient's account, never a care detail)."""

from __future__ import annotations

from recouvrement.config import Settings


def statement_pdf(html: str, name: str, settings: Settings) -> bytes:
    """The statement's HTML as PDF bytes; PrivacyLeak (a RecouvrementError) when the HTML or the PDF holds
    medical data."""
    from recouvrement.render.pdf import render_pdf
    from recouvrement.scanner import ensure_clean, html_text, known_texts, pdf_text
    known = known_texts(settings)
    ensure_clean(html_text(html), f"{name}.html", known=known)
    pdf = render_pdf(html)
    ensure_clean(pdf_text(pdf, f"{name}.pdf"), f"{name}.pdf", known=known)
    return pdf
