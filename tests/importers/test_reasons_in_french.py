"""What a clinic accountant reads about a refused row or file is in French (issue #10)."""

from __future__ import annotations

import pytest

from recouvrement.errors import RecouvrementError
from recouvrement.importers import invoices_csv, payments_csv

HEADER = "payment_id;payment_date;payer_type;payer_name;amount;reference\n"


def reasons(tmp_path, *lines: str) -> list[tuple[int, str, str]]:
    path = tmp_path / "paiements.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return [(r.line, r.field, r.reason) for r in payments_csv.read(path).rejects]


def test_a_bad_date_is_refused_with_a_french_reason(tmp_path):
    assert reasons(tmp_path, "P1;31/02/2025;patient;DURAND;10,00;F1") == [
        (2, "payment_date", "pas une date (attendu jj/mm/aaaa ou aaaa-mm-jj) : 31/02/2025")]


def test_a_bad_amount_is_refused_with_a_french_reason(tmp_path):
    assert reasons(tmp_path, "P1;01/03/2025;patient;DURAND;dix euros;F1", "P2;01/03/2025;patient;DURAND;-5,00;F1",
                   "P1;01/03/2025;patient;DURAND;10,00;F1") == [
        (2, "amount", "pas un montant en euros : dix euros"),
        (3, "amount", "doit être positif"),
        (4, "payment_id", "figure deux fois dans ce fichier : P1")]


def test_a_missing_column_refuses_the_file_with_a_french_message(tmp_path):
    path = tmp_path / "factures.csv"
    path.write_text("invoice_number;issue_date;patient_id\nF1;01/03/2025;P1\n", encoding="utf-8")
    with pytest.raises(RecouvrementError) as refused:
        invoices_csv.read(path)
    assert str(refused.value) == ("factures.csv:1: colonne(s) manquante(s) : last_name, first_name, address, "
                                  "postal_code, city, total_amount, amo_amount")
