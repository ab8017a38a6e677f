"""The FEC's published structure (article A47 A-1 du LPF, BOI-CF-IOR-60-40-20), checked as DGFiP's
Test Compta Demat checks it (github.com/DGFiP/Test-Compta-Demat, src/testeur/trt_txt.pl, fmt_arrete and
SQL/FECBIC.sql): the 18 field names of the header in order, the same number of zones on every line,
the mandatory zones filled, an account number starting with three digits, dates AAAAMMJJ that exist,
numbers with a decimal comma and no thousands separator, a debit or a credit on each line (never both,
never neither) — and what the tool leaves to the auditor: entries numbered on one continuous,
chronological sequence, each balanced, and the file named <SIREN>FEC<AAAAMMJJ>.txt.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

FIELDS = ["JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
          "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
          "ValidDate", "Montantdevise", "Idevise"]
MANDATORY = ["JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "PieceRef",
             "PieceDate", "EcritureLib", "Debit", "Credit", "ValidDate"]
DATES = {"EcritureDate": True, "PieceDate": True, "ValidDate": True, "DateLet": False}
NUMBERS = ["Debit", "Credit", "Montantdevise"]
AMOUNT = re.compile(r"^-?[0-9]+(,[0-9]{1,2})?$")
FILE_NAME = re.compile(r"^[0-9]{9}FEC[0-9]{8}\.txt$")


def cents(value: str) -> int:
    units, _, frac = value.lstrip("-").partition(",")
    amount = int(units) * 100 + int((frac + "00")[:2])
    return -amount if value.startswith("-") else amount


def read_fec(path: Path) -> tuple[str, list[dict[str, str]]]:
    """The separator and the records of a FEC; AssertionError on the first departure from the structure."""
    raw = path.read_bytes()
    text = raw.decode("iso-8859-15")                    # A47 A-1 III 1°: ASCII, ISO 8859-15 or EBCDIC
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "records end with CR LF"
    lines = text[:-2].split("\r\n")
    separator = "|" if "|" in lines[0] else "\t"
    assert lines[0].split(separator) == FIELDS, "the header names the 18 fields in their order"
    records = []
    for number, line in enumerate(lines[1:], 2):
        zones = line.split(separator)
        assert len(zones) == len(FIELDS), f"line {number}: {len(zones)} zones"
        record = dict(zip(FIELDS, zones))
        for name in MANDATORY:
            assert record[name].strip(), f"line {number}: {name} is mandatory"
        assert re.match(r"^[0-9]{3}", record["CompteNum"]), f"line {number}: CompteNum starts with 3 digits"
        for name, required in DATES.items():
            if record[name] or required:
                assert re.fullmatch(r"(19|20)[0-9]{6}", record[name]), f"line {number}: {name} AAAAMMJJ"
                datetime.strptime(record[name], "%Y%m%d")
        for name in NUMBERS:
            if record[name]:
                assert AMOUNT.match(record[name]), f"line {number}: {name} {record[name]!r}"
        debit, credit = cents(record["Debit"]), cents(record["Credit"])
        assert (debit == 0) != (credit == 0), f"line {number}: one debit or one credit"
        assert bool(record["Montantdevise"]) == bool(record["Idevise"]), f"line {number}: currency zones go together"
        records.append(record)
    return separator, records


def check_entries(records: list[dict[str, str]]) -> dict[str, tuple[int, int]]:
    """Each entry (EcritureNum) balanced, dated once, in one journal; numbered 1, 2, 3 … in date order.
    Returns entry number -> (debit, credit) in cents."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    dates, journals, order = {}, {}, []
    for record in records:
        number = record["EcritureNum"]
        if number not in totals:
            order.append(number)
        totals[number][0] += cents(record["Debit"])
        totals[number][1] += cents(record["Credit"])
        assert dates.setdefault(number, record["EcritureDate"]) == record["EcritureDate"]
        assert journals.setdefault(number, record["JournalCode"]) == record["JournalCode"]
    assert [int(n) for n in order] == list(range(1, len(order) + 1)), "one continuous sequence"
    assert [dates[n] for n in order] == sorted(dates[n] for n in order), "numbered in date order"
    for number, (debit, credit) in totals.items():
        assert debit == credit, f"entry {number} balances"
    return {n: (d, c) for n, (d, c) in totals.items()}
