"""camt.053 importer and the insurer names that set payer_type."""

from __future__ import annotations

import tempfile
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recouvrement.errors import RecouvrementError
from recouvrement.importers import camt053
from recouvrement.importers.base import PAYMENT_COLUMNS, read_head
from recouvrement.importers.insurers import Insurers, load_insurers

BANK = Path(__file__).resolve().parents[1] / "data" / "bank"
V02, V04, V08 = BANK / "camt053_v02_batch.xml", BANK / "camt053_v04_bom.xml", BANK / "camt053_v08_single_line.xml"
ALL_CAMT = [V02, V04, V08]


def payments(path: Path) -> pd.DataFrame:
    return camt053.read(path).frame


def by_reference(frame: pd.DataFrame, text: str) -> pd.Series:
    rows = frame[frame["reference"].str.contains(text, regex=False)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def statement(entries: str, version: str = "02") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">\n'
            f"<BkToCstmrStmt><Stmt><Acct><Id><IBAN>FR7613506100000123456789012</IBAN></Id></Acct>\n"
            f"{entries}</Stmt></BkToCstmrStmt></Document>\n")


def credit(amount: str, name: str = "M PAUL DURAND", ref: str = "", info: str = "FACTURE F1") -> str:
    servicer = f"<AcctSvcrRef>{ref}</AcctSvcrRef>" if ref else ""
    return (f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
            f"<BookgDt><Dt>2025-03-12</Dt></BookgDt>{servicer}<NtryDtls><TxDtls>"
            f"<RltdPties><Dbtr><Nm>{name}</Nm></Dbtr></RltdPties>"
            f"<RmtInf><Ustrd>{info}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n")


# --- sniff ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ALL_CAMT, ids=lambda p: p.name)
def test_sniff_recognises_every_camt053_version(path):
    assert camt053.sniff(read_head(path), path.name)


def test_sniff_judges_the_content_not_the_file_name():
    assert camt053.sniff(read_head(V02), "releve.txt")


def test_sniff_refuses_a_csv_file():
    assert not camt053.sniff(b"payment_id;date;amount\nP1;2025-03-12;25,00\n", "camt053.xml")


@pytest.mark.parametrize("name", ["cfonb120_crlf.txt", "cfonb120_single_line.txt"])
def test_sniff_refuses_a_cfonb_file(name):
    assert not camt053.sniff(read_head(BANK / name), name)


def test_sniff_refuses_another_iso20022_message():
    head = b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">'
    assert not camt053.sniff(head, "x.xml")


# --- what becomes a payment -----------------------------------------------------------------

@pytest.mark.parametrize("path", ALL_CAMT, ids=lambda p: p.name)
def test_the_frame_has_exactly_the_payment_columns(path):
    frame = payments(path)
    assert list(frame.columns) == PAYMENT_COLUMNS
    assert frame["amount_cents"].dtype == "int64" and frame["source_line"].dtype == "int64"
    assert set(frame["status"]) == {"paid"}
    assert frame["invoice_number"].isna().all() and frame["reject_reason"].isna().all()


def test_a_batch_booking_gives_one_payment_per_transaction():
    frame = payments(V02)
    batch = frame[frame["payer_name"] == "CPAM DE L HERAULT"]
    assert batch["amount_cents"].tolist() == [2500, 5750, 7500]


def test_batch_transactions_sharing_the_entry_reference_get_numbered_ids():
    frame = payments(V02)
    batch = frame[frame["payer_name"] == "CPAM DE L HERAULT"]
    assert batch["payment_id"].tolist() == ["2025031200047-1", "2025031200047-2", "2025031200047-3"]


def test_a_single_transaction_keeps_the_bank_reference_as_id():
    assert by_reference(payments(V02), "RF39")["payment_id"] == "2025031300112"


def test_a_structured_rf_reference_is_the_reference():
    row = payments(V02).set_index("payer_name").loc["M JEAN DUPONT"]
    assert row["reference"] == "RF39F2025000123"


def test_several_unstructured_lines_are_joined_with_a_space():
    assert by_reference(payments(V02), "HARMONIE")["reference"] == "TP HARMONIE REMB 0325 F2025-000187"


def test_the_debtor_names_the_payer_rather_than_the_ultimate_debtor():
    assert by_reference(payments(V02), "RF39")["payer_name"] == "M JEAN DUPONT"


def test_the_ultimate_debtor_names_the_payer_when_the_debtor_name_is_empty():
    assert by_reference(payments(V02), "HARMONIE")["payer_name"] == "HARMONIE MUTUELLE"


def test_the_payment_date_is_the_booking_date():
    frame = payments(V02)
    assert frame["payment_date"].tolist() == ["2025-03-12"] * 3 + ["2025-03-13"] * 2


def test_a_booking_date_time_gives_its_date():
    assert set(payments(V04).query("payer_name == 'MME MARIE MARTIN'")["payment_date"]) == {"2025-03-17"}


def test_a_cpam_credit_is_amo():
    assert set(payments(V02).query("payer_name == 'CPAM DE L HERAULT'")["payer_type"]) == {"amo"}


def test_a_mutuelle_credit_is_amc():
    assert by_reference(payments(V04), "F2025-000210")["payer_type"] == "amc"


def test_a_patient_credit_is_patient():
    assert by_reference(payments(V02), "RF39")["payer_type"] == "patient"


def test_a_debit_is_ignored_not_rejected():
    parsed = camt053.read(V02)
    assert parsed.rejects == [] and 1800 not in parsed.frame["amount_cents"].tolist()
    assert any("1 écriture(s) de débit ignorée(s)" in w for w in parsed.warnings)


def test_a_pending_entry_is_ignored():
    parsed = camt053.read(V04)
    assert 3000 not in parsed.frame["amount_cents"].tolist()
    assert any("statut PDNG" in w for w in parsed.warnings)


def test_version_08_reads_the_status_code_and_party_names():
    frame = payments(V08)
    assert frame["payer_name"].tolist() == ["CAISSE PRIMAIRE D'ASSURANCE MALADIE DU RHONE", "VIAMEDIS"]
    assert frame["payer_type"].tolist() == ["amo", "amc"]


def test_the_entry_reference_is_the_id_when_the_bank_gives_no_servicer_reference():
    assert payments(V08)["payment_id"].tolist() == ["250319000001", "250319000003"]


def test_a_utf8_bom_and_crlf_lines_are_read():
    assert len(payments(V04)) == 3


def test_the_source_line_is_the_line_where_the_entry_starts():
    lines = V02.read_text(encoding="utf-8").splitlines()
    for source_line in payments(V02)["source_line"]:
        assert lines[source_line - 1].strip() == "<Ntry>"


def test_rows_read_counts_payments_and_rejects():
    assert camt053.read(V04).rows_read == 5


# --- rejects ------------------------------------------------------------------------------

def test_a_usd_credit_is_rejected_with_its_line_field_and_reason():
    reject = next(r for r in camt053.read(V04).rejects if r.field == "Amt@Ccy")
    assert (reject.file, reject.line, reject.reason) == ("camt053_v04_bom.xml", 63,
                                                         "devise USD refusée : les montants sont en euros")


def test_an_amount_with_three_decimals_is_rejected():
    reject = next(r for r in camt053.read(V04).rejects if r.field == "Amt")
    assert reject.line == 135 and "45.678" in reject.reason


@pytest.mark.parametrize("amount", ["0.00", "-12.00", "12,50", "abc", ""])
def test_an_amount_that_is_not_positive_euros_and_cents_is_rejected(tmp_path, amount):
    path = tmp_path / "stmt.xml"
    path.write_text(statement(credit(amount, ref="R1")), encoding="utf-8")
    parsed = camt053.read(path)
    assert parsed.frame.empty and [r.field for r in parsed.rejects] == ["Amt"]


def test_trailing_zeros_after_the_cents_are_accepted(tmp_path):
    path = tmp_path / "stmt.xml"
    path.write_text(statement(credit("12.500", ref="R1")), encoding="utf-8")
    assert payments(path)["amount_cents"].tolist() == [1250]


# --- ids ------------------------------------------------------------------------------------

def test_a_missing_bank_reference_falls_back_to_a_stable_hash():
    ids = payments(V04).query("payer_name == 'MME MARIE MARTIN'")["payment_id"]
    assert all(i.startswith("camt-") and len(i) == len("camt-") + 16 for i in ids)


def test_two_identical_transfers_keep_two_distinct_ids():
    ids = payments(V04).query("payer_name == 'MME MARIE MARTIN'")["payment_id"]
    assert len(ids) == 2 and ids.nunique() == 2


@pytest.mark.parametrize("path", ALL_CAMT, ids=lambda p: p.name)
def test_reading_the_same_file_twice_yields_identical_frames(path):
    pd.testing.assert_frame_equal(payments(path), payments(path))


def test_hash_ids_do_not_depend_on_where_the_file_lives(tmp_path):
    copy = tmp_path / "copie.xml"
    copy.write_bytes(V04.read_bytes())
    assert payments(copy)["payment_id"].tolist() == payments(V04)["payment_id"].tolist()


def test_a_reference_reused_by_the_bank_still_gives_unique_ids(tmp_path):
    path = tmp_path / "stmt.xml"
    path.write_text(statement(credit("10.00", ref="DUP") + credit("20.00", ref="DUP")), encoding="utf-8")
    assert payments(path)["payment_id"].tolist() == ["DUP", "DUP-2"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**7), st.sampled_from(["M A", "CPAM 34", "MGEN"]),
                          st.sampled_from(["", "R1", "R2"])), max_size=12))
def test_money_is_conserved_and_ids_are_unique_for_any_credits(credits):
    entries = "".join(credit(f"{c // 100}.{c % 100:02d}", name, ref) for c, name, ref in credits)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "stmt.xml"
        path.write_text(statement(entries), encoding="utf-8")
        frame = payments(path)
    assert frame["amount_cents"].sum() == sum(c for c, _, _ in credits)
    assert frame["payment_id"].is_unique and len(frame) == len(credits)


# --- whole-file errors ----------------------------------------------------------------------

def test_an_empty_statement_gives_an_empty_frame_with_the_payment_columns(tmp_path):
    path = tmp_path / "stmt.xml"
    path.write_text(statement(""), encoding="utf-8")
    parsed = camt053.read(path)
    assert parsed.frame.empty and list(parsed.frame.columns) == PAYMENT_COLUMNS and parsed.rows_read == 0


def test_a_truncated_file_raises_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "coupe.xml"
    path.write_bytes(V02.read_bytes()[:3000])
    with pytest.raises(RecouvrementError) as caught:
        camt053.read(path)
    assert caught.value.file == "coupe.xml" and caught.value.line is not None
    assert "coupe.xml:" in str(caught.value)


def test_a_file_that_is_not_xml_raises_an_error_naming_the_file(tmp_path):
    path = tmp_path / "releve.xml"
    path.write_bytes((BANK / "cfonb120_crlf.txt").read_bytes())
    with pytest.raises(RecouvrementError, match="releve.xml:1: fichier XML mal formé"):
        camt053.read(path)


def test_an_xml_file_that_is_not_a_statement_raises(tmp_path):
    path = tmp_path / "virements.xml"
    path.write_text('<?xml version="1.0"?><Document><CstmrCdtTrfInitn/></Document>', encoding="utf-8")
    with pytest.raises(RecouvrementError, match="pas un relevé camt.053"):
        camt053.read(path)


def test_a_doctype_is_refused(tmp_path):
    path = tmp_path / "stmt.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<Document/>', encoding="utf-8")
    with pytest.raises(RecouvrementError, match="DOCTYPE"):
        camt053.read(path)


# --- insurers -------------------------------------------------------------------------------

def test_the_repository_insurers_file_loads():
    insurers = load_insurers()
    assert "CPAM" in insurers.amo and "MGEN" in insurers.amc


@pytest.mark.parametrize(("name", "kind"), [
    ("C.P.A.M. de l'Hérault", "amo"), ("CPAM75", "amo"), ("Mutualité Sociale Agricole", "amo"),
    ("AG2R LA MONDIALE", "amc"), ("Intériale", "amc"), ("SP SANTE", "amc"),
    ("M ALAN DUPONT", "patient"), ("MSABIR KARIM", "patient"), ("", "patient"),
])
def test_payer_type_matches_normalised_insurer_names_as_whole_words(name, kind):
    assert load_insurers().payer_type(name) == kind


def test_payer_types_agrees_with_payer_type_and_keeps_the_index():
    insurers = load_insurers()
    names = pd.Series(["CPAM DU RHONE", None, "HARMONIE MUTUELLE", "MME LEA MARTIN"], index=[7, 3, 9, 1])
    kinds = insurers.payer_types(names)
    assert kinds.index.tolist() == [7, 3, 9, 1]
    assert kinds.tolist() == [insurers.payer_type(n) for n in names.tolist()]


def test_given_insurers_replace_the_repository_file():
    frame = camt053.read(V02, Insurers(amo=(), amc=("DUPONT",))).frame
    assert by_reference(frame, "RF39")["payer_type"] == "amc"


def test_an_insurers_file_without_amc_names_is_refused(tmp_path):
    path = tmp_path / "insurers.toml"
    path.write_text('[amo]\nnames = ["CPAM"]\n', encoding="utf-8")
    with pytest.raises(RecouvrementError) as caught:
        load_insurers(path)
    assert caught.value.field == "amc.names"


def test_an_insurers_file_that_is_not_toml_is_refused(tmp_path):
    path = tmp_path / "insurers.toml"
    path.write_text("[amo\nnames = ", encoding="utf-8")
    with pytest.raises(RecouvrementError, match="fichier TOML invalide"):
        load_insurers(path)


# --- statements as banks really send them -----------------------------------------------------

NO_STATUS = BANK / "camt053_v04_no_status_foreign.xml"


def test_an_entry_without_a_status_is_booked_with_a_warning():
    parsed = camt053.read(NO_STATUS)
    assert 4500 in parsed.frame["amount_cents"].tolist()
    assert any("3 écriture(s) sans statut (Sts) lue(s) comme comptabilisée(s)" in w for w in parsed.warnings)


def test_an_entry_with_a_pending_status_stays_ignored_among_entries_without_one():
    parsed = camt053.read(NO_STATUS)
    assert 15000 not in parsed.frame["amount_cents"].tolist()
    assert any("statut PDNG" in w for w in parsed.warnings)


def test_a_single_transaction_in_another_currency_is_read_from_the_entry_euro_amount():
    parsed = camt053.read(NO_STATUS)
    row = by_reference(parsed.frame, "F2025-000415")
    assert (row["amount_cents"], row["payer_name"], row["payment_id"]) == (9218, "MR JOHN MILLER", "CMB20032025V0002")
    assert parsed.rejects == []


def test_a_batch_transaction_in_another_currency_is_read_from_its_euro_countervalue():
    frame = payments(NO_STATUS)
    assert by_reference(frame, "F2025-000418")["amount_cents"] == 4236
    assert by_reference(frame, "F2025-000419")["amount_cents"] == 2828


def test_a_batch_transaction_in_another_currency_without_any_euro_amount_is_refused(tmp_path):
    batch = ('<Ntry><Amt Ccy="EUR">30.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
             '<BookgDt><Dt>2025-03-12</Dt></BookgDt>'
             '<NtryDtls><TxDtls><Amt Ccy="USD">20.00</Amt></TxDtls><TxDtls><Amt Ccy="EUR">10.00</Amt></TxDtls>'
             '</NtryDtls></Ntry>\n')
    path = tmp_path / "stmt.xml"
    path.write_text(statement(batch), encoding="utf-8")
    parsed = camt053.read(path)
    assert parsed.frame["amount_cents"].tolist() == [1000]
    assert [(r.field, r.reason) for r in parsed.rejects] == [("Amt@Ccy", "devise USD refusée : les montants sont en euros")]


# --- bounds -------------------------------------------------------------------------------------

def test_an_amount_above_ten_million_euros_is_refused_with_its_line(tmp_path):
    path = tmp_path / "stmt.xml"
    path.write_text(statement(credit("10000000.00", ref="R1") + credit("10000000.01", ref="R2")), encoding="utf-8")
    parsed = camt053.read(path)
    assert parsed.frame["amount_cents"].tolist() == [1_000_000_000]
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (5, "Amt", "montant supérieur au maximum admis (10 000 000,00 € par ligne)")]


@pytest.mark.parametrize("day", ["1899-12-31", "2101-01-01"])
def test_a_booking_date_outside_1900_to_2100_is_refused_with_its_line(tmp_path, day):
    path = tmp_path / "stmt.xml"
    path.write_text(statement(credit("12.00", ref="R1").replace("2025-03-12", day)), encoding="utf-8")
    parsed = camt053.read(path)
    assert parsed.frame.empty
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (4, "BookgDt", "date hors de la période admise (1900 à 2100)")]


# --- limits and XML attacks: refused fast, in little memory, naming the file --------------------

def refused_within(path: Path, megabytes: float) -> RecouvrementError:
    tracemalloc.start()
    try:
        with pytest.raises(RecouvrementError) as refused:
            camt053.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < megabytes * 2**20, f"{peak / 2**20:.1f} MiB"
    assert refused.value.file == path.name
    return refused.value


def test_a_file_above_the_documented_size_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "enorme.xml"
    with open(path, "wb") as handle:
        handle.write(statement(credit("12.00")).encode())
        handle.truncate(camt053.MAX_FILE_BYTES + 1)          # sparse: nothing is written, the size is real
    error = refused_within(path, 1)
    assert "fichier trop volumineux pour un relevé camt.053" in str(error) and "maximum 100 Mo" in str(error)


def test_a_deeply_nested_file_of_fifty_megabytes_is_refused_in_little_memory(tmp_path):
    path = tmp_path / "profond.xml"
    depth = 50 * 2**20 // 7
    with open(path, "wb") as handle:
        handle.write(statement("<Ntry>@</Ntry>").split("@")[0].encode())
        handle.write(b"<Ustrd>" * depth)
    error = refused_within(path, 5)
    assert f"plus de {camt053.MAX_DEPTH} niveaux" in str(error) and error.line == 4


def test_an_entry_with_too_many_elements_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(camt053, "MAX_ENTRY_ELEMENTS", 1000)
    path = tmp_path / "large.xml"
    path.write_text(statement("<Ntry>" + "<Ustrd>x</Ustrd>" * 1000 + "</Ntry>\n"), encoding="utf-8")
    error = refused_within(path, 5)
    assert "plus de 1000 éléments XML" in str(error) and error.line == 4


def test_a_tag_with_millions_of_attributes_is_refused_in_little_memory(tmp_path):
    path = tmp_path / "attributs.xml"
    with open(path, "wb") as handle:
        handle.write(statement("<Ntry>@</Ntry>").split("@")[0].encode() + b"<Amt")
        for block in range(40):
            handle.write(b"".join(b' a%d=""' % n for n in range(block * 50_000, (block + 1) * 50_000)))
    error = refused_within(path, 8)
    assert "balise ou un texte XML de plus de 1 Mo" in str(error)


def test_a_statement_at_the_depth_of_real_files_is_read(tmp_path):
    deep = ("<RmtInf><Strd><RfrdDocInf><LineDtls><Id><Tp><CdOrPrtry><Cd>CINV</Cd></CdOrPrtry></Tp></Id>"
            "</LineDtls></RfrdDocInf></Strd><Ustrd>F1</Ustrd></RmtInf>")
    path = tmp_path / "stmt.xml"
    path.write_text(statement(credit("12.00", ref="R1").replace("<RmtInf><Ustrd>FACTURE F1</Ustrd></RmtInf>", deep)),
                    encoding="utf-8")
    assert payments(path)["reference"].tolist() == ["F1"]


ATTACKS = {
    "billion laughs": ('<?xml version="1.0"?>\n<!DOCTYPE Document [\n<!ENTITY a "aaaaaaaaaa">\n'
                       + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(9))
                       + ']>\n<Document><BkToCstmrStmt><Stmt><Ntry><AddtlNtryInf>&j;</AddtlNtryInf></Ntry>'
                         '</Stmt></BkToCstmrStmt></Document>'),
    "external entity (XXE)": ('<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                              "<Document><BkToCstmrStmt><Stmt><Ntry><AddtlNtryInf>&x;</AddtlNtryInf></Ntry>"
                              "</Stmt></BkToCstmrStmt></Document>"),
    "external DTD": ('<?xml version="1.0"?>\n<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/camt.dtd">\n'
                     "<Document><BkToCstmrStmt/></Document>"),
    "parameter entity": ('<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n'
                         "<Document><BkToCstmrStmt/></Document>"),
    "undeclared entity": ('<?xml version="1.0"?>\n<Document><BkToCstmrStmt><Stmt><Ntry>'
                          "<AddtlNtryInf>&x;</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>"),
}


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_xml_attacks_are_refused_cleanly_in_little_memory(tmp_path, attack):
    path = tmp_path / "releve.xml"
    path.write_text(ATTACKS[attack], encoding="utf-8")
    error = refused_within(path, 2)
    assert error.line in (2, 3) and "root:" not in str(error)
    assert "DOCTYPE" in str(error) or "undefined entity" in str(error)
