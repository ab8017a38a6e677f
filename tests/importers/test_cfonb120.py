"""CFONB 120 importer: records, line endings, complements, ids."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recouvrement.errors import RecouvrementError
from recouvrement.importers import cfonb120
from recouvrement.importers.base import PAYMENT_COLUMNS, read_head

BANK = Path(__file__).resolve().parents[1] / "data" / "bank"
CRLF, LF, SINGLE = BANK / "cfonb120_crlf.txt", BANK / "cfonb120_lf.txt", BANK / "cfonb120_single_line.txt"
ALL_CFONB = [CRLF, LF, SINGLE]
ACCOUNT = ("30004", "00819", "00012345678")


# Record builders with the positions of cfonb120.py, to make small files by hand.
def amount_field(cents: int, decimals: int = 2) -> str:
    digits = str(abs(cents) // 10 ** (2 - decimals)).zfill(14)
    return digits[:-1] + ("}JKLMNOPQR" if cents < 0 else "{ABCDEFGHI")[int(digits[-1])]


def record_head(code: str, currency: str = "EUR", decimals: str = "2") -> str:
    bank, branch, account = ACCOUNT
    return f"{code}{bank}0158{branch}{currency}{decimals} {account}05"


def balance(code: str, cents: int = 0) -> str:
    return record_head(code) + "170325" + " " * 50 + amount_field(cents) + " " * 16


def movement(cents: int, label: str = "VIR SEPA M PAUL DURAND", currency: str = "EUR",
             decimals: str = "2", raw_amount: str | None = None, reference: str = "") -> str:
    amount = raw_amount or amount_field(cents, int(decimals))
    return (record_head("04", currency, decimals) + "170325  170325" + label.ljust(31)
            + "  0000000  " + amount + reference.ljust(16))


def complement(qualifier: str, text: str) -> str:
    return record_head("05") + "170325" + " " * 5 + qualifier + text.ljust(70) + "  "


def write(tmp_path: Path, records: list[str], name: str = "releve.txt", sep: str = "\r\n") -> Path:
    path = tmp_path / name
    path.write_bytes(sep.join(records).encode("ascii"))
    return path


def payments(path: Path) -> pd.DataFrame:
    return cfonb120.read(path).frame


# --- sniff ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ALL_CFONB, ids=lambda p: p.name)
def test_sniff_recognises_crlf_lf_and_single_line_files(path):
    assert cfonb120.sniff(read_head(path), path.name)


def test_sniff_judges_the_content_not_the_file_name():
    assert cfonb120.sniff(read_head(CRLF), "export.dat")


def test_sniff_refuses_a_csv_file():
    assert not cfonb120.sniff(b"01;2025-03-12;25,00;CPAM\n04;2025-03-12;10,00;X\n", "releve.txt")


@pytest.mark.parametrize("name", ["camt053_v02_batch.xml", "camt053_v04_bom.xml", "camt053_v08_single_line.xml"])
def test_sniff_refuses_a_camt053_file(name):
    assert not cfonb120.sniff(read_head(BANK / name), name)


def test_the_builders_make_120_character_records():
    assert {len(r) for r in (balance("01"), movement(100), complement("LIB", "X"))} == {120}


# --- what becomes a payment -----------------------------------------------------------------

@pytest.mark.parametrize(("path", "count"), [(CRLF, 3), (LF, 3), (SINGLE, 2)], ids=["crlf", "lf", "single"])
def test_every_line_ending_style_is_read(path, count):
    frame = payments(path)
    assert len(frame) == count and list(frame.columns) == PAYMENT_COLUMNS


@pytest.mark.parametrize("sep", ["\n", ""], ids=["lf", "no-breaks"])
def test_line_endings_do_not_change_what_is_read(tmp_path, sep):
    records = CRLF.read_text(encoding="ascii").split("\r\n")
    other = write(tmp_path, [r.rstrip() if sep else r for r in records], sep=sep)
    pd.testing.assert_frame_equal(payments(other), payments(CRLF))


def test_the_frame_has_the_payment_types():
    frame = payments(CRLF)
    assert frame["amount_cents"].dtype == "int64" and frame["source_line"].dtype == "int64"
    assert set(frame["status"]) == {"paid"} and frame["invoice_number"].isna().all()


def test_the_npy_complement_names_the_payer_and_other_complements_make_the_reference():
    row = payments(CRLF).iloc[0]
    assert row["payer_name"] == "CPAM DE L HERAULT"
    assert row["reference"] == "PAIEMENT TIERS PAYANT LOT 0412 F2025-000301 TIERS PAYANT"


def test_the_label_names_the_payer_when_there_is_no_npy_complement():
    row = payments(CRLF).iloc[1]
    assert (row["payer_name"], row["reference"]) == ("M DUPONT JEAN", "RF39F2025000123")


def test_a_slash_de_segment_names_the_payer_in_full():
    assert payments(CRLF).iloc[2]["payer_name"] == "HARMONIE MUTUELLE"


def test_a_label_that_is_not_a_transfer_stays_in_the_reference(tmp_path):
    path = write(tmp_path, [balance("01"), movement(5000, "REMISE CHEQUE 0004512"), balance("07")])
    row = payments(path).iloc[0]
    assert (row["payer_name"], row["reference"]) == ("", "REMISE CHEQUE 0004512")


def test_the_payment_date_is_the_booking_date():
    assert payments(CRLF)["payment_date"].tolist() == ["2025-03-17"] * 3


def test_a_debit_is_ignored_not_rejected():
    parsed = cfonb120.read(CRLF)
    assert 35000 not in parsed.frame["amount_cents"].tolist()
    assert all(r.field != "amount" for r in parsed.rejects)
    assert any("1 mouvement(s) de débit ignoré(s)" in w for w in parsed.warnings)


def test_amounts_with_two_and_zero_decimals_are_exact_cents():
    assert payments(LF)["amount_cents"].tolist() == [2500, 2500, 15000]


def test_three_decimals_are_accepted_when_they_are_whole_cents(tmp_path):
    path = write(tmp_path, [balance("01"), movement(0, decimals="3", raw_amount="0000000001234{"), balance("07")])
    assert payments(path)["amount_cents"].tolist() == [1234]


def test_a_cpam_credit_is_amo():
    assert payments(CRLF).iloc[0]["payer_type"] == "amo"


def test_a_mutuelle_credit_is_amc():
    assert payments(CRLF).iloc[2]["payer_type"] == "amc"


def test_a_patient_credit_is_patient():
    assert payments(CRLF).iloc[1]["payer_type"] == "patient"


def test_a_windows_1252_label_is_decoded():
    assert payments(SINGLE).iloc[0]["payer_name"] == "LA MUTUELLE GÉNÉRALE"


def test_in_a_file_without_line_breaks_the_source_line_is_the_record_position():
    assert payments(SINGLE)["source_line"].tolist() == [2, 5]


def test_the_source_line_is_the_line_of_the_movement():
    assert payments(CRLF)["source_line"].tolist() == [2, 6, 10]


def test_rows_read_counts_payments_and_rejects():
    assert cfonb120.read(LF).rows_read == 5


# --- rejects ------------------------------------------------------------------------------

def test_a_foreign_currency_movement_is_rejected_with_its_line():
    [reject] = cfonb120.read(CRLF).rejects
    assert (reject.line, reject.field, reject.reason) == (14, "currency", "devise USD refusée : les montants sont en euros")


def test_a_bad_amount_is_rejected_and_its_complement_is_skipped():
    rejects = cfonb120.read(LF).rejects
    assert [(r.line, r.field) for r in rejects if r.field == "amount"] == [(9, "amount")]
    assert all(r.line != 10 for r in rejects)


def test_an_unknown_record_code_is_rejected():
    reject = next(r for r in cfonb120.read(LF).rejects if r.field == "record code")
    assert reject.line == 11 and "'09'" in reject.reason


def test_a_complement_without_a_movement_is_rejected(tmp_path):
    path = write(tmp_path, [balance("01"), complement("LIB", "ORPHAN"), balance("07")])
    [reject] = cfonb120.read(path).rejects
    assert (reject.line, reject.field) == (2, "record code")


def test_a_line_of_the_wrong_length_is_rejected(tmp_path):
    path = write(tmp_path, [balance("01"), movement(100) + "XXXXX", balance("07")])
    [reject] = cfonb120.read(path).rejects
    assert reject.line == 2 and "125 caractères" in reject.reason


def test_three_decimals_that_are_not_whole_cents_are_rejected(tmp_path):
    path = write(tmp_path, [balance("01"), movement(0, decimals="3", raw_amount="0000000001234E"), balance("07")])
    assert [r.field for r in cfonb120.read(path).rejects] == ["amount"]


def test_a_bad_date_is_rejected(tmp_path):
    bad = movement(100).replace("170325  170325", "320325  170325")
    path = write(tmp_path, [balance("01"), bad, balance("07")])
    assert [r.field for r in cfonb120.read(path).rejects] == ["date"]


# --- ids ------------------------------------------------------------------------------------

def test_ids_are_stable_hashes():
    ids = payments(CRLF)["payment_id"]
    assert all(i.startswith("cfonb-") and len(i) == len("cfonb-") + 16 for i in ids)


def test_two_identical_transfers_on_the_same_day_stay_two_payments():
    frame = payments(LF)
    twins = frame[frame["payer_name"] == "MME MARIE MARTIN"]
    assert len(twins) == 2 and twins["payment_id"].nunique() == 2


@pytest.mark.parametrize("path", ALL_CFONB, ids=lambda p: p.name)
def test_reading_the_same_file_twice_yields_identical_frames(path):
    pd.testing.assert_frame_equal(payments(path), payments(path))


def test_ids_do_not_depend_on_the_file_name_or_place(tmp_path):
    copy = tmp_path / "autre_nom.txt"
    copy.write_bytes(LF.read_bytes())
    assert payments(copy)["payment_id"].tolist() == payments(LF)["payment_id"].tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-10**8, 10**8).filter(bool),
                          st.sampled_from(["VIR SEPA A", "VIR CPAM 34", "REMISE CHEQUE"])), max_size=15))
def test_money_is_conserved_and_ids_are_unique_for_any_movements(movements):
    records = [balance("01")] + [movement(c, label) for c, label in movements] + [balance("07")]
    with tempfile.TemporaryDirectory() as folder:
        frame = payments(write(Path(folder), records))
    credits = [c for c, _ in movements if c > 0]
    assert frame["amount_cents"].sum() == sum(credits) and len(frame) == len(credits)
    assert frame["payment_id"].is_unique


# --- whole-file errors ----------------------------------------------------------------------

def test_a_statement_without_credits_gives_an_empty_frame(tmp_path):
    path = write(tmp_path, [balance("01"), movement(-500, "PRLV SEPA EDF"), balance("07")])
    parsed = cfonb120.read(path)
    assert parsed.frame.empty and list(parsed.frame.columns) == PAYMENT_COLUMNS


def test_a_file_that_is_not_cfonb_raises_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "paiements.txt"
    path.write_text("\n\npayment_id;date;amount\nP1;2025-03-12;25,00\n", encoding="utf-8")
    with pytest.raises(RecouvrementError, match="paiements.txt:3: pas un relevé CFONB 120"):
        cfonb120.read(path)


def test_an_empty_file_raises_an_error_naming_the_file(tmp_path):
    path = tmp_path / "vide.txt"
    path.write_bytes(b"\r\n")
    with pytest.raises(RecouvrementError, match="vide.txt: le fichier est vide"):
        cfonb120.read(path)


# --- a refused record and what goes with it -------------------------------------------------

def test_a_refused_movement_takes_its_complements_with_it(tmp_path):
    records = [balance("01"), movement(1500), complement("LIB", "FACTURE F1"),
               movement(2500, "VIR SEPA MME LEA MOREAU") + "X", complement("NPY", "MME LEA MOREAU"),
               complement("LIB", "FACTURE F2"), balance("07")]
    parsed = cfonb120.read(write(tmp_path, records))
    assert parsed.frame[["payer_name", "reference", "amount_cents"]].values.tolist() == [
        ["M PAUL DURAND", "FACTURE F1", 1500]]
    assert [(r.line, r.field) for r in parsed.rejects] == [(4, "record")]


@pytest.mark.parametrize("broken", [complement("LIB", "FACTURE F9") + "X", "09" + complement("LIB", "F9")[2:]],
                         ids=["complement of the wrong length", "unknown record code"])
def test_an_unreadable_line_after_a_credit_refuses_the_credit_with_its_own_line(tmp_path, broken):
    records = [balance("01"), movement(1500), complement("LIB", "FACTURE F1"), broken,
               complement("LIB", "SUITE"), movement(700, "VIR SEPA M LUC PETIT"), balance("07")]
    parsed = cfonb120.read(write(tmp_path, records))
    assert parsed.frame["amount_cents"].tolist() == [700]
    assert [r.line for r in parsed.rejects] == [2, 4]
    assert parsed.rejects[0].reason.startswith("mouvement refusé : la ligne 4 qui le suit est illisible")


def test_an_amount_above_ten_million_euros_is_refused_with_its_line(tmp_path):
    records = [balance("01"), movement(1_000_000_000), movement(1_000_000_001), balance("07")]
    parsed = cfonb120.read(write(tmp_path, records))
    assert parsed.frame["amount_cents"].tolist() == [1_000_000_000]
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (3, "amount", "montant supérieur au maximum admis (10 000 000,00 € par ligne)")]


# --- a movement's identity is its own content ---------------------------------------------------

def ids_by_reference(path: Path) -> dict[str, str]:
    frame = payments(path)
    return dict(zip(frame["reference"], frame["payment_id"]))


def test_the_reference_zone_is_part_of_a_movement_identity(tmp_path):
    alone = write(tmp_path, [balance("01"), movement(2500, reference="REF-B"), balance("07")], "alone.txt")
    after_twin = write(tmp_path, [balance("01"), movement(2500, reference="REF-A"), movement(2500, reference="REF-B"),
                                  balance("07")], "twin.txt")
    assert ids_by_reference(after_twin)["REF-B"] == ids_by_reference(alone)["REF-B"]


def test_a_movement_id_does_not_depend_on_the_lines_around_it(tmp_path):
    own = [movement(1500, reference="R1"), complement("LIB", "FACTURE F1")]
    alone = write(tmp_path, [balance("01"), *own, balance("07")], "alone.txt")
    crowded = write(tmp_path, [balance("01"), movement(-900, "PRLV SEPA EDF"), complement("LIB", "EDF"), *own,
                               movement(100) + "XX", complement("LIB", "F7"), movement(800, "VIR SEPA M LUC PETIT"),
                               movement(2000, "VIR CPAM 34"), balance("07")], "crowded.txt")
    ids = {cents: payment_id for cents, payment_id in payments(crowded)[["amount_cents", "payment_id"]].values}
    assert ids[1500] == payments(alone)["payment_id"].iloc[0]
