"""Patient segments: each patient's history read from the store, judged by core.segments."""

from __future__ import annotations

from collections import Counter

from recouvrement.db.accounts import queued_payment_holds  # noqa: F401  (the ladder's waits, shown with segments)
from recouvrement.db.segments import patient_segments  # noqa: F401  (still importable here)
from recouvrement.core.segments import CHRONIC, ON_HOLD, ONE_OFF, SegmentResult

SEGMENTS = (ONE_OFF, CHRONIC, ON_HOLD)


def segment_counts(results: dict[str, SegmentResult]) -> dict[str, int]:
    counts = Counter(r.segment for r in results.values())
    return {name: counts.get(name, 0) for name in SEGMENTS}
