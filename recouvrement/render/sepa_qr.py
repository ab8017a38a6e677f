"""The SEPA credit-transfer QR code of a letter (EPC069-12 "SCT", version 002, UTF-8), encoded by segno.

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
import struct
import zlib
from collections.abc import Sequence

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
    return "\n".join((_creditor_fields(view.creditor.bic, view.creditor.name, view.creditor.iban),
                      f"EUR{cents // 100}.{cents % 100:02d}", "", reference))


@functools.lru_cache(maxsize=64)
def _creditor_fields(bic: str, name: str, iban: str) -> str:
    """The code's first lines, the creditor's: the same in every letter of a night (stdnum's compact, kept)."""
    return "\n".join(("BCD", "002", "1", "SCT", bic_number.compact(bic), " ".join(name.split())[:MAX_NAME],
                      iban_number.compact(iban)))


# One fixed mask: choosing the best of the 8 (segno's default, ISO 18004's penalty rules) cost 13 ms of CPU a letter,
# more than half of a letter's whole budget (issue #16), and every decoder reads any mask. Mask 0 (a checkerboard)
# never draws the long runs and big blocks the rules guard against; the codes are scanned back from printed pages in
# tests/render/test_sepa_qr.py.
MASK = 0


@functools.lru_cache(maxsize=16384)
def _png(payload: str) -> bytes:
    """The QR code as a PNG, one pixel a module (the page scales it, crisp: see letter.css), error level M as
    EPC069-12 asks, 4 modules of quiet zone; byte mode, so the UTF-8 text travels as it is (about 2 ms a code,
    kept per payload: a night's plan proposals and repeated letters ask the same one again)."""
    code = segno.make(payload.encode("utf-8"), error="m", boost_error=False, micro=False, mask=MASK)
    return png_of(code.matrix)


QUIET_ZONE = 4
# A module's bit in a 1-bit greyscale PNG row: light (0) is white, 1; dark is black, 0.
_BITS = bytes([ord("1")] + [ord("0")] * 255)


def png_of(matrix: Sequence[bytes | bytearray]) -> bytes:
    """A code's matrix (rows of 1 dark, 0 light) as a 1-bit greyscale PNG, one pixel a module, with its quiet zone:
    the bytes segno's own PNG writer makes (`code.save(kind="png", scale=1, border=4)`, held by
    tests/render/test_sepa_qr.py), in a quarter of a millisecond instead of 1.3 (its writer walks the modules one by
    one in Python: issue #16)."""
    size = len(matrix) + 2 * QUIET_ZONE
    pad = -size % 8
    width = (size + pad) // 8
    edge = b"1" * QUIET_ZONE
    quiet = b"\0" + int("1" * size + "0" * pad, 2).to_bytes(width, "big")
    rows = [quiet] * QUIET_ZONE
    rows += [b"\0" + int(edge + bytes(row).translate(_BITS) + edge + b"0" * pad, 2).to_bytes(width, "big")
             for row in matrix]
    rows += [quiet] * QUIET_ZONE
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)   # 1 bit, greyscale, deflate, no filter, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_png(view: LetterView) -> bytes:
    return _png(epc_payload(view))


def qr_data_uri(view: LetterView) -> str:
    """The PNG as a data: URI, for the letter's HTML (the PDF); the e-mail carries it as an inline part."""
    return "data:image/png;base64," + base64.b64encode(qr_png(view)).decode("ascii")
