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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from stdnum import iban
from stdnum.fr import nir

from recouvrement.core.confusables import LOOK_ALIKES
from recouvrement.errors import RecouvrementError, scrub_messages_with

if TYPE_CHECKING:
    import numpy as np

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
    street_pattern: re.Pattern[str] | None = None  # care words real street names carry


# ---------------------------------------------------------------- accent and case folding

def _fold_table() -> dict[int, str]:
    """One character in, one character out, so offsets in folded text are offsets in the original.

    NFKD then the base letter: accents go ("é" -> "e"), and so do compatibility forms that
    `normalise` left (full-width "Ｉ" -> "i", superscripts). Ligatures that expand ("ﬁ") are
    resolved earlier by `normalise`, since folding must keep the length."""
    table: dict[int, str] = {}
    for code in (*range(0x80, 0x2000), *range(0xFF00, 0xFFF0)):
        char = chr(code)
        base = unicodedata.normalize("NFKD", char)[:1].lower()
        if len(base) == 1 and base != char and (base.isalnum() or base in " -'"):
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


# Invisible characters that would split a word or a number without showing: every format character (soft hyphen,
# zero-width spaces and joiners, word joiner, BOM, bidi controls, tags) and the other default-ignorable ones (Hangul
# fillers, combining grapheme joiner, variation selectors). Removed before NFKC, so that what they split composes.
_FILLERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")


def _invisible(char: str) -> bool:
    return char in _FILLERS or unicodedata.category(char) == "Cf" or unicodedata.name(char, "").startswith(
        "VARIATION SELECTOR")


@lru_cache(maxsize=4096)
def _read_as(char: str) -> str | None:
    """What a reader takes one character of NFKC text for, when it is not itself: nothing for an invisible one or a
    combining mark left alone by NFKC ("c\\u0323" reads "c"), another script's digit as its value ("\\u0661" reads
    "1"), a look-alike letter of another script as the Latin one (Cyrillic "\\u043e" reads "o": Unicode's
    confusables), also under its accents (Cyrillic "\\u0457" reads "i"). None for every other character (accented Latin letters are folded later)."""
    if _invisible(char) or unicodedata.category(char) in ("Mn", "Me"):
        return ""
    if unicodedata.category(char) == "Nd":
        return str(unicodedata.decimal(char))
    return LOOK_ALIKES.get(char) or LOOK_ALIKES.get(unicodedata.normalize("NFKD", char)[0])


# No-break, narrow no-break, figure and thin spaces: NFKD (so NFKC) makes each one plain space.
_COMPAT_SPACES = ("\u00a0", "\u202f", "\u2007", "\u2009")


def normalise(text: str) -> str:
    """The text as a reader sees it: NFKC (ligatures, full-width digits), invisible characters and lone combining
    marks removed, other scripts' digits and look-alike letters read as ASCII ones (see `_read_as`).

    Line breaks are kept, so line numbers of findings are those of the given text.

    >>> fold(normalise("Suivi en \\u0441ardio\\u200blogie (\\u0661\\u0668\\u0664...)"))
    'suivi en cardiologie (184...)'
    """
    if text.isascii():
        return text
    # NFKC decomposes each of these spaces to a plain space, whatever stands around it: replacing them first leaves
    # NFKC's result unchanged, and a French letter (its amounts, "1 234,56 €") is then usually NFKC already, which
    # is checked ten times faster than it is normalised (issue #16), and all in Windows-1252 (see _read_as_table).
    for space in _COMPAT_SPACES:
        if space in text:
            text = text.replace(space, " ")
    read_as = _read_as_table(text)
    invisible = [code for code, read in read_as.items() if read == "" and _invisible(chr(code))]
    if invisible:  # rare: removed before NFKC, so that the halves of a word compose again
        text = text.translate(dict.fromkeys(invisible))
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
        read_as = _read_as_table(text)
    return text.translate(read_as) if read_as else text


def _read_as_table(text: str) -> dict[int, str]:
    """`_read_as` of each distinct character of the text that is not itself to a reader, for str.translate.

    A French letter's characters ("é", "’", "€", "œ") all are in Windows-1252, where only the soft hyphen reads as
    something else (held by a test): encoding to it is twice as fast as listing the characters."""
    try:
        text.encode("cp1252")
        if "\u00ad" not in text:
            return {}
    except UnicodeEncodeError:
        pass
    return {ord(char): read for char in set(_NON_ASCII.findall(text)) if (read := _read_as(char)) is not None}


def fold(text: str) -> str:
    """Lower case without accents, same length as the input: "Échographie" -> "echographie".

    An underscore folds to a space: "seance_kine.csv" holds two words, as a reader sees it.
    """
    # Only the few non-ASCII characters go through Python; str.lower() keeps the length once
    # U+0130 (the one character it expands) has been folded by the table.
    return _NON_ASCII.sub(_fold_char, text).lower().replace("_", " ")


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


def _trie_regex(sequences: list[tuple[str, ...]], after_first: str = "") -> str:
    """One alternation factored by common prefixes, so each position is tried against one branch;
    `after_first` stands after the first atom of each term."""
    trie: dict = {}
    for atoms in sequences:
        node = trie
        for atom in atoms:
            node = node.setdefault(atom, {})
        node[""] = {}  # end of a term
    return _node_regex(trie, after_first)


def _node_regex(node: dict, after_first: str = "") -> str:
    terminal = "" in node
    branches = [atom + after_first + _node_regex(child) for atom, child in sorted(node.items()) if atom]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if terminal:  # longer terms are tried first, the term ending here is the fallback
        return f"(?:{body})?"
    return body


def _whole_words(sequences: list[tuple[str, ...]]) -> re.Pattern[str] | None:
    if not sequences:
        return None
    if not all(sequences):  # a term of no word at all ("-"): its empty match is looked behind first
        return re.compile(r"(?<!\w)" + _trie_regex(sequences) + r"(?!\w)")
    # Every term's first atom is one character: the look-behind stands after it, so that the regex engine tries
    # only the positions holding a term's first letter (see "Speed" below; the same matches): the lexicon over the
    # 24 MB of a 1M balance's invoice detail 0.69 -> 0.31 s.
    return re.compile(_trie_regex(sequences, r"(?<!\w.)") + r"(?!\w)")


def build_lexicon(terms: list[str], allowed: Sequence[str] = (), streets: Sequence[str] = ()) -> Lexicon:
    """A lexicon from plain lists of terms to flag, phrases that hide them, and the terms (among
    `terms`) that real street names carry, not flagged inside one ("12 rue de la Maternité")."""
    pattern = _whole_words([_term_atoms(t) for t in terms if t.strip()])
    if pattern is None:
        pattern = re.compile(r"(?!)")  # an empty lexicon matches nothing
    return Lexicon(tuple(terms), tuple(allowed), pattern,
                   _whole_words([_term_atoms(a) for a in allowed if a.strip()]),
                   _whole_words([_term_atoms(s) for s in streets if s.strip()]))


def parse_lexicon(text: str) -> Lexicon:
    """Lines of the lexicon file: "term", "!allowed phrase", "~term also a street name", "# comment"."""
    return build_lexicon(*_entries(text))


def _entries(text: str) -> tuple[list[str], list[str], list[str]]:
    """The lexicon file's terms, allowed phrases and street terms (parse_lexicon)."""
    terms: list[str] = []
    allowed: list[str] = []
    streets: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            allowed.append(line[1:].strip())
        elif line.startswith("~"):
            terms.append(line[1:].strip())
            streets.append(line[1:].strip())
        else:
            terms.append(line)
    return terms, allowed, streets


@lru_cache(maxsize=8)
def _read(path: Path) -> tuple[list[str], list[str], list[str]]:
    try:
        return _entries(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecouvrementError(f"cannot read the medical lexicon: {exc}", file=str(path)) from exc


@lru_cache(maxsize=8)
def _load(path: Path) -> Lexicon:
    return build_lexicon(*_read(path))


# A text this short (a file name, a message) is first looked at word by word: the lexicon's patterns are compiled
# (0.025-0.035 s of CPU, once per process) only when one of its words may begin a term. The night's import of four
# files scans only their names and messages, and then never compiles them.
_LOOKED_AT_FIRST = 1_000     # characters
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=8)
def _first_words(path: Path) -> frozenset[str] | None:
    """The words (runs of \\w) that a match of one of the lexicon's terms in folded text begins with: the pattern
    looks behind a term's first letter for no \\w, and after the term's first word come its plural -s, then a
    separator or the term's end, which no \\w follows; so the run starting there is that word, or the word and an
    s (a first word with a character outside \\w in it, as "l'ivg" would have, gives the run before it). None when
    a term does not begin with a letter or a digit: no word tells then."""
    words: set[str] = set()
    for term in (t for t in _read(path)[0] if t.strip()):
        first = next((w for w in re.split(r"[\s\-]+", fold(term).strip()) if w), "")
        lead = _WORD.match(first)
        if lead is None:
            return None
        words |= {first, first + "s"} if lead.end() == len(first) else {lead[0]}
    return frozenset(words)


def _may_hold_a_term(folded: str) -> bool:
    """Whether the default lexicon may find a term in `folded` (always, for a text past _LOOKED_AT_FIRST): one of
    its words is a word a term begins with (_first_words). Exact when it says no."""
    if len(folded) > _LOOKED_AT_FIRST:
        return True
    words = _first_words(DEFAULT_LEXICON)
    return words is None or any(word in words for word in _WORD.findall(folded))


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
            if not _in_allowed_phrase(folded, lexicon, *m.span()) and not _street_word(text, lexicon, m)]


def _street_word(text: str, lexicon: Lexicon, care: re.Match[str]) -> bool:
    """True for a care word that real street names carry, inside one: "rue de la Maternité" is an
    address; "rue Haute Psychiatre" is not (no street is named so: the word is flagged)."""
    return (lexicon.street_pattern is not None and lexicon.street_pattern.fullmatch(care[0]) is not None
            and _in_street_name(text, *care.span()))


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
#   key   an NGAP key before a number, its coefficient ("AMI 3", "K 50"): the first letter looked behind, then
#         the key's other letters. Only the keys: a token of 1 to 3 letters before a number that is no key ("F2025",
#         "P000015": every line of an invoice CSV) is no cotation, and is left to the regex engine (half a million
#         such tokens in a 1M balance's invoice detail, each a match and a Python call to refuse it: 0.40 -> 0.36 s).
_KEY_AFTER_FIRST = "|".join(
    f"(?<={first})(?:{'|'.join(sorted((key[1:] for key in NGAP_KEYS if key[0] == first), key=lambda k: (-len(k), k)))})"
    for first in sorted({key[0] for key in NGAP_KEYS}))
_UPPER_TOKEN = re.compile(
    r"[A-Z](?<![\w.\-/].)(?:"
    r"(?P<ccam>(?<=[A-HJ-NP-Z])[A-HJ-NP-Z]{3}\d{3}(?:[-/.]\d){0,2}(?!\w))"
    r"|(?P<cim>\d{2}\.\d{1,2}[+*]?(?!\w|\.\d))"  # "J45.0,5 rue": a comma ends a CSV cell
    rf"|(?P<key>(?:{_KEY_AFTER_FIRST})(?=[ \t]?\d))"
    r")")
# A CCAM code typed in lower or title case ("yyyy010", "Hbld038"), sought in folded text. Not a
# piece of an e-mail address, a web address or a file path ("marc123@...", ".../page123"), nor the
# name of an ISO 20022 bank message ("camt053", "pacs008": in statement file names).
_FOLDED_CCAM = re.compile(
    r"[a-hj-np-z](?<![\w.\-/@]\w)[a-hj-np-z]{3}\d{3}(?:[-/.]\d){0,2}(?![\w@]|[./]\w)")
_ISO_20022_AREAS = frozenset(("camt", "pacs", "acmt", "remt", "reda", "secl", "seev", "semt", "sese", "setr", "tsmt"))
_COEFFICIENT = re.compile(r"[ \t]?\d{1,3}(?:[.,]\d{1,2})?(?!\w|[.,]\d)")
# After a key of two letters or more ("AMI", "KC"), a number is a coefficient whatever follows it:
# in a CSV, "AMI 3,0.00" is the cotation and the next cell.
_COEFFICIENT_AFTER_LONG_KEY = re.compile(r"[ \t]?\d{1,3}(?!\d)")
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

# NIR: 13 characters (Corsica: 2A/2B in the department) and a 2-digit key, as people really type
# it: glued ("184127645108946"), after letters ("NIR184127645108946"), or cut between its fields by
# one space or one separator (dot, dash, underscore, slash, and their typographic kin: en dash, minus
# sign, middle dot, bullet) with a space on either side or not: "1 84 12 76 451 089 46",
# "1-84-12-76-451-089-46", "1·84·12·76·451·089·46", "1 - 84 - 12 - 76 - 451 - 089 - 46". Not two
# spaces: fixed-width files and laid-out PDF tables put them between numbers that are no NIR.
# A run of digits joined by such separators is cut into its groups; a NIR is a sequence of whole groups
# holding 15 characters whose cuts fall on field boundaries, and whose key is right (stdnum): IBAN,
# SIRET, phone and date groups never cut there.
_NIR_PUNCTUATION = "._/\\-\u00b7\u2010-\u2015\u2022\u2027\u2212\u2219\u22c5\u30fb"  # a regex class's body
_NIR_SEPARATOR = rf"(?:[ \t]?[{_NIR_PUNCTUATION}][ \t]?|[ \t])"
_DIGIT_RUN = re.compile(rf"\d(?:{_NIR_SEPARATOR}?(?:\d|(?<=2)[AaBb]))*")
# Where digit runs may be: one cheap character-class walk of the text; the exact runs are cut only
# inside the rare stretches long enough to hold a NIR. In a long text, the stretches worth a look are taken from its
# characters sorted once into kinds instead (see _stretches_worth_a_look).
_STRETCH = rf"[\d \t{_NIR_PUNCTUATION}AaBb]"
_DIGITS_AROUND = re.compile(rf"\d{_STRETCH}*")
_SORTED_FROM = 10_000       # characters: a letter's few thousand are walked by the regex engine, a file's sorted
_IN_STRETCH, _DIGIT_CHAR, _CCAM_LETTER = 1, 2, 4      # a character's kinds, bits (see _char_kinds)
_KIND_PATTERNS = ((_IN_STRETCH, re.compile(_STRETCH)), (_DIGIT_CHAR, re.compile(r"\d")),
                  (_CCAM_LETTER, re.compile("[a-hj-np-z]")))
_FIFTEEN_IN_STRETCH = bytes((_IN_STRETCH,)) * 15
_DIGIT_GROUP = re.compile(r"[\dAaBb]+")
_NIR_CUTS = frozenset((1, 3, 5, 7, 10, 13))  # after sex, year, month, department, commune, order
_NIR_FIRST = frozenset("123478")

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
    coefficient = (_COEFFICIENT if len(key[0]) == 1 else _COEFFICIENT_AFTER_LONG_KEY).match(text, end)
    if coefficient is None or (len(key[0]) == 1 and text[end] not in " \t"):
        return None
    glued = text[end] not in " \t"  # "TC12" may be a group of an IBAN, "AMI 3" (a space inside) never is
    if _NOT_A_COTATION.search(folded, max(0, start - 16), start) \
            or (glued and _IBAN_GROUP_BEFORE.search(text, max(0, start - 5), start)):
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


def _nir_spans(text: str, folded: str, long_stretches: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    spans = []
    for start, end in long_stretches:
        for run in _DIGIT_RUN.finditer(text, start, end):
            if run.end() - run.start() >= 15:
                spans += _nirs_in_run(text, [g.span() for g in _DIGIT_GROUP.finditer(text, *run.span())])
        if end - start >= 21:
            spans += [(*m.span(), "nir") for m in _SPACED_NIR.finditer(text, start, end)
                      if _is_nir("".join(m.groups()))]
        if end - start >= 29:
            spans += [(*m.span(), "nir") for m in _BOXED_NIR.finditer(text, start, end)
                      if _is_nir(m[0][::2])]
    spans += _nirs_after_keyword(text, folded)
    return [span for span in spans if not _inside_a_digest(text, span[0], span[1])]


# A NIR's seven fields and nothing else, however many spaces or tabs between them ("1  84  12  76  451  089  46"):
# a fixed-width file's two spaces are no cut elsewhere, but a run of exactly these seven widths is a NIR typed
# with a space too many, when its key is right.
_SPACED_NIR = re.compile(r"(?<![\w.,/-])([1-478])[ \t]+(\d\d)[ \t]+(\d\d)[ \t]+(\d\d|2[AaBb])[ \t]+(\d{3})[ \t]+"
                         r"(\d{3})[ \t]+(\d\d)(?![\w.,/-])")

# A NIR typed one character per box of a form, each cut from the next by one space or separator
# ("1 8 4 1 2 7 6 4 5 1 0 8 9 4 6"): fifteen lone characters, not part of a longer such run.
_BOXED_NIR = re.compile(r"(?<![\w.,/-])(?<!\d[ \t._/-])[1-478](?:[ \t._/-][\dAaBb]){14}(?!\w|[ \t._/-]\d)")

# After a word naming a NIR ("NIR", "n° SS", "numéro de sécurité sociale", "sécu", "INSEE"),
# whoever typed the number meant one: its characters may be cut anyhow (spaces, commas, one per box of a form),
# a letter may stand for the digit it looks like ("O" for 0, "l" or "I" for 1), and the 13 characters before the
# key alone are one already. Read there only, from the first digit in the 25 characters after the word. Not after
# "immatriculation": a company's (RCS, SIRET) follows it in letterheads.
_NIR_KEYWORD = re.compile(r"(?:n(?:\.?\s?i\.?\s?r|(?:°|o|um(?:ero)?)\.?\s*(?:de\s+)?(?:s\.?\s?s|secu))|insee"
                          r"|secu(?:rite)?\s+sociale|secu)(?![a-z])")   # not after a letter or digit: see the loop
_LOOSE_CUTS = " \t,;.:/_\\-"      # what may stand between a loosely typed NIR's characters
_LOOK_ALIKES, _READ_AS = "OolI|", "00111"   # letters typed for the digits they look like
_LOOSE_NIR = re.compile(rf"[\d{_LOOK_ALIKES}][\d{_LOOK_ALIKES}AaBb]?"
                        rf"(?:[{re.escape(_LOOSE_CUTS)}]{{0,4}}[\d{_LOOK_ALIKES}AaBb])*")
_DIGIT = re.compile(r"\d")
_READ_AS_DIGIT = str.maketrans(_LOOK_ALIKES, _READ_AS, _LOOSE_CUTS)


def _nirs_after_keyword(text: str, folded: str) -> list[tuple[int, int, str]]:
    spans = []
    for keyword in _NIR_KEYWORD.finditer(folded):
        if keyword.start() and folded[keyword.start() - 1].isalnum():     # "anir", "sinsee": inside a word
            continue
        digit = _DIGIT.search(text, keyword.end(), keyword.end() + 25)
        if not digit:
            continue
        start = digit.start()
        while start > keyword.end() and text[start - 1] in _LOOK_ALIKES:   # "l84..." starts at its look-alike
            start -= 1
        number = _LOOSE_NIR.match(text, start)
        if not number:
            continue
        compact = number[0].translate(_READ_AS_DIGIT)
        if len(compact) >= 15 and _is_nir(compact[:15]):
            spans.append((number.start(), _end_of(number, 15), "nir"))
        elif len(compact) == 13 and _is_nir(compact + nir.calc_check_digits(compact.upper())):
            spans.append((*number.span(), "nir"))          # the NIR without its key, and nothing after it
    return spans


def _end_of(number: re.Match[str], size: int) -> int:
    """Where the `size`-th character of a loosely typed number ends in the text."""
    seen = 0
    for at, char in enumerate(number[0]):
        if char not in _LOOSE_CUTS:
            seen += 1
            if seen == size:
                return number.start() + at + 1
    return number.end()


# Our own digests, printed in reports, manifests, the audit pages and message ids: a SHA-256 in hexadecimal (64
# characters; 32 and 40 for shorter ones), and the payment ids made from one ("camt-" or "cfonb-" and 16 of its
# hex digits). Their digits are random: about one SHA-256 in 7,000 holds 15 digits in a row that pass for a NIR
# (key included), and a report or an export was refused for it. A NIR inside such a token is not one; a NIR
# standing alone, glued to a reference, or in a longer run of digits still is.
_HEX_DIGITS = frozenset("0123456789abcdef")
_DIGEST_LENGTHS = frozenset((32, 40, 64))
_OUR_HASHED_ID = re.compile(r"(?:camt|cfonb)-[0-9a-f]{16}")


def _inside_a_digest(text: str, start: int, end: int) -> bool:
    """True when text[start:end] lies inside a whole token that is one of our digests (lower-case hexadecimal
    of a digest's length with at least one letter, or a payment id made from one), bounded by characters that
    are neither letters nor digits."""
    left, right = start, end
    while left > 0 and text[left - 1] in _HEX_DIGITS:
        left -= 1
    while right < len(text) and text[right] in _HEX_DIGITS:
        right += 1
    if right < len(text) and text[right].isalnum():
        return False
    token = text[left:right]
    if len(token) == 16:                 # a payment id of ours: "camt-" or "cfonb-" and 16 hex digits
        left -= next((len(prefix) for prefix in ("camt-", "cfonb-") if text.startswith(prefix, left - len(prefix))), 0)
        token = text[left:right]
        if not _OUR_HASHED_ID.fullmatch(token):
            return False
    elif len(token) not in _DIGEST_LENGTHS or token.isdigit():
        return False
    return left == 0 or not text[left - 1].isalnum()


def _nirs_in_run(text: str, groups: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """The NIRs of one run: 15 characters whose inner cuts all fall on field boundaries.

    A NIR starts at a group's start or, glued after other digits ("F2025-000201" then a NIR), inside
    the group where its own first fields begin; it ends at a group's end or, glued before other
    digits, inside the group where its key is. In one group longer than 15 digits, a NIR glued on
    one side is its first or last 15 digits (never both sides: that is a longer number), unless
    the group is an IBAN glued to its country code."""
    found = []
    for first, (a, b) in enumerate(groups):
        size = b - a
        if size > 15:
            if not _is_glued_iban(text, a, b):
                found += [(start, start + 15, "nir") for start in (a, b - 15) if _is_nir(text[start:start + 15])]
        starts = sorted({a} | {b - cut for cut in _NIR_CUTS if cut < size})
        for start in starts:
            count = b - start
            if count == 15:
                if _is_nir(text[start:b]):
                    found.append((start, b, "nir"))
                continue
            if count not in _NIR_CUTS:
                continue
            parts = [text[start:b]]
            for c, d in groups[first + 1:]:
                if count + d - c >= 15:
                    end = c + 15 - count
                    if _is_nir("".join(parts) + text[c:end]):
                        found.append((start, end, "nir"))
                    break
                count += d - c
                parts.append(text[c:d])
                if count not in _NIR_CUTS:
                    break
    return found


def _is_glued_iban(text: str, start: int, end: int) -> bool:
    """True when the digits after two capitals are an IBAN ("FR7630006000011234567890189")."""
    return start >= 2 and text[start - 2:start].isalpha() and _is_iban(text[start - 2:end])


@lru_cache(maxsize=1024)
def _is_iban(candidate: str) -> bool:
    """stdnum's check, kept: every letter and QR code carries the creditor's IBAN (0.06 ms a check, issue #16)."""
    return iban.is_valid(candidate)


def _is_nir(candidate: str) -> bool:
    candidate = candidate.upper()
    return (candidate[0] in _NIR_FIRST and (candidate.isdigit() or candidate[5:7] in ("2A", "2B"))
            and nir.is_valid(candidate))


def _folded_ccam_spans(text: str, folded: str, starts: list[int]) -> list[tuple[int, int, str]]:
    """CCAM codes not in capitals (those are upper tokens): all lower case or a capital first.

    Sought only where a run of digits follows a letter (`starts`: of stretches, see _stretches_worth_a_look), so the
    text is not walked once more."""
    spans = []
    for start in starts:
        if start >= 4 and folded[start - 1].isalpha() and (m := _FOLDED_CCAM.match(folded, start - 4)) \
                and text[start - 3:start].islower() and folded[start - 4:start] not in _ISO_20022_AREAS:
            spans.append((*m.span(), "ccam"))
    return spans


def _stretches_worth_a_look(text: str, folded: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Where a lower-case CCAM code may end (stretch starts, for _folded_ccam_spans) and where a NIR may be (the
    stretches of 15 characters or more, for _nir_spans).

    The stretches are _DIGITS_AROUND's matches. A long text's are not made one by one: a 1M balance's invoice detail
    (24 MB) holds 2.9M of them, 1.1 s of the regex engine's walk and Python's tuples, and none of 15 characters nor
    after four letters; its characters are sorted into kinds (_char_kinds) and only those two sorts of stretches
    taken from them, 0.13 s (tests/test_privacy_fast_paths.py holds both ways equal)."""
    if len(text) < _SORTED_FROM:
        stretches = [m.span() for m in _DIGITS_AROUND.finditer(text)]
        return [start for start, _ in stretches], [(a, b) for a, b in stretches if b - a >= 15]
    kinds = _char_kinds(text)
    return _ccam_starts(folded, kinds), _long_stretches(text, kinds)


@lru_cache(maxsize=1)
def _kind_table() -> np.ndarray:
    """The kinds (_IN_STRETCH, _DIGIT_CHAR, _CCAM_LETTER bits) of the 65,536 characters of the BMP, told by the
    patterns themselves (a digit is what the regex engine takes for `\\d`)."""
    import numpy as np

    characters = "".join(map(chr, range(0x10000)))
    table = np.zeros(0x10000, dtype=np.uint8)
    for bit, pattern in _KIND_PATTERNS:
        table[[m.start() for m in pattern.finditer(characters)]] |= bit
    return table


@lru_cache(maxsize=1)
def _latin_1_kinds() -> bytes:
    return _kind_table()[:256].tobytes()


def _char_kinds(text: str) -> np.ndarray:
    """Each character's kinds, as bits: one of a stretch (_STRETCH), a digit, a letter of a lower-case CCAM code.

    A text of Latin-1 characters (a CSV of French names) is sorted by bytes.translate, where the regex engine took a
    second for the stretches of 24 MB; any other through its code points (UTF-16's when each is one: 0.03 s for the
    11 MB of a 1M balance's patient detail, 0.08 s through UTF-32's), a character past the BMP on its own."""
    import numpy as np

    try:
        return np.frombuffer(text.encode("latin-1").translate(_latin_1_kinds()), dtype=np.uint8)
    except UnicodeEncodeError:
        pass
    units = text.encode("utf-16-le", "surrogatepass")
    if len(units) == 2 * len(text):         # no character past the BMP
        return _kind_table()[np.frombuffer(units, dtype="<u2")]
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    kinds = np.take(_kind_table(), codes, mode="clip")
    for at in np.flatnonzero(codes > 0xFFFF).tolist():
        kinds[at] = sum(bit for bit, pattern in _KIND_PATTERNS if pattern.fullmatch(text[at]))
    return kinds


def _long_stretches(text: str, kinds: np.ndarray) -> list[tuple[int, int]]:
    """The stretches (start, end) of 15 characters or more, in order: the only ones that may hold a NIR.

    A stretch runs from the first digit of a run of _STRETCH characters to the run's end; one that long lies in a
    run of 15 such characters at least, found by bytes.find (a 1M balance's detail has none, among 2.9M stretches)."""
    held = (kinds & _IN_STRETCH).tobytes()
    found, at = [], held.find(_FIFTEEN_IN_STRETCH)
    while at >= 0:
        start = held.rfind(b"\0", 0, at) + 1
        end = held.find(b"\0", at)
        end = len(held) if end < 0 else end
        digit = _DIGIT.search(text, start, end)
        if digit and end - digit.start() >= 15:
            found.append((digit.start(), end))
        at = held.find(_FIFTEEN_IN_STRETCH, end)
    return found


def _ccam_starts(folded: str, kinds: np.ndarray) -> list[int]:
    """The starts of the stretches that may end a lower-case CCAM code (_FOLDED_CCAM): a digit after four of its
    letters in the folded text, first of its stretch in the text (`kinds`: the text's)."""
    import numpy as np

    letters = _char_kinds(folded)
    if len(letters) < 5:
        return []
    ccam = (letters & _CCAM_LETTER).astype(bool)
    after_four = (letters[4:] & _DIGIT_CHAR).astype(bool) & ccam[3:-1] & ccam[2:-2] & ccam[1:-3] & ccam[:-4]
    return [start for start in (np.flatnonzero(after_four) + 4).tolist() if _starts_a_stretch(kinds, start)]


def _starts_a_stretch(kinds: np.ndarray, at: int) -> bool:
    """True when the character at `at` is a digit and no digit stands before it in its run of _STRETCH characters."""
    if not kinds[at] & _DIGIT_CHAR:
        return False
    at -= 1
    while at >= 0 and kinds[at] & _IN_STRETCH:
        if kinds[at] & _DIGIT_CHAR:
            return False
        at -= 1
    return True


def _code_spans(text: str, folded: str) -> list[tuple[int, int, str]]:
    ccam_starts, long_stretches = _stretches_worth_a_look(text, folded)  # one walk for NIRs and lower-case CCAM
    return (_upper_token_spans(text, folded) + _folded_ccam_spans(text, folded, ccam_starts)
            + _context_spans(text, folded) + _nir_spans(text, folded, long_stretches))


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


# ---------------------------------------------------------------- known texts

@lru_cache(maxsize=32)
def _known_pattern(known: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole-word occurrences of the known texts in folded text, punctuation and spacing aside."""
    phrases = set()
    for phrase in known:
        words = re.findall(r"[^\W_]+", fold(normalise(phrase or "")))
        if sum(map(len, words)) >= 3:  # "C", "12": too short to stand for anyone's identity
            phrases.add(r"[\W_]+".join(map(re.escape, words)))
    if not phrases:
        return None
    return re.compile(r"(?<![^\W_])(?:" + "|".join(sorted(phrases, key=lambda p: (-len(p), p))) + r")(?![^\W_])")


def _outside_known(folded: str, spans: list[tuple[int, int, str]],
                   known: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """The spans that do not lie inside an occurrence of a known text (the creditor's own identity)."""
    pattern = _known_pattern(tuple(known))
    if pattern is None:
        return spans
    occurrences = [m.span() for m in pattern.finditer(folded)]
    return [span for span in spans if not any(a <= span[0] and span[1] <= b for a, b in occurrences)]


# ---------------------------------------------------------------- identifiers

# What an identifier may look like by accident: a code shape ("P10" a CIM-10 code, "FACT001" a CCAM
# code). A NIR or a care word inside an identifier is never excused.
_ID_EXCUSED_KINDS = frozenset(("ccam", "ngap", "cim10"))
# One token of a document: a run of characters between whitespace and cell delimiters.
_TOKEN_DELIMITERS = " \t\r\n;,|\"'"


# Columns whose values are the product's own keys (patient ids, invoice numbers, case ids...), in every CSV it
# writes: a value shaped like a code ("P10", "FACT001") is an identifier there.
KEY_COLUMNS = frozenset(("patient_id", "invoice_number", "invoice_numbers", "case_id", "payment_id", "letter_id"))


def id_tokens(value: str) -> tuple[str, ...]:
    """The tokens of an identifier cell ("F1, F2" holds two invoice numbers).

    >>> id_tokens("F2025-1, F2025-2")
    ('F2025-1', 'F2025-2')
    """
    return tuple(t for t in re.split(f"[{_TOKEN_DELIMITERS}]+", value) if t)


def id_tokens_of(values: Iterable[str]) -> frozenset[str]:
    """Every token of these identifier cells: the id_tokens of each, split in one pass (a line break delimits).

    >>> sorted(id_tokens_of(["F2025-1, F2025-2", "P10"]))
    ['F2025-1', 'F2025-2', 'P10']
    """
    return frozenset(re.split(f"[{_TOKEN_DELIMITERS}]+", "\n".join(values))) - {""}


def _token_at(text: str, start: int, end: int) -> str:
    """The whole token around text[start:end] (bounded by whitespace and cell delimiters)."""
    left, right = start, end
    while left > 0 and text[left - 1] not in _TOKEN_DELIMITERS:
        left -= 1
    while right < len(text) and text[right] not in _TOKEN_DELIMITERS:
        right += 1
    return text[left:right]


def _keyword_spans(text: str, folded: str) -> set[tuple[int, int]]:
    """Codes found right after a diagnosis or cotation keyword: never excused as an identifier."""
    return {m.span(1) for keyword, code in ((_NGAP_KEYWORD, _KEY_AFTER_KEYWORD), (_CIM_KEYWORD, _CIM_AFTER_KEYWORD))
            for m in _after_keyword(text, folded, keyword, code)}


def _outside_ids(text: str, folded: str, spans: list[tuple[int, int, str]],
                 ids: frozenset[str]) -> list[tuple[int, int, str]]:
    """The spans that are not a code shape standing as a whole token equal to an identifier (exact case)."""
    after_keyword: set[tuple[int, int]] | None = None
    kept = []
    for start, end, kind in spans:
        if kind in _ID_EXCUSED_KINDS and _token_at(text, start, end) in ids:
            if after_keyword is None:
                after_keyword = _keyword_spans(text, folded)
            if (start, end) not in after_keyword:
                continue
        kept.append((start, end, kind))
    return kept


# ---------------------------------------------------------------- scanning

def _spans(text: str, lexicon: Lexicon | None, known: tuple[str, ...],
           ids: frozenset[str] = frozenset()) -> tuple[str, list[tuple[int, int, str]]]:
    """The normalised text and the spans of medical data in it (the default lexicon: `lexicon` None; loaded only
    when the text may hold one of its terms, _may_hold_a_term)."""
    text = normalise(text)
    folded = fold(text)
    spans = _code_spans(text, folded)
    if lexicon is not None or _may_hold_a_term(folded):
        spans += _lexicon_spans(text, folded, lexicon or load_lexicon())
    spans = _distinct(spans)
    if spans and known:
        spans = _outside_known(folded, spans, known)
    if spans and ids:
        spans = _outside_ids(text, folded, spans, ids)
    return text, spans


def scan_text(text: str, lexicon: Lexicon | None = None, known: tuple[str, ...] = (),
              ids: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
    """Every piece of medical data in the text, in reading order, each with a masked excerpt.

    `known` holds texts that are known not to be a leak wherever they stand (the creditor's
    configured name, address, e-mail): a finding inside one of them is not reported.
    `ids` holds the identifiers the document carries as keys (patient ids, invoice numbers, case ids):
    a code shape that is exactly one of them, as a whole token, is not reported ("P10" a patient, not
    a diagnosis), unless it follows a diagnosis or cotation keyword; a NIR or a care word always is.

    >>> [f.kind for f in scan_text("patient_id;nom\\nP10;Martin")]
    ['cim10']
    >>> scan_text("patient_id;nom\\nP10;Martin", ids={"P10"})
    []
    >>> [f.kind for f in scan_text("P10;Martin;J45", ids={"P10"})]
    ['cim10']
    """
    text, spans = _spans(text, lexicon, known, frozenset(ids))
    return _findings(text, spans)


# ---------------------------------------------------------------- describing what is not echoed

# What each kind of finding looks like, said to a clinic person.
KIND_LABELS = {
    "nir": "un NIR (numéro de sécurité sociale)",
    "ccam": "un code d'acte CCAM",
    "ngap": "une cotation NGAP",
    "cim10": "un code de diagnostic CIM-10",
    "lexicon": "un terme de soin",
}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, "une donnée médicale")


def _description(kinds: list[str]) -> str:
    labels = list(dict.fromkeys(kind_label(k) for k in kinds))
    return f"valeur masquée (ressemble à {' et à '.join(labels)})"


def describe_cell(value, lexicon: Lexicon | None = None) -> str:
    """The value itself when the scanner finds nothing in it; else a description that does not echo it.

    >>> describe_cell("12,50 €")
    '12,50 €'
    >>> describe_cell("1-84-12-76-451-089-46")
    'valeur masquée (ressemble à un NIR (numéro de sécurité sociale))'
    """
    text = "" if value is None else str(value)
    if not text.strip():
        return text
    _, spans = _spans(text, lexicon, ())
    return _description([kind for _, _, kind in spans]) if spans else text


_FILE_NAME_UNSAFE = re.compile(r"[^\w.\-]+")


def redact(text: str, lexicon: Lexicon | None = None, *, file_name: bool = False) -> str:
    """The text with each piece of medical data replaced by what it looks like, for messages
    (an error quoting a cell, a run's log) and file names; unchanged when nothing is found.

    >>> redact("not a date: NIR184127645108946")
    'not a date: NIR[valeur masquée (ressemble à un NIR (numéro de sécurité sociale))]'
    >>> redact("releve-kine_184127645108946.csv", file_name=True)
    'releve-masque-lexicon_masque-nir.csv'
    """
    if not text:
        return text
    normalised, spans = _spans(text, lexicon, ())
    if not spans:
        return text
    pieces, cursor = [], 0
    for start, end, kind in spans:
        pieces += [normalised[cursor:start], f"masque-{kind}" if file_name else f"[{_description([kind])}]"]
        cursor = end
    pieces.append(normalised[cursor:])
    return "".join(pieces)


@lru_cache(maxsize=256)
def safe_file_name(name: str) -> str:
    """A file name as it may be shown or reused (archive, quarantine, rejects listing): unchanged
    unless the scanner flags part of it ("releve_184127645108946.csv" -> "releve_masque-nir.csv")."""
    return redact(name, file_name=True) if name else name


def safe_message(text: str, file_name: bool = False) -> str:
    """A message (or a file name) as it may be shown: `redact`, and without a readable lexicon the act
    codes, diagnoses and NIRs are still masked.

    >>> safe_message("cannot read as CSV: Martin;184127645108946")
    'cannot read as CSV: Martin;[valeur masquée (ressemble à un NIR (numéro de sécurité sociale))]'
    """
    try:
        return redact(text, file_name=file_name)
    except RecouvrementError:
        return redact(text, build_lexicon([]), file_name=file_name)


# Every error message is scrubbed with these detectors from the moment they exist (recouvrement.errors is a
# leaf and imports nothing of ours: the detectors are handed to it here).
scrub_messages_with(safe_message)
