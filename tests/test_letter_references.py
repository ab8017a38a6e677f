"""The letters' references (db.letter_references): which invoices the RF references a night's payments quote designate."""

from __future__ import annotations

from sqlalchemy import text

from recouvrement.db.letter_references import letter_invoices

_LETTERS = [("L1", "RF18LETTER1", ["F3", "F1"]), ("L2", "RF45LETTER2", ["F2"]), ("L3", None, ["F9"])]


def _store_letters(conn) -> None:
    for letter_id, reference, numbers in _LETTERS:
        conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, sha256, "
                          "file, rf_reference, status, attempts) VALUES (:l, 'P1', 1, 'relance_1', 'letter', "
                          "'2026-01-05', 1000, 'x', 'x.html', :r, 'written', 0)"), {"l": letter_id, "r": reference})
        for number in numbers:
            conn.execute(text("INSERT INTO letter_item (letter_id, invoice_number, amount_cents, level) "
                              "VALUES (:l, :n, 500, 1)"), {"l": letter_id, "n": number})


def test_many_references_read_at_once_find_the_same_invoices_as_a_few(engine):
    with engine.begin() as conn:
        _store_letters(conn)
        few = letter_invoices(conn, ["RF45LETTER2", "RF18LETTER1", "RF00NOLETTER"])
        noise = [f"RF99NOISE{k:05d}" for k in range(1200)]          # more than a statement's parameters
        many = letter_invoices(conn, [*noise[:600], "RF45LETTER2", "RF18LETTER1", *noise[600:]])
    rows = [("RF18LETTER1", "F1"), ("RF18LETTER1", "F3"), ("RF45LETTER2", "F2")]
    assert list(zip(few["reference"], few["invoice_number"])) == rows
    assert list(zip(many["reference"], many["invoice_number"])) == rows
    assert list(many.columns) == ["reference", "invoice_number"]


def test_many_references_find_nothing_while_no_letter_has_a_reference(engine):
    with engine.begin() as conn:
        assert letter_invoices(conn, [f"RF99NOISE{k:05d}" for k in range(1200)]).empty
        _store_letters(conn)
        assert len(letter_invoices(conn, [f"RF99NOISE{k:05d}" for k in range(1200)] + ["RF45LETTER2"])) == 1
