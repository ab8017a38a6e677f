"""The QR code matrix made by render/qr_code.py is segno's, module for module (issue #16: segno's encoder cost 2 ms a
letter; the codes must stay the very codes segno makes, so every banking app reads them as before)."""

from __future__ import annotations

import segno
from hypothesis import given, settings, strategies as st

from recouvrement.render.qr_code import qr_matrix
from recouvrement.render.sepa_qr import MASK, epc_payload
from recouvrement.render.views import KINDS, specimen


def segno_matrix(data: bytes) -> tuple[bytes, ...]:
    code = segno.make(data, error="m", boost_error=False, micro=False, mask=MASK)
    assert code.mode == "byte"
    return tuple(bytes(row) for row in code.matrix)


def ours(data: bytes) -> tuple[bytes, ...]:
    return tuple(bytes(row) for row in qr_matrix(data, MASK))


def test_the_matrix_of_every_letter_kind_s_payload_is_segno_s():
    for kind in KINDS:
        for view in (specimen(kind, invoices=3, guarantor=True), specimen(kind, invoices=1)):
            data = epc_payload(view).encode("utf-8")
            assert ours(data) == segno_matrix(data)


def test_the_matrix_is_segno_s_on_both_sides_of_every_version_s_capacity_up_to_40():
    # Every length up to 120 bytes, then the edges of each version's capacity (where the version, the terminator, the
    # padding and the pad codewords change) up to the largest code.
    from recouvrement.render.qr_code import _data_codewords
    edges = [_data_codewords(v) - (2 if v < 10 else 3) for v in range(1, 41)]
    lengths = sorted(set(range(1, 121)) | {n + d for n in edges for d in (-2, -1, 0, 1)} - {2332, 2333})
    filler = "Centre de santé des Lilas\nRF18539007547034\n"
    versions = set()
    for length in lengths:
        data = ("BCD\n" + filler * (length // len(filler) + 1)).encode("utf-8")[:length]
        data = data if b"\n" in data else b"\n" * length     # byte mode, as segno chooses for every EPC payload
        expected = segno_matrix(data)
        assert ours(data) == expected, length
        versions.add(len(expected))
    assert len(versions) == 40


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=330))
def test_the_matrix_of_any_text_holding_a_line_break_is_segno_s(text):
    data = ("BCD\n" + text).encode("utf-8")
    assert ours(data) == segno_matrix(data)


def test_data_too_large_for_any_version_is_refused():
    import pytest
    with pytest.raises(ValueError):
        qr_matrix(b"\n" * 2332)
