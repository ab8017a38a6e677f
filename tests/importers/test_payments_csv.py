"""Payments CSV importer: remittance lines read as their senders mean them, and the bounds of a line."""

from __future__ import annotations

from pathlib import Path

from recouvrement.importers import payments_csv

HEADER = "payment_id;payment_date;payer_type;payer_name;amount;reference;invoice_number;status;reject_reason"


def read(tmp_path: Path, *rows: str):
    path = tmp_path / "remise.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return payments_csv.read(path)


def test_a_rejection_line_of_zero_euros_is_a_rejection_not_a_refused_row(tmp_path):
    parsed = read(tmp_path, "R1;2025-03-02;amc;MGEN;0,00;;F2025-000101;rejected;Droits fermés")
    assert parsed.rejects == []
    assert parsed.frame[["payment_id", "status", "amount_cents", "invoice_number"]].values.tolist() == [
        ["R1", "rejected", 0, "F2025-000101"]]


def test_a_paid_line_of_zero_euros_is_still_refused(tmp_path):
    parsed = read(tmp_path, "P1;2025-03-02;amo;CPAM;0,00;;F2025-000101;paid;")
    assert parsed.frame.empty and [(r.line, r.field) for r in parsed.rejects] == [(2, "amount")]


def test_a_negative_rejection_line_is_still_refused(tmp_path):
    parsed = read(tmp_path, "R1;2025-03-02;amc;MGEN;-5,00;;F2025-000101;rejected;")
    assert parsed.frame.empty and [(r.line, r.field) for r in parsed.rejects] == [(2, "amount")]


def test_an_amount_above_ten_million_euros_is_refused_with_its_line(tmp_path):
    parsed = read(tmp_path, "P1;2025-03-02;amo;CPAM;10 000 000,00;;F1;paid;",
                  "P2;2025-03-02;amo;CPAM;10 000 000,01;;F1;paid;")
    assert parsed.frame["payment_id"].tolist() == ["P1"]
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (3, "amount", "montant supérieur au maximum admis (10 000 000,00 € par ligne)")]


def test_a_payment_date_outside_1900_to_2100_is_refused_with_its_line(tmp_path):
    parsed = read(tmp_path, "P1;31/12/1899;amo;CPAM;10,00;;F1;paid;", "P2;01/01/1900;amo;CPAM;10,00;;F1;paid;",
                  "P3;2100-12-31;amo;CPAM;10,00;;F1;paid;", "P4;2101-01-01;amo;CPAM;10,00;;F1;paid;")
    assert parsed.frame["payment_id"].tolist() == ["P2", "P3"]
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (2, "payment_date", "date hors de la période admise (1900 à 2100)"),
        (5, "payment_date", "date hors de la période admise (1900 à 2100)")]


def test_a_clawback_line_is_an_insurer_taking_back_a_negative_amount(tmp_path):
    parsed = read(tmp_path, "K1;2025-03-02;amo;CPAM;-12,50;RETENUE;F2025-000101;clawback;")
    assert parsed.rejects == []
    assert parsed.frame[["status", "amount_cents", "invoice_number"]].values.tolist() == [
        ["clawback", -1250, "F2025-000101"]]


def test_a_clawback_must_be_negative_an_insurers_and_name_its_invoice(tmp_path):
    parsed = read(tmp_path, "K1;2025-03-02;amo;CPAM;12,50;;F2025-000101;clawback;",
                  "K2;2025-03-02;patient;DURAND;-12,50;;F2025-000101;clawback;",
                  "K3;2025-03-02;amc;MGEN;-12,50;;;clawback;")
    assert parsed.frame.empty
    assert [(r.line, r.field) for r in parsed.rejects] == [(2, "amount"), (3, "status"), (4, "invoice_number")]


def test_ids_repeated_in_a_file_are_found_whether_the_file_lists_them_in_order_or_not():
    import pandas as pd

    from recouvrement.importers.tabular import repeated_cells
    samples = [["A1", "A2", "A3"], ["A1", "A2", "A2", "A3"], ["A2", "A1", "A2"], ["B", "A", "B", "A"],
               ["Straße", "Strasse", "STRASSE", "Straße"], ["x"], [], ["A1", "A10", "A2", "A10"]]
    for ids in samples:
        series = pd.Series(ids, dtype="str")
        assert repeated_cells(series).tolist() == series.duplicated().tolist(), ids


def test_a_repeated_id_in_an_ordered_file_is_refused_on_its_second_line(tmp_path):
    parsed = read(tmp_path, "P1;2025-03-02;amo;CPAM;10,00;;F1;paid;", "P2;2025-03-02;amo;CPAM;10,00;;F2;paid;",
                  "P2;2025-03-02;amo;CPAM;11,00;;F3;paid;", "P3;2025-03-02;amo;CPAM;12,00;;F4;paid;")
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (4, "payment_id", "figure deux fois dans ce fichier : P2")]
    assert parsed.frame["payment_id"].tolist() == ["P1", "P2", "P3"]
