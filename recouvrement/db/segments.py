"""What the segments read of each patient's history: the days invoices reached level 2, broken plans."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from sqlalchemy import Connection, text

from recouvrement.core.segments import PatientHistory, SegmentResult, segment
from recouvrement.db.holds import patients_on_hold
from recouvrement.db.values import as_date
from recouvrement.rules import Rules


def level2_dates(conn: Connection, as_of: date, only: str | None = None) -> dict[str, list[date]]:
    """The day each invoice first reached level 2 (its first letter of level >= 2) by `as_of`, per patient
    (only `only`'s when given)."""
    sql = ("SELECT i.patient_id, MIN(l.as_of) FROM letter_item li "
           "JOIN letter l ON l.letter_id = li.letter_id JOIN invoice i ON i.invoice_number = li.invoice_number "
           "WHERE l.level >= 2 AND l.as_of <= :a" + (" AND i.patient_id = :p" if only else "") +
           " GROUP BY i.patient_id, li.invoice_number")
    found: dict[str, list[date]] = defaultdict(list)
    for patient_id, day in conn.execute(text(sql), {"a": as_of, "p": only}):
        found[patient_id].append(as_date(day))
    return found


def broken_plan_dates(conn: Connection, as_of: date, only: str | None = None) -> dict[str, list[date]]:
    """The days the patients' plans broke, by `as_of`, per patient (only `only`'s when given)."""
    sql = ("SELECT patient_id, ended_on FROM plan WHERE status = 'broken' AND ended_on IS NOT NULL "
           "AND ended_on <= :a" + (" AND patient_id = :p" if only else ""))
    found: dict[str, list[date]] = defaultdict(list)
    for patient_id, day in conn.execute(text(sql), {"a": as_of, "p": only}):
        found[patient_id].append(as_date(day))
    return found


def patient_ids(conn: Connection, only: str | None = None) -> list[str]:
    """Every patient's id in order; or [only] when that patient exists ([] when not)."""
    if only:
        return [r[0] for r in conn.execute(text("SELECT patient_id FROM patient WHERE patient_id = :p"), {"p": only})]
    return [r[0] for r in conn.execute(text("SELECT patient_id FROM patient ORDER BY patient_id"))]


def patient_segments(conn: Connection, as_of: date, rules: Rules,
                     patient_id: str | None = None) -> dict[str, SegmentResult]:
    """Every known patient's segment on as_of (or one patient's), with its reasons."""
    return segments_of(conn, as_of, rules, patient_ids(conn, patient_id), patient_id)


def segments_of(conn: Connection, as_of: date, rules: Rules, among: Iterable[str],
                only: str | None = None) -> dict[str, SegmentResult]:
    """The segment on as_of of each patient of `among` (patients known to the store), with its reasons: the
    history read of every patient (of `only` when given), judged for those asked."""
    level2 = level2_dates(conn, as_of, only)
    broken = broken_plan_dates(conn, as_of, only)
    held = patients_on_hold(conn, as_of)
    plain = segment(PatientHistory(), as_of, rules)   # most patients have no history: judged once
    results: dict[str, SegmentResult] = {}
    for pid in among:
        if pid not in level2 and pid not in broken and pid not in held:
            results[pid] = plain
            continue
        history = PatientHistory(tuple(sorted(level2.get(pid, ()))), tuple(sorted(broken.get(pid, ()))),
                                 pid in held)
        results[pid] = segment(history, as_of, rules)
    return results
