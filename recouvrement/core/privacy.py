"""Detectors of medical data in text: CCAM and NGAP act codes, CIM-10 diagnoses, NIR, care words.

Every document that leaves the clinic is scanned first; a finding stops the write. The detectors
are tuned to stay silent on what ordinary letters carry (invoice numbers, RF references, IBAN, BIC,
SIRET, amounts, dates, phone numbers, postal codes, street names) and to report what they find
with the token masked, so that the scan report itself leaks nothing.

>>> [(f.line, f.kind) for f in scan_text("Facture F2025-000123\\nActe HBLD038, cotation AMI 3")]
[(2, 'ccam'), (2, 'ngap')]
>>> scan_text("Suivi en psychiatrie")[0].excerpt
'Suivi en [lexicon:****]'
>>> scan_text("IBAN FR76 3000 6000 0112 3456 7890 189, BIC BNPAFRPPXXX")
[]
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stdnum.fr import nir

from recouvrement.errors import RecouvrementError

DEFAULT_LEXICON = Path(__file__).resolve().parents[1] / "rules" / "medical_terms.txt"
CONTEXT_CHARS = 24  # characters of context kept on each side of a masked token


@dataclass(frozen=True)
class Finding:
    """One piece of medical data found: where (1-based line), what kind, and a masked excerpt."""

    line: int
    kind: str  # "ccam" | "ngap" | "cim10" | "nir" | "lexicon"
    excerpt: str


@dataclass(frozen=True)
class Lexicon:
    """The care words to flag and the phrases that hide them, compiled once."""

    terms: tuple[str, ...]
    allowed: tuple[str, ...]
    pattern: re.Pattern[str]
    allowed_pattern: re.Pattern[str] | None


# ---------------------------------------------------------------- accent and case folding

def _fold_table() -> dict[int, str]:
    """One character in, one character out, so offsets in folded text are offsets in the original."""
    table: dict[int, str] = {}
    for code in range(0x250):
        char = chr(code)
        base = unicodedata.normalize("NFD", char)[0].lower()
        if len(base) == 1 and base != char:
            table[code] = base
    for quote in "\u2019\u2018\u02bc\u00b4`":
        table[ord(quote)] = "'"
    for dash in "\u2010\u2011\u2012\u2013":
        table[ord(dash)] = "-"
    for space in "\u00a0\u202f\u2007\u2009":
        table[ord(space)] = " "
    return table


_FOLD = _fold_table()
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _fold_char(match: re.Match[str]) -> str:
    return _FOLD.get(ord(match[0]), match[0])


def fold(text: str) -> str:
    """Lower case without accents, same length as the input: "Échographie" -> "echographie"."""
    # Only the few non-ASCII characters go through Python; str.lower() keeps the length once
    # U+0130 (the one character it expands) has been folded by the table.
    return _NON_ASCII.sub(_fold_char, text).lower()


# ---------------------------------------------------------------- lexicon

_WORD_SEPARATOR = r"[\s\-]+"
_PLURAL = "s?"


def _term_atoms(term: str) -> tuple[str, ...]:
    """A term as regex atoms: letters, separators between words, an optional plural -s per word."""
    atoms: list[str] = []
    for index, word in enumerate(w for w in re.split(r"[\s\-]+", fold(term).strip()) if w):
        if index:
            atoms.append(_WORD_SEPARATOR)
        atoms.extend(re.escape(char) for char in word)
        if word[-1] not in "sxz'":
            atoms.append(_PLURAL)
    return tuple(atoms)


def _trie_regex(sequences: list[tuple[str, ...]]) -> str:
    """One alternation factored by common prefixes, so each position is tried against one branch."""
    trie: dict = {}
    for atoms in sequences:
        node = trie
        for atom in atoms:
            node = node.setdefault(atom, {})
        node[""] = {}  # end of a term
    return _node_regex(trie)


def _node_regex(node: dict) -> str:
    terminal = "" in node
    branches = [atom + _node_regex(child) for atom, child in sorted(node.items()) if atom]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if terminal:  # longer terms are tried first, the term ending here is the fallback
        return f"(?:{body})?"
    return body


def _whole_words(sequences: list[tuple[str, ...]]) -> re.Pattern[str] | None:
    if not sequences:
        return None
    return re.compile(r"(?<!\w)" + _trie_regex(sequences) + r"(?!\w)")


def build_lexicon(terms: list[str], allowed: list[str] = ()) -> Lexicon:
    """A lexicon from plain lists of terms to flag and phrases that hide them."""
    pattern = _whole_words([_term_atoms(t) for t in terms if t.strip()])
    if pattern is None:
        pattern = re.compile(r"(?!)")  # an empty lexicon matches nothing
    return Lexicon(tuple(terms), tuple(allowed), pattern,
                   _whole_words([_term_atoms(a) for a in allowed if a.strip()]))


def parse_lexicon(text: str) -> Lexicon:
    """Lines of the lexicon file: "term", "!allowed phrase", "# comment"."""
    terms, allowed = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            allowed.append(line[1:].strip())
        else:
            terms.append(line)
    return build_lexicon(terms, allowed)


@lru_cache(maxsize=8)
def _load(path: Path) -> Lexicon:
    try:
        return parse_lexicon(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecouvrementError(f"cannot read the medical lexicon: {exc}", file=str(path)) from exc


def load_lexicon(path: Path | None = None) -> Lexicon:
    """The lexicon of rules/medical_terms.txt (or of the given file), read once per process."""
    return _load(Path(path).resolve() if path is not None else DEFAULT_LEXICON)


# ---------------------------------------------------------------- street names

# A street name: capitalised words (and their particles) after a street type, as in
# "12 rue de la Maternité" or "Place de l'Hôpital". A care word there is an address, not a care.
_STREET = re.compile(
    r"(?<!\w)(?i:rue|avenue|av\.|boulevard|bd|place|all[ée]e|chemin|impasse|quai|cours|square|route"
    r"|passage|villa|cit[ée]|esplanade|parvis|promenade|r[ée]sidence|hameau|sentier|rond-point)(?!\w)"
    r"(?:(?:[ \t]+|(?<=['’]))(?:(?i:de|du|des|la|le|les|aux|au|et|sur|sous|en|saint|sainte|st|ste)(?!\w)"
    r"|(?i:l|d)['’]|[A-ZÀ-ÖØ-Þ][\w'’\-]*)){1,8}"
)
_STREET_TYPE_CAPITALISED = re.compile(r"[A-ZÀ-Þ]")
_NUMBER_BEFORE = re.compile(r"\d[\s,]*(?:(?:bis|ter|b|t)\s*)?$", re.IGNORECASE)


_REACH = 100  # how far before (or after) a care word its street type (or allowed phrase) may stand


def _in_street_name(text: str, start: int, end: int) -> bool:
    """True when the words start:end belong to a street name: "12 rue de la Maternité"."""
    line_start = text.rfind("\n", 0, start) + 1
    for match in _STREET.finditer(text, max(line_start, start - _REACH), end):
        if match.start() <= start and end <= match.end():
            numbered = _NUMBER_BEFORE.search(text, max(0, match.start() - 8), match.start())
            return bool(numbered or _STREET_TYPE_CAPITALISED.match(text, match.start()))
    return False


def _in_allowed_phrase(folded: str, lexicon: Lexicon, start: int, end: int) -> bool:
    """True when the words start:end belong to an allowed phrase: "Assurance Maladie"."""
    if lexicon.allowed_pattern is None:
        return False
    window = lexicon.allowed_pattern.finditer(folded, max(0, start - _REACH), end + _REACH)
    return any(m.start() <= start and end <= m.end() for m in window)


def _lexicon_spans(text: str, folded: str, lexicon: Lexicon) -> list[tuple[int, int, str]]:
    # Care words are rare, so the exceptions are only sought around each of them.
    return [(m.start(), m.end(), "lexicon") for m in lexicon.pattern.finditer(folded)
            if not _in_allowed_phrase(folded, lexicon, *m.span()) and not _in_street_name(text, *m.span())]


# ---------------------------------------------------------------- codes

# NGAP letter keys. AMO and AMC are left out: they also mean the compulsory and complementary
# insurers, which letters name. One-letter keys need a space before their coefficient ("K 50");
# longer keys may be glued to it ("AMI3").
NGAP_KEYS = frozenset((
    "C", "V", "G", "K", "Z", "B",
    "CS", "CSC", "CNP", "CCP", "APC", "APY", "APU", "VS", "VG", "VL", "GS", "TC", "TCG", "KC", "KE",
    "KMB", "ZN", "AMI", "AIS", "AMX", "AMK", "AMS", "AMY", "AMP", "POD", "SF", "SFI", "SC", "SPR",
    "TO", "DC", "IFD",
))
_KEY = "(?:" + "|".join(sorted(NGAP_KEYS, key=lambda k: (-len(k), k))) + ")"

# The chapters of CIM-10: letter -> ranges of category numbers that exist (D49 does not: the
# tumours end at D48 and the blood diseases start at D50).
_CIM_CATEGORIES = {letter: ((0, 99),) for letter in "ABCFGIJLMNOQRSUWXZ"} | {
    "D": ((0, 48), (50, 89)), "E": ((0, 90),), "H": ((0, 95),), "K": ((0, 95),), "P": ((0, 96),),
    "T": ((0, 98),), "V": ((1, 99),), "Y": ((0, 98),),
}

# Speed: a pattern that starts with a look-behind makes the regex engine try every position of
# the text; these start by consuming a character class and check what stands before it with a
# look-behind placed after that character (a letter-sized text must scan in well under 1 ms).

# Upper-case tokens at a word start, told apart in one pass:
#   ccam  4 letters (CCAM never uses I nor O) + 3 digits, optionally "-activity-phase": DEQP003-1-0
#   cim   letter + 2 digits + decimals: J45.0 (without decimals, only in a context, see below)
#   key   1 to 3 letters before a number: an NGAP key with its coefficient ("AMI 3", "K 50")
_UPPER_TOKEN = re.compile(
    r"[A-Z](?<![\w.\-/].)(?:"
    r"(?P<ccam>(?<=[A-HJ-NP-Z])[A-HJ-NP-Z]{3}\d{3}(?:[-/.]\d){0,2}(?!\w))"
    r"|(?P<cim>\d{2}\.\d{1,2}[+*]?(?!\w|[.,]\d))"
    r"|(?P<key>[A-Z]{0,2}(?=[ \t]?\d))"
    r")")
_COEFFICIENT = re.compile(r"[ \t]?\d{1,3}(?:[.,]\d{1,2})?(?!\w|[.,]\d)")
# "Bâtiment C 1", "escalier B 2", "vitamine B 12" (sought in folded text): not a cotation.
_NOT_A_COTATION = re.compile(
    r"(?:bat(?:iment)?|esc(?:alier)?|app?t|appartement|porte|etage|residence|lot|hall|entree|bloc"
    r"|tour|secteur|annexe|box|parking|niveau|zone|section|classe|categorie|groupe|type|page|piece"
    r"|art(?:icle)?|chapitre|vitamine|bus|ligne|tome|volume|vol)\.?\s*$")
# Inside an IBAN-like run of 4-character groups ("... 3456 TC12 ...").
_IBAN_GROUP_BEFORE = re.compile(r"[A-Z0-9]{4} $")

# Codes after a keyword: the keyword is sought in folded text, the code in the original.
_NGAP_KEYWORD = re.compile(r"(?:cotation|cot\.|ngap|lettres?[-_ ]cles?|codes?[-_ ]actes?|acte)s?(?!\w)")
_KEY_AFTER_KEYWORD = re.compile(rf"[\s:=\"']*({_KEY})(?!\w)")
_CIM_KEYWORD = re.compile(r"(?:cim[- ]?10|cim|icd[- ]?10|icd|diagnostic|diag\.?|codes?[-_ ]diagnostic"
                          r"|pathologie|affection|ald)s?(?:\s+(?:principal|associe|relie|secondaire)s?)?(?!\w)")
_CIM_AFTER_KEYWORD = re.compile(r"[\s:=\"'\-]*(?:n°\s*)?([A-Z]\d{2}(?:\.?\d{1,2})?)(?!\w)")

# A whole cell of delimited text (CSV, TSV, JSON string) holding a multi-letter NGAP key or a
# CIM-10 code: "F2025-000123;AMI;E11". A cell starts after ; tab | " or a line start, or right
# after a comma (a comma and a space is prose: "Paris, A13").
_CELL = re.compile(
    r"[;\t|\"\n,]([ \t]*)([A-Z][A-Z0-9]{1,2}(?:\.\d{1,2})?)(?:[ \t]*(?=[;\t|\"\r\n])|(?=,)|[ \t]*\Z)")
_CIM_CODE = re.compile(r"[A-Z]\d{2}(?:\.?\d{1,2})?")

# NIR: 15 characters (Corsica: 2A/2B), separated or not by single spaces or dots at the usual places.
_NIR = re.compile(
    r"[1-478](?<!\w.)[ .]?\d{2}[ .]?\d{2}[ .]?(?:\d{2}|2[AaBb])[ .]?\d{3}[ .]?\d{3}[ .]?\d{2}(?!\w)")


def _is_cim_code(code: str) -> bool:
    """True when "E11" or "J45.0" is a code of a real chapter (D49, E99, Y99 are not)."""
    if not _CIM_CODE.fullmatch(code):
        return False
    category = int(code[1:3])
    return any(first <= category <= last for first, last in _CIM_CATEGORIES[code[0]])


def _is_cotation(text: str, folded: str, key: re.Match[str]) -> re.Match[str] | None:
    """The coefficient after an NGAP key ("AMI 3"), unless the pair is an address or an IBAN group."""
    start, end = key.span()
    if key[0] not in NGAP_KEYS:
        return None
    coefficient = _COEFFICIENT.match(text, end)
    if coefficient is None or (len(key[0]) == 1 and text[end] not in " \t"):
        return None
    if _NOT_A_COTATION.search(folded, max(0, start - 16), start) \
            or _IBAN_GROUP_BEFORE.search(text, max(0, start - 5), start):
        return None
    return coefficient


def _upper_token_spans(text: str, folded: str) -> list[tuple[int, int, str]]:
    spans = []
    for token in _UPPER_TOKEN.finditer(text):
        if token["ccam"]:
            spans.append((*token.span(), "ccam"))
        elif token["cim"]:
            if _is_cim_code(token[0]):
                spans.append((*token.span(), "cim10"))
        elif coefficient := _is_cotation(text, folded, token):
            spans.append((token.start(), coefficient.end(), "ngap"))
    return spans


def _after_keyword(text: str, folded: str, keyword: re.Pattern[str],
                   code: re.Pattern[str]) -> list[re.Match[str]]:
    found = []
    for match in keyword.finditer(folded):
        if match.start() and folded[match.start() - 1].isalnum():
            continue
        after = code.match(text, match.end())
        if after:
            found.append(after)
    return found


def _context_spans(text: str, folded: str) -> list[tuple[int, int, str]]:
    """Short codes that only mean care in a context: after a keyword, or alone in a cell."""
    spans = [(*m.span(1), "ngap") for m in _after_keyword(text, folded, _NGAP_KEYWORD, _KEY_AFTER_KEYWORD)]
    spans += [(*m.span(1), "cim10") for m in _after_keyword(text, folded, _CIM_KEYWORD, _CIM_AFTER_KEYWORD)
              if _is_cim_code(m[1])]
    for cell in _CELL.finditer("\n" + text):  # the "\n" makes the first line start like the others
        start, end, code = cell.start(2) - 1, cell.end(2) - 1, cell[2]
        if cell[0][0] == "," and cell[1]:
            continue
        if code in NGAP_KEYS:  # one-letter keys ("C") are too common alone in a cell: not here
            spans.append((start, end, "ngap"))
        elif _is_cim_code(code):
            spans.append((start, end, "cim10"))
    return spans


def _nir_spans(text: str) -> list[tuple[int, int, str]]:
    return [(*m.span(), "nir") for m in _NIR.finditer(text) if nir.is_valid(m.group())]


def _code_spans(text: str, folded: str) -> list[tuple[int, int, str]]:
    return _upper_token_spans(text, folded) + _context_spans(text, folded) + _nir_spans(text)


# ---------------------------------------------------------------- findings

def _distinct(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Sorted spans, dropping one that lies inside an earlier one (found twice by two rules)."""
    kept: list[tuple[int, int, str]] = []
    reach = -1  # the furthest end of the spans kept so far
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if end > reach:
            kept.append((start, end, kind))
            reach = end
    return kept


_PARTIAL_FIRST_WORD = re.compile(r"^[^\s;,|]*[\s;,|]?")
_PARTIAL_LAST_WORD = re.compile(r"[\s;,|]?[^\s;,|]*$")


def _masked_line(text: str, line_start: int, line_end: int,
                 spans: list[tuple[int, int, str]]) -> tuple[str, list[tuple[int, int]]]:
    """A line with each finding on it replaced by "[kind:****]", and where each mask stands."""
    pieces, cursor, length, masks = [], line_start, 0, []
    for start, end, kind in spans:
        start, end = max(start, cursor), min(end, line_end)
        mask = f"[{kind}:****]"
        pieces += [text[cursor:start], mask]
        length += start - cursor
        masks.append((length, length + len(mask)))
        length += len(mask)
        cursor = max(cursor, end)
    pieces.append(text[cursor:line_end])
    return "".join(pieces), masks


def _excerpt(line: str, mask: tuple[int, int]) -> str:
    """A little context around one mask, cut between words so no word is left in halves."""
    left, right = line[:mask[0]], line[mask[1]:]
    if len(left) > CONTEXT_CHARS:
        left = _PARTIAL_FIRST_WORD.sub("", left[-CONTEXT_CHARS:], count=1)
    if len(right) > CONTEXT_CHARS:
        right = _PARTIAL_LAST_WORD.sub("", right[:CONTEXT_CHARS], count=1)
    return re.sub(r"\s+", " ", left + line[mask[0]:mask[1]] + right).strip()


def _findings(text: str, spans: list[tuple[int, int, str]]) -> list[Finding]:
    """Findings line by line: each line is masked once, whatever the number of its findings."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    by_line: dict[int, list[tuple[int, int, str]]] = {}
    for span in spans:
        first, last = bisect.bisect_left(newlines, span[0]), bisect.bisect_left(newlines, span[1] - 1)
        for line in range(first, last + 1):  # a phrase across a line break is masked on both lines
            by_line.setdefault(line, []).append(span)
    findings = []
    for line, on_line in by_line.items():
        line_start = newlines[line - 1] + 1 if line else 0
        line_end = newlines[line] if line < len(newlines) else len(text)
        masked, masks = _masked_line(text, line_start, line_end, on_line)
        findings += [(span[0], Finding(line + 1, span[2], _excerpt(masked, mask)))
                     for span, mask in zip(on_line, masks) if span[0] >= line_start]
    return [finding for _, finding in sorted(findings, key=lambda f: f[0])]


def scan_text(text: str, lexicon: Lexicon | None = None) -> list[Finding]:
    """Every piece of medical data in the text, in reading order, each with a masked excerpt."""
    lexicon = lexicon or load_lexicon()
    folded = fold(text)
    return _findings(text, _distinct(_code_spans(text, folded) + _lexicon_spans(text, folded, lexicon)))
