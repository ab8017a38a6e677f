"""core.reconcile's Arrow paths give what Python's own string operations give: _text_candidates
(the pandas path it replaced, kept here as the reference), word for word and in the same order."""

import random
import re

import numpy as np
import pandas as pd

from recouvrement.core.reconcile import MIN_TEXT_NUMBER, _text_candidates

_PREFIXES = re.compile(r"^(?:FACTURE|FACT|FAC|FCT|INVOICE|INV|NUMERO|NUM|NO|N)(?=[0-9A-Z]{%d,}$)" % MIN_TEXT_NUMBER)


def reference_candidates(references: pd.Series) -> pd.Series:
    """The pandas path before Arrow's: explode the words, strip prefixes, join runs by group shifts."""
    tokens = references.fillna("").str.upper().str.replace(r"[^0-9A-Z]+", " ", regex=True).str.strip().str.split()
    one = tokens.explode().dropna()
    one = one.str.replace(_PREFIXES, "", regex=True)
    framed = pd.DataFrame({"token": one.to_numpy(), "row": one.index})
    runs = [framed["token"]]
    joined = framed["token"]
    for size in (2, 3):
        following = framed.groupby("row")["token"].shift(-(size - 1))
        joined = joined + following.fillna("\x00")
        runs.append(joined.where(following.notna()))
    candidates = pd.concat([pd.Series(r.to_numpy(), index=framed["row"]) for r in runs]).dropna()
    candidates = candidates[candidates.str.len() >= MIN_TEXT_NUMBER]
    frame = candidates.rename("c").reset_index().drop_duplicates()
    return pd.Series(frame["c"].to_numpy(), index=frame.iloc[:, 0].to_numpy())


HOSTILE = ["Fact. F2025-000123", "facture ß ﬁn 123456 Straße F-2024-000123 n° 2024 000 123", "٣٤٥٦٧٨ 123456",
           "ǅ ı ǆ 12345 6", "", " -- ", None, float("nan"), "\x00F2025000123\x00", "N N N 000123 000123 000123",
           "FACTURE123456 FACT12345 FAC123456 NO123456 N12345 INV000001 NUMERO1234567", "f2025\t000\n123",
           "RF18 F202 5000 123 merci", "emoji 🙂 F2025000999 é", "a" * 300, "12 34 56 78 90 12 34"]


def _random_text(rng: random.Random) -> str:
    words = ["FACT", "fact", "N", "n°", "F2025", "000123", "12", "345678", "réf", "Straße", "ﬁ", "-", "/", "INV",
             "99999", "ABC", "numero", "٣٤", "x", "2026-01-05"]
    return rng.choice([" ", "", "-", ". "]).join(rng.choice(words) for _ in range(rng.randint(0, 7)))


def test_arrow_candidates_equal_python_s_on_hostile_and_random_texts():
    rng = random.Random(16)
    texts = HOSTILE + [_random_text(rng) for _ in range(3000)]
    references = pd.Series(texts, dtype=object, index=np.arange(len(texts)) * 7 + 3).iloc[::-1]
    found, expected = _text_candidates(references), reference_candidates(references)
    assert found.index.tolist() == expected.index.tolist()
    assert found.tolist() == expected.tolist()


def test_only_plain_or_only_other_texts_or_none():
    for texts in (["F2025-000123 x"], ["Straße 123456"], [None], [], ["F2025-000123 \ud800 000456", "FACT 123456"],
                  ["F2025-000123", 12345678]):
        references = pd.Series(texts, dtype=object)
        found, expected = _text_candidates(references), reference_candidates(references)
        assert found.tolist() == expected.tolist() and found.index.tolist() == expected.index.tolist()


def test_payments_are_taken_in_date_then_id_order_as_pandas_sorts_them():
    from recouvrement.core.reconcile import _date_id_order
    rng = random.Random(7)
    ids = ["A1", "a1", "É2", "Z", "z", "10", "9", "Ω", "🙂", "A1", "", "b\x00"]
    frame = pd.DataFrame({"payment_date": [rng.choice(["2025-04-01", "2025-03-31", "2025-04-10"]) for _ in range(400)],
                          "payment_id": [rng.choice(ids) + str(rng.randint(0, 3)) for _ in range(400)]},
                         index=rng.sample(range(10000), 400), dtype=object)      # as the store reads them
    expected = frame.reset_index(drop=True).sort_values(["payment_date", "payment_id"], kind="stable").index
    assert _date_id_order(frame).tolist() == expected.tolist()
    frame["payment_date"] = pd.to_datetime(frame["payment_date"]).dt.date.astype(object)    # no text: pandas sorts
    expected = frame.reset_index(drop=True).sort_values(["payment_date", "payment_id"], kind="stable").index
    assert _date_id_order(frame).tolist() == expected.tolist()
