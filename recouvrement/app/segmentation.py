"""Patient segments: each patient's history read from the store, judged by core.segments."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import Connection

from recouvrement.db.holds import patients_on_hold
from recouvrement.db.segments import broken_plan_dates, level2_dates, patient_ids
from recouvrement.core.segments import CHRONIC, ON_HOLD, ONE_OFF, PatientHistory, SegmentResult, segment
from recouvrement.rules import Rules

SEGMENTS = (ONE_OFF, CHRONIC, ON_HOLD)


def patient_segments(conn: Connection, as_of: date, rules: Rules,
                     patient_id: str | None = None) -> dict[str, SegmentResult]:
    """Every known patient's segment on as_of (or one patient's), with its reasons."""
    level2 = level2_dates(conn, as_of, patient_id)
    broken = broken_plan_dates(conn, as_of, patient_id)
    held = patients_on_hold(conn, as_of)
    plain = segment(PatientHistory(), as_of, rules)   # most patients have no history: judged once
    results: dict[str, SegmentResult] = {}
    for pid in patient_ids(conn, patient_id):
        if pid not in level2 and pid not in broken and pid not in held:
            results[pid] = plain
            continue
        history = PatientHistory(tuple(sorted(level2.get(pid, ()))), tuple(sorted(broken.get(pid, ()))),
                                 pid in held)
        results[pid] = segment(history, as_of, rules)
    return results


def segment_counts(results: dict[str, SegmentResult]) -> dict[str, int]:
    counts = Counter(r.segment for r in results.values())
    return {name: counts.get(name, 0) for name in SEGMENTS}
