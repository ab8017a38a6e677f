"""The sample generator: deterministic, self-consistent, in the dialects the importers expect."""

from __future__ import annotations

import csv
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import iban, iso11649
from stdnum.fr import nir, siret

from recouvrement.core.references import rf_reference
from recouvrement.money import parse_amount
from tools.samples import (
    AS_OF, EXPECTED_COLUMNS, INVOICE_COLUMNS, PAYMENT_CSV_COLUMNS, cfonb_amount, generate,
    rf_references,
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "recouvrement" / "sample_clinic"
NS = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"}
OVERPUNCH = ({c: (1, d) for d, c in enumerate("{ABCDEFGHI")}
             | {c: (-1, d) for d, c in enumerate("}JKLMNOPQR")})


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate(out)
    return out


@pytest.fixture(scope="module")
def scale(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scale")
    generate(out, invoices=2_000, scale=True)
    return out


def rows(path: Path, encoding: str = "utf-8-sig", sep: str = ";") -> list[dict[str, str]]:
    """Reads a file back with the csv module, refusing rows of the wrong width."""
    with open(path, encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        header = next(reader)
        body = list(reader)
    assert all(len(row) == len(header) for row in body)
    return [dict(zip(header, row)) for row in body]


def invoices(folder: Path) -> list[dict[str, str]]:
    return rows(folder / "invoices.csv", "cp1252")


def expected(folder: Path) -> list[dict[str, str]]:
    return rows(folder / "expected.csv", "utf-8", ",")


def amc(folder: Path) -> list[dict[str, str]]:
    return rows(folder / "remittance_amc.csv", "utf-8", ",")


def cents(text: str) -> int:
    return parse_amount(text)


def camt_entries(folder: Path) -> list[ET.Element]:
    return ET.parse(folder / "bank_camt053.xml").getroot().findall(".//c:Ntry", NS)


def cfonb_value(amount: str) -> int:
    sign, last = OVERPUNCH[amount[-1]]
    return sign * int(amount[:-1] + str(last))


def by_number(folder: Path) -> dict[str, dict[str, str]]:
    return {row["invoice_number"]: row for row in invoices(folder)}


# ---------------------------------------------------------------- determinism and size

def test_the_committed_sample_is_what_the_generator_writes(sample):
    written = sorted(p.name for p in sample.iterdir())
    # rules/: the sample clinic's own rules files, kept by hand, not generated (tests/app/test_pre_due.py holds
    # them to the shipped ones but for the pre-due notice).
    assert written == sorted(p.name for p in COMMITTED.iterdir() if p.name not in (".gitkeep", "rules"))
    for name in written:
        assert (sample / name).read_bytes() == (COMMITTED / name).read_bytes(), name


def test_the_same_seed_writes_the_same_bytes(scale, tmp_path):
    generate(tmp_path, invoices=2_000, scale=True)
    for path in scale.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_another_seed_writes_other_invoices(sample, tmp_path):
    generate(tmp_path, seed=7)
    assert (tmp_path / "invoices.csv").read_bytes() != (sample / "invoices.csv").read_bytes()


def test_the_default_sample_is_small(sample):
    assert 300 <= len(invoices(sample)) <= 500
    assert sum(p.stat().st_size for p in sample.iterdir()) < 300_000


def test_the_summary_counts_what_was_written(tmp_path):
    summary = generate(tmp_path, invoices=300)
    assert summary.invoices == 300
    assert summary.payment_lines == len(expected(tmp_path))
    assert all((tmp_path / name).exists() for name in summary.files)
    assert summary.cases["rf"] == sum(r["case"] == "rf" for r in expected(tmp_path))


def test_the_command_line_writes_a_scale_set(tmp_path):
    command = [sys.executable, "-m", "tools.samples", "--out", str(tmp_path),
               "--invoices", "500", "--scale"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "payments_patient.csv").exists()
    assert not (tmp_path / "bank_camt053.xml").exists()


def test_too_small_a_sample_is_refused_with_a_message_not_a_traceback(tmp_path):
    command = [sys.executable, "-m", "tools.samples", "--out", str(tmp_path),
               "--invoices", "60"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode != 0
    assert "300 invoices or more" in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------- invoices.csv

@pytest.mark.parametrize("folder", ["sample", "scale"])
def test_invoices_csv_has_exactly_the_agreed_columns(folder, request):
    path = request.getfixturevalue(folder) / "invoices.csv"
    assert path.read_bytes().split(b"\r\n")[0].decode("cp1252").split(";") == INVOICE_COLUMNS


@pytest.mark.parametrize("folder", ["sample", "scale"])
def test_invoices_csv_is_windows_1252_with_crlf_and_accented_names(folder, request):
    raw = (request.getfixturevalue(folder) / "invoices.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.count(b"\r\n") == raw.count(b"\n")
    names = {r["last_name"] + r["first_name"] for r in invoices(request.getfixturevalue(folder))}
    assert any(ch in "".join(names) for ch in "éèëïçÉ")


def test_the_sample_has_the_names_that_break_naive_code(sample):
    names = {(r["first_name"], r["last_name"]) for r in invoices(sample)}
    for wanted in [("Jean-François", "Dupré"), ("Maëlle", "N'Diaye"), ("Éloïse", "Lefèvre"),
                   ("Marie-Christine", "De La Fontaine"), ("Noé", "Lœuillet")]:
        assert wanted in names


@pytest.mark.parametrize("folder", ["sample", "scale"])
def test_every_invoice_total_is_the_sum_of_its_shares(folder, request):
    for row in invoices(request.getfixturevalue(folder)):
        shares = (cents(row[c]) for c in ("amo_amount", "amc_amount", "patient_amount"))
        assert cents(row["total_amount"]) == sum(shares)
        assert "," in row["total_amount"]


@pytest.mark.parametrize("folder", ["sample", "scale"])
def test_every_nir_is_valid(folder, request):
    assert all(nir.is_valid(row["nir"]) for row in invoices(request.getfixturevalue(folder)))


def test_invoice_numbers_are_unique_and_shaped_like_f2025_000123(scale):
    numbers = [row["invoice_number"] for row in invoices(scale)]
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == 12 and n[0] == "F" and n[5] == "-" and (n[1:5] + n[6:]).isdigit()
               for n in numbers)


def test_some_invoices_are_time_barred_and_none_is_in_the_future(scale):
    issued = [datetime.strptime(r["issue_date"], "%d/%m/%Y").date() for r in invoices(scale)]
    ages = [(AS_OF - day).days for day in issued]
    assert min(ages) >= 1
    assert 0 < sum(age > 730 for age in ages) < len(ages) * 0.15


def test_minors_and_only_minors_have_a_guarantor(scale):
    for row in invoices(scale):
        born = datetime.strptime(row["birth_date"], "%d/%m/%Y").date()
        minor = date(born.year + 18, born.month, min(born.day, 28)) > AS_OF
        assert bool(row["guarantor_last_name"]) == minor
        assert bool(row["guarantor_address"]) == minor


def test_state_coverages_leave_no_patient_share_but_for_two_planted_anomalies(sample):
    covered = [r for r in invoices(sample) if r["coverage"] in ("css", "ame", "at_mp")]
    assert {r["coverage"] for r in covered} == {"css", "ame", "at_mp"}
    assert sum(cents(r["patient_amount"]) > 0 for r in covered) in (1, 2)


def test_the_amc_payer_is_named_exactly_when_there_is_an_amc_share(scale):
    for row in invoices(scale):
        assert bool(row["amc_payer"]) == (cents(row["amc_amount"]) > 0)


def test_care_descriptions_and_act_codes_are_filled_for_privacy_tests(sample):
    rows_ = invoices(sample)
    assert all(r["care_description"] and r["act_codes"] for r in rows_)
    assert any("HBLD038" in r["act_codes"] for r in rows_)


def test_some_patient_shares_are_large_dental_ones(scale):
    shares = [cents(r["patient_amount"]) for r in invoices(scale)]
    assert any(15_000 <= s <= 60_000 for s in shares)
    assert sum(0 < s <= 6_000 for s in shares) > len(shares) / 4


# ---------------------------------------------------------------- remittances

def test_the_amo_remittance_is_utf8_with_bom_semicolons_and_iso_dates(sample):
    raw = (sample / "remittance_amo.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfpayment_id;")
    lines = rows(sample / "remittance_amo.csv")
    assert list(lines[0]) == PAYMENT_CSV_COLUMNS
    assert {r["payer_type"] for r in lines} == {"amo"}
    assert all(date.fromisoformat(r["payment_date"]) < AS_OF for r in lines)


def test_the_amc_remittance_is_utf8_without_bom_commas_dots_and_french_dates(sample):
    raw = (sample / "remittance_amc.csv").read_bytes()
    assert raw.startswith(b"payment_id,payment_date,")
    lines = amc(sample)
    assert {r["payer_type"] for r in lines} == {"amc"}
    assert all("." in r["amount"] and "," not in r["amount"] for r in lines)
    assert all(datetime.strptime(r["payment_date"], "%d/%m/%Y") for r in lines)


@pytest.mark.parametrize("name, share", [("remittance_amo.csv", "amo_amount"),
                                         ("remittance_amc.csv", "amc_amount")])
def test_remittance_lines_pay_or_refuse_exactly_the_invoice_share(sample, name, share):
    known = by_number(sample)
    truth = {r["payment_id"]: r for r in expected(sample) if r["source_file"] == name}
    sep = ";" if name.endswith("amo.csv") else ","
    for line in rows(sample / name, "utf-8-sig", sep):
        meant = truth[line["payment_id"]]["invoice_numbers"]
        assert cents(line["amount"]) == cents(known[meant][share])


def test_some_remittance_lines_are_rejected_with_a_reason(sample):
    for name, sep in (("remittance_amo.csv", ";"), ("remittance_amc.csv", ",")):
        refused = [r for r in rows(sample / name, "utf-8-sig", sep) if r["status"] == "rejected"]
        assert refused and all(r["reject_reason"] for r in refused)


def test_a_rejected_amc_share_is_paid_later_by_a_resubmission(sample):
    lines = amc(sample)
    again = [r for r in lines if r["reference"].startswith("RENVOI ")]
    assert again
    for paid in again:
        refused = [r for r in lines if r["invoice_number"] == paid["invoice_number"]
                   and r["status"] == "rejected"]
        assert refused
        day = datetime.strptime
        assert day(refused[0]["payment_date"], "%d/%m/%Y") < day(paid["payment_date"], "%d/%m/%Y")


def test_some_amc_lines_carry_the_invoice_number_only_in_their_reference(sample):
    hidden = [r for r in amc(sample) if not r["invoice_number"]]
    assert len(hidden) >= 2
    assert all(r["reference"].startswith("Facture F") for r in hidden)


def test_some_shares_are_still_awaited(sample):
    answered = {r["invoice_numbers"] for r in expected(sample)
                if r["source_file"] == "remittance_amo.csv"}
    assert len(answered) < sum(cents(r["amo_amount"]) > 0 for r in invoices(sample))


# ---------------------------------------------------------------- expected.csv

@pytest.mark.parametrize("folder", ["sample", "scale"])
def test_every_payment_line_has_exactly_one_expected_row(folder, request):
    out = request.getfixturevalue(folder)
    truth = expected(out)
    assert list(truth[0]) == EXPECTED_COLUMNS
    counts = Counter(r["source_file"] for r in truth)
    for name in counts:
        if name.endswith(".csv"):
            sep = "," if name == "remittance_amc.csv" else ";"
            ids = [r["payment_id"] for r in rows(out / name, "utf-8-sig", sep)]
            assert ids == [r["payment_id"] for r in truth if r["source_file"] == name]
    if folder == "sample":
        transactions = ET.parse(out / "bank_camt053.xml").getroot().findall(".//c:TxDtls", NS)
        assert counts["bank_camt053.xml"] == len(transactions)


def test_expected_invoice_numbers_all_exist(sample):
    known = by_number(sample)
    for row in expected(sample):
        assert all(number in known for number in row["invoice_numbers"].split())


# ---------------------------------------------------------------- camt.053

def test_the_camt_statement_is_camt_053_001_02_with_every_field_on_every_entry(sample):
    entries = camt_entries(sample)
    assert entries
    for entry in entries:
        for path in ("c:AcctSvcrRef", "c:BookgDt/c:Dt", "c:ValDt/c:Dt", "c:Amt", "c:CdtDbtInd",
                     "c:Sts", ".//c:RltdPties/c:Dbtr/c:Nm", ".//c:RmtInf"):
            assert entry.find(path, NS) is not None, path
        assert entry.find("c:Amt", NS).get("Ccy")


def test_camt_covers_every_bank_scenario(sample):
    cases = Counter(r["case"] for r in expected(sample) if r["source_file"] == "bank_camt053.xml")
    for case in ("rf", "text", "grouped", "name_amount", "partial", "overpayment", "guarantor",
                 "batch", "noise", "debit", "pending", "foreign_currency"):
        assert cases[case] >= 1, case
    assert cases["batch"] == 3


def test_camt_has_one_usd_credit_one_pending_entry_and_one_debit(sample):
    entries = camt_entries(sample)
    assert sum(e.find("c:Amt", NS).get("Ccy") == "USD" for e in entries) == 1
    assert sum(e.findtext("c:Sts", namespaces=NS) == "PDNG" for e in entries) == 1
    assert sum(e.findtext("c:CdtDbtInd", namespaces=NS) == "DBIT" for e in entries) == 1


def test_camt_structured_references_are_the_rf_of_the_expected_invoice(sample):
    truth = {r["payment_id"]: r for r in expected(sample) if r["source_file"] == "bank_camt053.xml"}
    found = 0
    for entry in camt_entries(sample):
        reference = entry.findtext(".//c:CdtrRefInf/c:Ref", namespaces=NS)
        if reference:
            found += 1
            meant = truth[entry.findtext("c:AcctSvcrRef", namespaces=NS)]["invoice_numbers"]
            assert iso11649.is_valid(reference) and reference == rf_reference(meant)
    assert found >= 5


def test_camt_name_amount_credits_match_one_open_share_of_that_amount(sample):
    known = by_number(sample)
    for row in expected(sample):
        if row["case"] == "name_amount" and row["source_file"] == "bank_camt053.xml":
            invoice = known[row["invoice_numbers"]]
            assert int(row["amount_cents"]) == cents(invoice["patient_amount"])
            same = [r for r in known.values() if r["patient_id"] == invoice["patient_id"]
                    and r["patient_amount"] == invoice["patient_amount"]]
            assert len(same) == 1


def test_camt_closing_balance_is_opening_plus_booked_euro_entries(sample):
    root = ET.parse(sample / "bank_camt053.xml").getroot()
    balances = {b.findtext(".//c:Cd", namespaces=NS): cents(b.findtext("c:Amt", namespaces=NS))
                for b in root.iter(f"{{{NS['c']}}}Bal")}
    moved = 0
    for entry in camt_entries(sample):
        booked = entry.findtext("c:Sts", namespaces=NS) == "BOOK"
        if booked and entry.find("c:Amt", NS).get("Ccy") == "EUR":
            sign = 1 if entry.findtext("c:CdtDbtInd", namespaces=NS) == "CRDT" else -1
            moved += sign * cents(entry.findtext("c:Amt", namespaces=NS))
    assert balances["CLBD"] == balances["OPBD"] + moved


def test_the_batch_entry_amount_is_the_sum_of_its_transactions(sample):
    for entry in camt_entries(sample):
        details = entry.findall(".//c:TxDtls", NS)
        if len(details) > 1:
            parts = [cents(d.findtext(".//c:TxAmt/c:Amt", namespaces=NS)) for d in details]
            assert sum(parts) == cents(entry.findtext("c:Amt", namespaces=NS))


# ---------------------------------------------------------------- CFONB 120

def cfonb_records(folder: Path) -> list[str]:
    raw = (folder / "bank_cfonb120.txt").read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == raw.count(b"\n")
    return raw.decode("ascii").split("\r\n")[:-1]


def test_cfonb_records_are_120_ascii_characters_ending_in_crlf(sample):
    records = cfonb_records(sample)
    assert all(len(r) == 120 for r in records)
    assert records[0][:2] == "01" and records[-1][:2] == "07"
    assert {r[:2] for r in records} == {"01", "04", "05", "07"}


def test_cfonb_movements_add_up_from_the_old_to_the_new_balance(sample):
    records = cfonb_records(sample)
    moves = [cfonb_value(r[90:104]) for r in records if r[:2] == "04"]
    assert cfonb_value(records[-1][90:104]) == cfonb_value(records[0][90:104]) + sum(moves)
    assert any(m < 0 for m in moves)
    assert all(r[16:20] == "EUR2" for r in records)


def test_cfonb_transfers_name_the_payer_and_carry_the_reference_in_05_records(sample):
    records = cfonb_records(sample)
    assert any(r[:2] == "04" and r[48:57] == "VIR SEPA " for r in records)
    assert any(r[:2] == "04" and r[48:61] == "REMISE CHEQUE" for r in records)
    infos = [r[48:118].strip() for r in records if r[:2] == "05" and r[45:48] == "LIB"]
    assert any(i.startswith("RF") and iso11649.is_valid(i) for i in infos)
    assert any("F20" in i for i in infos)


def test_cfonb_expected_lines_point_at_04_records(sample):
    records = cfonb_records(sample)
    for row in expected(sample):
        if row["source_file"] == "bank_cfonb120.txt":
            record = records[int(row["source_line"]) - 1]
            assert record[:2] == "04" and record[81:88] == row["payment_id"]
            assert abs(cfonb_value(record[90:104])) == int(row["amount_cents"])


@pytest.mark.parametrize("amount, text", [(12340, "0000000001234{"), (48438, "0000000004843H"),
                                          (-9200, "0000000000920}"), (-1, "0000000000000J")])
def test_cfonb_amounts_overpunch_the_last_digit_with_the_sign(amount, text):
    assert cfonb_amount(amount) == text


# ---------------------------------------------------------------- settings and references

def test_the_settings_name_a_valid_siret_and_iban(sample):
    settings = tomllib.loads((sample / "recouvrement.toml").read_text(encoding="utf-8"))
    creditor = settings["creditor"]
    assert creditor["name"] == "Centre de santé des Lilas"
    assert siret.is_valid(creditor["siret"]) and iban.is_valid(creditor["iban"])
    assert creditor["iban"].startswith("FR76") and len(creditor["bic"]) in (8, 11)
    assert settings["paths"] == {"inbox": "inbox", "archive": "archive",
                                 "quarantine": "quarantine", "output": "out", "rules": "rules"}


@given(st.integers(2000, 2099), st.integers(1, 999_999))
def test_vectorised_rf_references_match_rf_reference(year, seq):
    number = f"F{year}-{seq:06d}"
    compact = np.array([number.replace("-", "")], dtype=object)
    assert rf_references(compact)[0] == rf_reference(number)


def test_every_rf_reference_in_patient_payments_is_valid_and_names_its_invoice(scale):
    truth = {r["payment_id"]: r for r in expected(scale)}
    found = 0
    for line in rows(scale / "payments_patient.csv"):
        if line["reference"].startswith("RF"):
            found += 1
            reference = line["reference"].replace(" ", "")
            assert iso11649.is_valid(reference)
            assert reference == rf_reference(truth[line["payment_id"]]["invoice_numbers"])
    assert found > 100


def test_patient_payments_cover_every_kind_of_reference(scale):
    lines = rows(scale / "payments_patient.csv")
    assert {r["payer_type"] for r in lines} == {"patient"}
    cases = Counter(r["case"] for r in expected(scale)
                    if r["source_file"] == "payments_patient.csv")
    for case in ("explicit", "rf", "text", "name_amount", "partial", "overpayment", "guarantor",
                 "noise"):
        assert cases[case] > 0, case


def test_scale_mode_writes_about_2_2_payment_lines_per_invoice(scale):
    assert 1.9 <= len(expected(scale)) / len(invoices(scale)) <= 2.5


# ---------------------------------------------------------------- NOEMIE return

def test_the_sample_ships_a_noemie_return_read_as_expected_csv_says(sample):
    from recouvrement.importers import noemie
    from recouvrement.importers.insurers import load_noemie_numbers
    frame = noemie.read(sample / "retour_noemie.rsp", numbers=load_noemie_numbers()).frame
    truth = [r for r in expected(sample) if r["source_file"] == "retour_noemie.rsp"]
    assert [(r["payment_id"], int(r["source_line"]), int(r["amount_cents"])) for r in truth] == list(
        zip(frame["payment_id"], frame["source_line"], frame["amount_cents"]))
    assert [r["invoice_numbers"].replace("-", "") for r in truth] == list(frame["invoice_number"])
    assert Counter(r["case"] for r in truth) == {"explicit": 7, "rejected": 2, "clawback": 1}


def test_the_noemie_retenue_takes_back_part_of_a_share_the_amo_remittance_paid(sample):
    clawed = next(r for r in expected(sample) if r["case"] == "clawback")
    paid = [r for r in expected(sample) if r["source_file"] == "remittance_amo.csv"
            and r["invoice_numbers"] == clawed["invoice_numbers"]]
    assert paid and int(paid[0]["amount_cents"]) > -int(clawed["amount_cents"]) > 0
