"""Privacy scanner speed on letter-sized texts: microseconds per letter, plain text (best of 5 runs).

    python benchmarks/scanner.py [--letters 100]
Target: well under a millisecond per letter (the scanner runs on every letter, e-mail and export).
"""

from __future__ import annotations

import argparse
import random
import timeit
from pathlib import Path

from recouvrement.core.privacy import load_lexicon, scan_text

CLEAN_LETTER = Path(__file__).resolve().parents[1] / "tests" / "data" / "privacy" / "clean_letter.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=100)
    args = parser.parse_args()
    letter = CLEAN_LETTER.read_text(encoding="utf-8")
    lexicon = load_lexicon()
    rng = random.Random(1)
    texts = ["".join(rng.sample(letter.splitlines(True), 20)) for _ in range(args.letters)]
    best = min(timeit.repeat(lambda: [scan_text(t, lexicon) for t in texts], number=1, repeat=5))
    print(f"{args.letters} letters: {best * 1e6 / args.letters:,.0f} µs per letter (best of 5)")


if __name__ == "__main__":
    main()
