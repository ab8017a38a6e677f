"""The SEPA credit-transfer QR code of a letter (EPC069-12 "SCT", version 002, UTF-8), made with segno.

A banking app that scans it fills the transfer: the creditor's name, BIC and IBAN, the amount due and the
letter's RF reference; nothing else (no purpose code, no free text), so nothing medical can travel in it.

>>> from recouvrement.render.views import specimen
>>> print(epc_payload(specimen("relance_1", invoices=2)))
BCD
002
1
SCT
AGRIFRPPXXX
Centre de santé des Lilas
FR7630006000011234567890189
EUR57.34
<BLANKLINE>
RF42LB5XA1518D5GF267
"""

from __future__ import annotations

import base64
import functools

import segno
from stdnum import bic as bic_number, iban as iban_number

from recouvrement.render.views import LetterView

MAX_NAME = 70          # EPC069-12: the beneficiary's name, at most 70 characters
MAX_CENTS = 99_999_999_999


def amount_and_reference(view: LetterView) -> tuple[int, str]:
    """What the code asks: the letter's whole amount under its own reference; for a plan proposal, the first
    instalment under the reference its instalments quote (that of its first invoice)."""
    if view.payment_reference:
        return view.total_due_cents + view.also_due_total_cents, view.payment_reference
    if view.instalments:
        return view.instalments[0][1], view.lines[0].rf_reference
    return view.total_due_cents, view.lines[0].rf_reference


def epc_payload(view: LetterView) -> str:
    """The code's text: one field a line, the last one the RF reference (no line break after it)."""
    cents, reference = amount_and_reference(view)
    if not 1 <= cents <= MAX_CENTS:
        raise ValueError(f"letter {view.letter_id}: a transfer QR code needs an amount from 0.01 to 999999999.99 EUR")
    creditor = view.creditor
    fields = ["BCD", "002", "1", "SCT", bic_number.compact(creditor.bic), " ".join(creditor.name.split())[:MAX_NAME],
              iban_number.compact(creditor.iban), f"EUR{cents // 100}.{cents % 100:02d}", "", reference]
    return "\n".join(fields)


# One fixed mask: choosing the best of the 8 (segno's default, ISO 18004's penalty rules) cost 13 ms of CPU a letter,
# more than half of a letter's whole budget (issue #16), and every decoder reads any mask. Mask 0 (a checkerboard)
# never draws the long runs and big blocks the rules guard against; the codes are scanned back from printed pages in
# tests/render/test_sepa_qr.py.
MASK = 0


@functools.lru_cache(maxsize=16384)
def _png(payload: str) -> bytes:
    """The QR code as a PNG, one pixel a module (the page scales it, crisp: see letter.css), error level M as
    EPC069-12 asks, 4 modules of quiet zone."""
    import io
    code = segno.make(payload.encode("utf-8"), error="m", boost_error=False, micro=False, mask=MASK)
    out = io.BytesIO()
    code.save(out, kind="png", scale=1, border=4)
    return out.getvalue()


def qr_png(view: LetterView) -> bytes:
    return _png(epc_payload(view))


def qr_data_uri(view: LetterView) -> str:
    """The PNG as a data: URI, for the letter's HTML (the PDF); the e-mail carries it as an inline part."""
    return "data:image/png;base64," + base64.b64encode(qr_png(view)).decode("ascii")
