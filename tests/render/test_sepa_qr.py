"""The SEPA transfer QR code (EPC069-12) on the letters: rendered, printed, scanned back and read field by field."""

from __future__ import annotations

import email
import email.policy
import subprocess
from pathlib import Path

import pytest
from stdnum import iso11649

from recouvrement.channels.email import build_email
from recouvrement.core.privacy import scan_text
from recouvrement.render.letters import render_html, render_text
from recouvrement.render.pdf import render_pdf
from recouvrement.render.sepa_qr import epc_payload, qr_png
from recouvrement.render.views import KINDS, specimen


def scanned(pdf: bytes, folder: Path) -> list[str]:
    """Every QR code on the PDF's pages, as a banking app's camera would read the printed sheet (300 dpi)."""
    (folder / "letter.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "300", "-png", str(folder / "letter.pdf"), str(folder / "page")], check=True)
    codes = []
    for page in sorted(folder.glob("page*.png")):
        found = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", "-Sbinary", str(page)],
                               capture_output=True)
        if found.returncode == 0:
            codes.append(found.stdout.decode("utf-8").removesuffix("\n"))
    return codes


@pytest.mark.parametrize("kind", KINDS)
def test_the_qr_code_on_a_printed_letter_decodes_to_the_epc_transfer_fields(kind, tmp_path):
    view = specimen(kind, f"QR-{kind}", invoices=2, also_due=1 if kind == "relance_2" else 0)
    code, = scanned(render_pdf(render_html(view)), tmp_path)
    lines = code.split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]            # service tag, version 002, UTF-8, SEPA credit transfer
    assert lines[4] == "AGRIFRPPXXX"                          # the creditor's BIC
    assert lines[5] == "Centre de santé des Lilas"            # its name, accents intact (UTF-8)
    assert lines[6] == "FR7630006000011234567890189"          # its IBAN, compact
    if kind == "proposition_echeancier":                      # the first instalment, under the first invoice's reference
        cents, reference = view.instalments[0][1], view.lines[0].rf_reference
    else:                                                     # the whole letter, under the letter's own reference
        cents, reference = view.total_due_cents + view.also_due_total_cents, view.payment_reference
    assert lines[7] == f"EUR{cents // 100}.{cents % 100:02d}"
    assert lines[8] == ""                                     # no purpose code: it could say what was paid for
    assert lines[9] == reference and iso11649.is_valid(lines[9])
    assert len(lines) == 10                                   # no free text, no note to the payer


def test_the_payload_carries_nothing_but_the_transfer(tmp_path):
    for kind in KINDS:
        view = specimen(kind, guarantor=True, invoices=3)
        assert scan_text(epc_payload(view)) == []
        assert "Martin" not in epc_payload(view) and "F2026" not in epc_payload(view).replace(view.lines[0].rf_reference, "")


def test_the_e_mail_carries_the_same_qr_code_as_an_inline_image():
    view = specimen("relance_1", invoices=2)
    message = build_email(view, "facturation@cds-lilas.example", render_html(view), render_text(view))
    parsed = email.message_from_bytes(message.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    image, = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
    assert image["Content-ID"] == f"<qr.{view.letter_id}@recouvrement>"
    assert f'src="cid:qr.{view.letter_id}@recouvrement"' in html and "data:image" not in html
    assert image.get_payload(decode=True) == qr_png(view)


def test_the_png_of_the_e_mail_decodes_to_the_payload(tmp_path):
    from PIL import Image
    view = specimen("mise_en_demeure", invoices=2)
    (tmp_path / "qr.png").write_bytes(qr_png(view))
    with Image.open(tmp_path / "qr.png") as image:                 # a phone sees it larger than 1 px a module
        image.resize((image.width * 8, image.height * 8), Image.NEAREST).save(tmp_path / "big.png")
    found = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sbinary", str(tmp_path / "big.png")],
                           capture_output=True, check=True)
    assert found.stdout.decode("utf-8").removesuffix("\n") == epc_payload(view)


@pytest.mark.parametrize("kind", KINDS)
def test_the_png_is_byte_for_byte_the_one_segno_s_own_writer_makes(kind):
    import io

    import segno

    from recouvrement.render.sepa_qr import MASK
    payload = epc_payload(specimen(kind, invoices=3, guarantor=True))
    code = segno.make(payload.encode("utf-8"), error="m", boost_error=False, micro=False, mask=MASK)
    theirs = io.BytesIO()
    code.save(theirs, kind="png", scale=1, border=4)
    assert qr_png(specimen(kind, invoices=3, guarantor=True)) == theirs.getvalue()
