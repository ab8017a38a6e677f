"""NOEMIE PS returns (RSP): blocks and segments, entities, control totals, what becomes a payment."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recouvrement.errors import RecouvrementError
from recouvrement.importers import camt053, cfonb120, noemie, payments_csv
from recouvrement.importers.base import PAYMENT_COLUMNS
from recouvrement.importers.insurers import NoemieNumbers, load_noemie_numbers
from recouvrement.importers.invoices_csv import nir_hash
from recouvrement.importers.noemie import Batch, Clawback, Invoice, Rejection, Remittance, Share, Transfer
from tools.noemie import Identity, assemble, entities, write

KEY = b"test-key"
NIR = "174103581837416"            # a valid NIR (fictional), as the sample clinic's invoices carry them
SENDER = "00000751234567"
PLAIN = NoemieNumbers()


def remittance() -> Remittance:
    """Two transfers of two batches, then rejections outside any transfer: every case once."""
    return Remittance("CP", SENDER, date(2026, 11, 20), transfers=(
        Transfer(date(2026, 11, 20), ("VIR CPAM PARIS 75", "BORDEREAU 4711"), "CPAM75", (
            Batch("001", date(2026, 11, 16), (
                Invoice("024000001", shares=(Share("amo", 1900, "P", 1900), Share("amc", 900, "P", 900, "0123456789"))),
                Invoice("024000002", shares=(Share("amo", 2100, "R"),),
                        rejections=(Rejection("0412", "DROITS NON OUVERTS A CETTE DATE", "F", "O"),)),
            )),
            Batch("002", date(2026, 11, 17), (
                Invoice("024000003", shares=(Share("amo", 2100, "D"),)),
                Invoice("024000004", clawbacks=(Clawback(-700, "IND", "RPR", "D000123", date(2026, 10, 2)),)),
            )),
        )),
        Transfer(date(2026, 11, 21), ("VIR CPAM PARIS 75", "BORDEREAU 4712"), "CPAM75", (
            Batch("003", date(2026, 11, 18), (
                Invoice("024000005", shares=(Share("amo", 1500, "P", -1500),)),
                Invoice("024000006", shares=(Share("amo", 3000, "P", 3000),)),
            )),
        )),
        Transfer(None, batches=(
            Batch("004", date(2026, 11, 19), (
                Invoice("024000007", shares=(Share("amo", 800, "R"),),
                        rejections=(Rejection("A123", "EXONERATION ALD NON JUSTIFIEE", detailed=False),)),
            )),
        )),
    ))


def write_file(tmp_path: Path, data: bytes, name: str = "retour.rsp") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(tmp_path: Path, data: bytes, numbers: NoemieNumbers = PLAIN):
    return noemie.read(write_file(tmp_path, data), nir_key=KEY, numbers=numbers)


def with_nir(r: Remittance, number: str) -> Remittance:
    invoice = next(i for t in r.transfers for b in t.batches for i in b.invoices if i.number == number)
    return noemie.with_invoices(r, {number: replace(invoice, nir_hashes=(nir_hash(NIR, KEY),))})


# --- blocks, segments, sniffing ----------------------------------------------------------------------

def test_the_writer_cuts_the_file_in_128_byte_blocks_with_a_segment_indicator_after_the_first():
    data = write(remittance())
    blocks = [data[i:i + 128] for i in range(0, len(data), 128)]
    assert len(data) % 128 == 0 and len(blocks) > 4
    assert blocks[0].startswith(b"000CP") and blocks[-1].startswith(b"999CP")
    indicators = [b[:1] for b in blocks[1:-1]]
    assert indicators == [b"0"] * (len(indicators) - 1) + [b"1"]


def test_a_noemie_return_is_recognised_by_its_content_whatever_its_name():
    head = write(remittance())[:4096]
    assert noemie.sniff(head, "anything.txt")
    assert not cfonb120.sniff(head, "x.rsp") and not camt053.sniff(head, "x.rsp") \
        and not payments_csv.sniff(head, "x.rsp")


def test_a_cfonb_statement_or_a_csv_is_not_taken_for_a_noemie_return():
    assert not noemie.sniff(b"0130004" + b" " * 113, "releve.rsp")
    assert not noemie.sniff(b"payment_id;payment_date;payer_type\n", "x.rsp")


# --- read back exactly ---------------------------------------------------------------------------------

def test_the_reader_reads_back_exactly_what_the_writer_wrote():
    r = remittance()
    back, _ = noemie.parse(write(r), "retour.rsp", nir_key=KEY)
    assert back == r


def test_the_nir_is_read_only_as_its_keyed_hash():
    r = remittance()
    data = write(r, {"024000001": Identity(NIR, "PAYET", "LAURENT")})
    back, _ = noemie.parse(data, "retour.rsp", nir_key=KEY)
    assert back == with_nir(r, "024000001")
    assert NIR not in repr(back) and "PAYET" not in repr(back)


labels = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", min_size=1, max_size=30).map(str.strip) \
    .filter(bool)
days = st.dates(date(2000, 1, 1), date(2099, 12, 31))


@st.composite
def shares(draw):
    payer = draw(st.sampled_from(["amo", "amc"]))
    state = draw(st.sampled_from(["P", "R", "D", " "]))
    paid = draw(st.integers(-99_999_999, 99_999_999)) if state == "P" else 0
    number = draw(st.text(alphabet="0123456789", min_size=10, max_size=10)) if payer == "amc" else ""
    return Share(payer, draw(st.integers(0, 99_999_999)), state, paid, number)


@st.composite
def invoices(draw):
    rejections = draw(st.lists(st.builds(Rejection, st.text(alphabet="0123456789AB", min_size=1, max_size=4), labels,
                                         st.sampled_from(["F", "L"]), st.sampled_from(["O", "C"]), st.just(True))
                               | st.builds(Rejection, st.text(alphabet="0123456789", min_size=1, max_size=10), labels,
                                           st.just(""), st.just(""), st.just(False)), max_size=2))
    clawbacks = draw(st.lists(st.builds(Clawback, st.integers(-99_999_999, 99_999_999),
                                        st.sampled_from(["IND", "IEC", "ODL"]), st.sampled_from(["RPR", "PAI"]),
                                        st.text(alphabet="ABC0123456789", max_size=10), days | st.none()), max_size=2))
    return Invoice(draw(st.text(alphabet="0123456789", min_size=9, max_size=9)), draw(st.sampled_from("FBP")),
                   tuple(draw(st.lists(shares(), max_size=2))), tuple(rejections), tuple(clawbacks))


@st.composite
def remittances(draw):
    transfers, numbers = [], iter(range(1, 1000))
    for paid in draw(st.lists(st.booleans(), min_size=1, max_size=3)):
        if not paid and transfers and transfers[-1].on is None:
            paid = True                  # two groups without a transfer in a row read as one
        batches = tuple(Batch(f"{next(numbers):03d}", draw(days), tuple(draw(st.lists(invoices(), max_size=3))))
                        for _ in range(draw(st.integers(1, 3))))
        transfers.append(Transfer(draw(days), (draw(labels), draw(labels)), draw(labels)[:10].strip() or "CPAM",
                                  batches) if paid else Transfer(None, batches=batches))
    return Remittance(draw(st.sampled_from(["CP", "MA", "OC"])), draw(st.text(alphabet="0123456789", min_size=14,
                                                                              max_size=14)),
                      draw(days), transfers=tuple(transfers))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(remittances())
def test_any_remittance_written_is_read_back_exactly(r):
    back, _ = noemie.parse(write(r), "retour.rsp", nir_key=KEY)
    assert back == r


# --- what becomes a payment ------------------------------------------------------------------------------

def rows(tmp_path: Path, **kwargs):
    parsed = read(tmp_path, write(remittance(), {"024000001": Identity(NIR)}), **kwargs)
    return parsed, parsed.frame.set_index("invoice_number")


def test_a_paid_share_is_a_payment_of_that_share_dated_and_referenced_by_its_transfer(tmp_path):
    parsed, frame = rows(tmp_path)
    paid = frame.loc["024000001"]
    assert list(paid["payer_type"]) == ["amo", "amc"] and list(paid["amount_cents"]) == [1900, 900]
    assert set(paid["status"]) == {"paid"} and set(paid["payment_date"]) == {"2026-11-20"}
    assert set(paid["reference"]) == {"VIR CPAM PARIS 75 BORDEREAU 4711"}
    assert list(parsed.frame.columns) == PAYMENT_COLUMNS


def test_a_rejected_share_is_a_rejection_line_with_the_rejection_label_as_its_reason(tmp_path):
    _, frame = rows(tmp_path)
    rejected = frame.loc["024000002"]
    assert (rejected["status"], rejected["payer_type"], rejected["amount_cents"]) == ("rejected", "amo", 0)
    assert rejected["reject_reason"] == "rejet 0412 DROITS NON OUVERTS A CETTE DATE"


def test_a_rejection_label_that_names_care_is_stored_masked(tmp_path):
    _, frame = rows(tmp_path)
    reason = frame.loc["024000007", "reject_reason"]
    assert "ALD" not in reason and "valeur masquée" in reason


def test_a_rejection_outside_any_transfer_is_dated_by_the_file(tmp_path):
    _, frame = rows(tmp_path)
    assert frame.loc["024000007", "payment_date"] == "2026-11-20"


def test_a_deferred_share_stores_nothing_and_says_so(tmp_path):
    parsed, frame = rows(tmp_path)
    assert "024000003" not in frame.index
    assert any("différée" in w for w in parsed.warnings)


def test_a_clawback_and_a_negative_paid_amount_are_negative_clawback_lines(tmp_path):
    _, frame = rows(tmp_path)
    assert (frame.loc["024000004", "status"], frame.loc["024000004", "amount_cents"]) == ("clawback", -700)
    assert (frame.loc["024000005", "status"], frame.loc["024000005", "amount_cents"]) == ("clawback", -1500)
    assert frame.loc["024000005", "payment_date"] == "2026-11-21"


def test_a_clawback_takes_the_share_of_its_sender_an_amc_sender_means_the_amc_share(tmp_path):
    r = replace(remittance(), sender_type="OC")
    frame = read(tmp_path, write(r)).frame.set_index("invoice_number")
    assert frame.loc["024000004", "payer_type"] == "amc"


def test_invoice_numbers_are_mapped_by_the_prefix_and_suffix_rule(tmp_path):
    _, frame = rows(tmp_path, numbers=NoemieNumbers(prefix="F2", suffix="X"))
    assert "F2024000001X" in frame.index


def test_the_shipped_rule_maps_the_sample_clinics_numbers():
    assert load_noemie_numbers().invoice_number("024000001") == "F2024000001"


def test_an_unknown_key_in_the_noemie_rule_is_refused(tmp_path):
    path = tmp_path / "insurers.toml"
    path.write_text('[noemie]\ninvoice_prefix = "F2"\nprefix = "x"\n', encoding="utf-8")
    with pytest.raises(RecouvrementError, match="noemie.prefix"):
        load_noemie_numbers(path)


def test_payment_ids_are_stable_and_distinct(tmp_path):
    first = read(tmp_path, write(remittance())).frame["payment_id"]
    again = read(tmp_path, write(remittance())).frame["payment_id"]
    assert list(first) == list(again) and first.is_unique and first.str.startswith("noemie-").all()


def test_the_nir_hash_goes_to_the_patient_check_and_the_nir_nowhere(tmp_path):
    parsed, frame = rows(tmp_path)
    assert set(parsed.nir_hashes["nir_hash"]) == {nir_hash(NIR, KEY)}
    assert set(parsed.nir_hashes["payment_id"]) == set(frame.loc["024000001", "payment_id"])
    assert NIR not in frame.to_csv() and "nir_hash" not in frame.columns


def test_source_lines_are_the_blocks_where_the_shares_start(tmp_path):
    data = write(remittance())
    parsed = read(tmp_path, data)
    stream = "".join(data[i + 1:i + 128].decode("latin-1") for i in range(128, len(data) - 128, 128))
    first = stream.index("198")                  # the first share of the first invoice
    assert parsed.frame["source_line"].iloc[0] == 2 + first // 127


# --- refused whole, with a clear line naming the entity ------------------------------------------------

def test_a_batch_whose_control_total_disagrees_refuses_the_whole_file(tmp_path):
    body = entities(remittance())
    control = next(n for n, e in enumerate(body) if e.startswith("990"))
    body[control] = body[control][:30] + "00000009999" + body[control][41:]
    with pytest.raises(RecouvrementError) as error:
        read(tmp_path, assemble(remittance(), body))
    message = str(error.value)
    assert "990" in message and "lot 001" in message and "refusé en entier" in message


def test_a_transfer_whose_count_disagrees_refuses_the_whole_file(tmp_path):
    body = entities(remittance())
    control = [n for n, e in enumerate(body) if e.startswith("99099071")][0]
    body[control] = body[control][:22] + "00000005" + body[control][30:]
    with pytest.raises(RecouvrementError, match="990.*virement du 20/11/2026"):
        read(tmp_path, assemble(remittance(), body))


def test_an_end_of_file_whose_totals_disagree_refuses_the_whole_file(tmp_path):
    r = remittance()
    body = entities(r)
    with pytest.raises(RecouvrementError, match="999"):
        read(tmp_path, assemble(r, body, totals=(len(body), 4, r.cents + 1)))
    with pytest.raises(RecouvrementError, match="999"):
        read(tmp_path, assemble(r, body, totals=(len(body) + 1, 4, r.cents)))


def test_a_missing_control_entity_refuses_the_file(tmp_path):
    body = entities(remittance())
    body.remove(next(e for e in body if e.startswith("990")))      # the control of batch 001
    with pytest.raises(RecouvrementError, match="990 manquante"):
        read(tmp_path, assemble(remittance(), body))


def test_a_missing_at_sign_names_the_entity(tmp_path):
    body = entities(remittance(), {"024000001": Identity(NIR, "PAYET", "LAURENT")})
    share = next(n for n, e in enumerate(body) if e.startswith("198"))
    body[share] = body[share][:-1] + " "
    with pytest.raises(RecouvrementError) as error:
        read(tmp_path, assemble(remittance(), body))
    message = str(error.value)
    assert "entité 198" in message and "@" in message
    assert NIR not in message and "PAYET" not in message


@pytest.mark.parametrize("cut", [1, 127, 128 * 3 + 17])
def test_a_truncated_file_is_refused_with_a_clear_line(tmp_path, cut):
    data = write(remittance())
    with pytest.raises(RecouvrementError, match="tronqué"):
        read(tmp_path, data[:-cut])


def test_a_file_cut_at_a_block_boundary_inside_an_entity_names_the_entity(tmp_path):
    data = write(remittance(), {"024000001": Identity(NIR, "PAYET", "LAURENT")})
    blocks = [data[i:i + 128] for i in range(0, len(data), 128)]
    last = blocks[3].decode("latin-1")
    shortened = b"".join(blocks[:3]) + ("1" + last[1:]).encode("latin-1") + blocks[-1]
    with pytest.raises(RecouvrementError) as error:
        read(tmp_path, shortened)
    message = str(error.value)
    assert "tronqué" in message and "entité" in message and NIR not in message and "PAYET" not in message


def test_a_file_without_its_end_of_file_is_truncated(tmp_path):
    data = write(remittance())
    with pytest.raises(RecouvrementError, match="999 manque"):
        read(tmp_path, data[:-128])


def test_an_unknown_share_state_is_refused_naming_the_entity_and_invoice(tmp_path):
    body = entities(remittance())
    share = next(n for n, e in enumerate(body) if e.startswith("198"))
    body[share] = body[share][:13] + "X" + body[share][14:]
    with pytest.raises(RecouvrementError, match="entité 198 .part AMO, facture 024000001. : état"):
        read(tmp_path, assemble(remittance(), body))


def test_error_messages_never_echo_identity_or_acts(tmp_path):
    identity = Identity(NIR, "PAYET", "LAURENT", act_code="ALD")
    body = entities(remittance(), {"024000002": identity})
    act = next(n for n, e in enumerate(body) if e.startswith("210"))
    body[act] = body[act][:-1] + "X"
    with pytest.raises(RecouvrementError) as error:
        read(tmp_path, assemble(remittance(), body))
    message = str(error.value)
    assert "210" in message and NIR not in message and "PAYET" not in message and "LAURENT" not in message
