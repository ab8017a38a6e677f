"""Reading practice-software CSV exports as they really come: any of ; , tab, UTF-8 (BOM or not) or
Windows-1252, decimal commas, dd/mm/yyyy or ISO dates. Everything is read as text; typing is the
importer's job, column by column, so that every refusal can name its line and field."""

from __future__ import annotations

import codecs
import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import FIRST_DATE, LAST_DATE, Reject

SEPARATORS = (";", ",", "\t")
# Arrow reads a CSV in blocks of this size (its default) and cannot parse a record longer than one block;
# no invoice or payment line comes near it (a few hundred bytes): a longer one is a corrupt file or an attack.
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class Dialect:
    encoding: str
    separator: str


# UTF-8 is checked by blocks of this size: a Windows-1252 file is told at its first accented letter without a str
# of the whole file made first (the 1M invoices file, 244 MB, failed at byte 400 after 0.1 s of allocation).
UTF8_CHECK_BLOCK = 1 << 20


def detect_encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()   # (keeps a character cut at a block's end for the next)
    view = memoryview(data)
    try:
        for start in range(0, len(data), UTF8_CHECK_BLOCK):
            decoder.decode(view[start:start + UTF8_CHECK_BLOCK])
        decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def detect_dialect(path: Path, data: bytes | None = None) -> Dialect:
    data = path.read_bytes() if data is None else data
    if not data or data.isspace():        # (isspace stops at the first other byte: no copy of the file)
        raise RecouvrementError("le fichier est vide", file=path.name)
    encoding = detect_encoding(data)
    header = (_first_line(data).decode(encoding, errors="replace").splitlines() or [""])[0]
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    separator = max(counts, key=counts.__getitem__)
    if counts[separator] == 0:
        raise RecouvrementError("aucun séparateur de colonnes (; , ou tabulation) dans la ligne d'en-tête", file=path.name, line=1)
    return Dialect(encoding, separator)


def _first_line(data: bytes) -> bytes:
    """The header line's bytes, without decoding or copying the rest of the file."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def read_table(path: Path, required: list[str], optional: list[str],
               unread: frozenset[str] = frozenset()) -> tuple[pd.DataFrame, list[str]]:
    """All cells as stripped strings ("" when empty), plus warnings about unknown columns. The optional columns
    named in `unread` (what the caller will not keep) are left empty, as when the file has none: their cells are
    not converted (the care descriptions, the longest text of an invoices file, were a third of the stripping).

    The frame gets a `source_line` column: the file line of each record (header is line 1).
    """
    data = path.read_bytes()               # read once: dialect, records and line numbers all come from it
    dialect = detect_dialect(path, data)
    frame = _parse(path, data, dialect, unread)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise RecouvrementError(f"colonne(s) manquante(s) : {', '.join(missing)}", file=path.name, line=1)
    known = set(required) | set(optional)
    warnings = [f"{path.name}:1: colonne inconnue {c!r} ignorée" for c in frame.columns if c not in known]
    for column in optional:
        if column not in frame.columns:
            frame[column] = ""
    frame = frame[[c for c in required + optional]]
    frame["source_line"] = _source_lines(data, dialect, len(frame))
    return frame, warnings


def _refuse_binary(path: Path, data: bytes) -> None:
    """A NUL byte (a binary or corrupt file: no text format carries one, PostgreSQL could not store it)
    refuses the whole file, naming its line; never an echo of its bytes."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise RecouvrementError("un octet nul (0x00) : ce fichier n'est pas un texte CSV (fichier binaire ou "
                                "corrompu) ; rien n'est importé", file=path.name, line=data.count(b"\n", 0, nul) + 1)


def _endless_line(path: Path, data: bytes) -> RecouvrementError | None:
    """The error naming the first line longer than MAX_LINE_BYTES (what Arrow could not parse), if any."""
    start, line = 0, 1
    while start < len(data):          # only once Arrow failed: a C-speed find per line
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if end - start > MAX_LINE_BYTES:
            return RecouvrementError(f"une ligne de plus de {MAX_LINE_BYTES >> 20} Mo : ce n'est pas une ligne de "
                                     "facture ou de paiement (fichier corrompu ?) ; rien n'est importé",
                                     file=path.name, line=line)
        start, line = end + 1, line + 1
    return None


def _parse(path: Path, data: bytes, dialect: Dialect, unread: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Every cell as text, parsed by Arrow (UTF-8 first: Arrow's own transcoding is slower than Python's). A
    Windows-1252 file is parsed as it is, its cells as bytes, and only the cells read are made UTF-8, column by
    column (_column_text): the whole file's transcoding, the 1M invoices file's 244 MB through a str of
    twice that (an 'œ' makes it two bytes a character), cost 1.3-2.9 s of CPU before Arrow's parse began."""
    _refuse_binary(path, data)
    if dialect.encoding == "cp1252" and _cp1252_as_bytes(data):
        try:
            return _parse_text(data, dialect, unread, as_bytes=True)
        except (pa.ArrowInvalid, UnicodeDecodeError, StopIteration):
            pass        # refused as before, its message from the text made UTF-8 first
    try:
        if dialect.encoding not in ("utf-8", "utf-8-sig"):     # (Arrow checks the UTF-8 itself)
            data = data.decode(dialect.encoding).encode("utf-8")
        return _parse_text(data, dialect, unread)
    except (pa.ArrowInvalid, UnicodeDecodeError, StopIteration) as exc:
        raise (_endless_line(path, data) or RecouvrementError(f"illisible comme fichier CSV : {exc}", file=path.name)) from None


# The bytes Windows-1252 leaves undefined (Python's codec refuses them: the file is then refused whole).
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
# Each byte's length once made UTF-8, less one (an undefined byte's: never used, the file is read the other way).
_CP1252_GROWTH = np.array([len(bytes([byte]).decode("cp1252", errors="replace").encode("utf-8")) - 1
                           for byte in range(256)], dtype=np.int64)


def _cp1252_as_bytes(data: bytes) -> bool:
    """Whether a Windows-1252 file can be parsed as it is: its header line plain ASCII (Arrow reads the column
    names as UTF-8) and no undefined byte anywhere in it (what decoding the whole file refuses; a byte search each,
    0.07 s for 244 MB)."""
    return _first_line(data).isascii() and all(data.find(bytes([byte])) < 0 for byte in CP1252_UNDEFINED)


# The text type each bytes type is made, and the array class and offsets' width of each (large: 64-bit offsets).
_TEXT_OF_BYTES = {pa.binary(): pa.string(), pa.large_binary(): pa.large_string()}
_TEXT_ARRAY = {pa.string(): pa.StringArray, pa.large_string(): pa.LargeStringArray}
_OFFSETS = {pa.binary(): np.int32, pa.string(): np.int32, pa.large_binary(): np.int64, pa.large_string(): np.int64}
# The bytes a cell may start or end with when Arrow's utf8_trim_whitespace would take something off it, by byte.
# UTF-8: every whitespace character, ASCII or not, starts and ends outside '!'..'~' (a byte up to the space, or one
# from 0x80: U+00A0 ends with 0xA0). Windows-1252, before it is made UTF-8: a byte up to the space, or the
# non-breaking space (0xA0); its accented letters and signs never are whitespace (a test holds this against Arrow's
# kernel for every byte), so a column of names starting with 'É' is not trimmed for nothing.
_MAY_TRIM_UTF8 = np.array([byte <= 0x20 or byte >= 0x7F for byte in range(256)])
_MAY_TRIM_CP1252 = np.array([byte <= 0x20 or bytes([byte]).decode("cp1252", errors="replace").isspace()
                             for byte in range(256)])
# The columns are made text in this many threads (see _parse_text).
TEXT_THREADS = 2


def _column_text(column: pa.ChunkedArray, as_bytes: bool) -> pa.ChunkedArray:
    """A column as Arrow read it, made one chunk of text with its cells stripped as pc.utf8_trim_whitespace strips
    them: with `as_bytes`, Windows-1252 bytes made UTF-8 (bytes give text, large bytes large text). The column is
    made one chunk first, so each step runs once over it, not once per block of the file (the 1M invoices file:
    234 blocks, 27 columns). A column none of whose cells starts or ends with a byte that may be whitespace is
    not trimmed (most are not: Arrow's kernel reads each character as Unicode, the 1M invoices file's columns
    1.4 s CPU). A column Arrow did not read as bytes (none: each is typed) is only trimmed, as text-first reading
    would."""
    cells = column.combine_chunks()
    del column             # (the cells as read let go of at once: the caller holds no other reference to them)
    if as_bytes and cells.type in _TEXT_OF_BYTES:
        spaced = _edged(cells, _MAY_TRIM_CP1252)
        cells = _utf8_from_cp1252(cells)
    else:
        spaced = cells.type not in _TEXT_ARRAY or _edged(cells, _MAY_TRIM_UTF8)
    return pa.chunked_array([pc.utf8_trim_whitespace(cells) if spaced else cells], type=cells.type)


def _utf8_from_cp1252(cells: pa.Array) -> pa.Array:
    if cells.offset:       # (never from Arrow's reader) a copy starting at its first cell: bounds and validity at 0
        cells = pa.concat_arrays([cells])
    made = _TEXT_OF_BYTES[cells.type]
    validity, offsets, data = cells.buffers()
    if not len(cells):
        return cells.cast(made)
    width = _OFFSETS[cells.type]
    bounds = np.frombuffer(offsets, dtype=width, count=len(cells) + 1).astype(np.int64, copy=False)
    text = np.frombuffer(data or b"", dtype=np.uint8)[bounds[0]:bounds[-1]]
    high = np.flatnonzero(text >= 0x80)
    if not len(high):      # ASCII is UTF-8 as it is
        return _TEXT_ARRAY[made].from_buffers(len(cells), offsets, data, validity, cells.null_count)
    moved = bounds - bounds[0]
    growth = np.bincount(np.searchsorted(moved, high, side="right") - 1, weights=_CP1252_GROWTH[text[high]],
                         minlength=len(cells))
    moved[1:] += np.cumsum(growth, dtype=np.int64)
    return _TEXT_ARRAY[made].from_buffers(len(cells), pa.py_buffer(moved.astype(width)),
                                          pa.py_buffer(str(text.data, "cp1252").encode("utf-8")), validity,
                                          cells.null_count)


def _parse_text(data: bytes, dialect: Dialect, unread: frozenset[str], as_bytes: bool = False) -> pd.DataFrame:
    """_parse's reading, of UTF-8 `data`, or with `as_bytes` of Windows-1252 `data` whose cells read are made
    UTF-8 once parsed. Every column is read as large text (or large bytes), the type pandas' Arrow strings hold:
    read as text (32-bit offsets), each was cast again by to_pandas, chunk by chunk (the 1M invoices file's 27
    columns: 0.6-0.8 s CPU). Each column is then made one chunk of stripped text (_column_text), in threads of the
    parse's own, TEXT_THREADS columns at a time (Arrow's combining and trimming and numpy's checks run without the
    GIL, the Windows-1252 decoding with it; one column after the other, the other core sat idle: the 1M invoices
    file's columns 1.1-1.3 -> 0.6-0.8 s wall). Not in Arrow's reading threads: what they allocated, once freed,
    stays in their own heaps (mimalloc's), where the next allocations of the threads that import cannot take it;
    kept as read, the 1M invoices' import peaked 160-220 MB higher, in its store. The parse's threads end with it
    (that import's peak alone on SQLite, the patients' checks beside too: 1,345-1,347 -> 1,390-1,424 MB; the full run's,
    in the reconcile, unchanged). One chunk also spares the checks' own combining (Distinct) and the inserts' (db.bulk)."""
    # A byte order mark is skipped by a view past it, not a copy of the file (the AMO remittance at 1M: 90 MB)
    source = pa.py_buffer(data).slice(len(codecs.BOM_UTF8) if dialect.encoding == "utf-8-sig" else 0)
    header = next(csv.reader([_first_line(data).decode("utf-8-sig").strip("\r")], delimiter=dialect.separator))
    read = [c for c in header if c.strip().lower() not in unread]
    table = pacsv.read_csv(pa.BufferReader(source), parse_options=pacsv.ParseOptions(
        delimiter=dialect.separator, newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.large_binary() if as_bytes else pa.large_string()
                                                           for c in header},
                                             include_columns=read if len(set(header)) == len(header) else None,
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))
    # Cells stripped by Arrow itself: three times cheaper than pandas' .str.strip() on the same arrays. Each column's
    # unstripped cells are let go once it is stripped: the file's cells held once (and TEXT_THREADS columns twice), not twice
    # (the AMO remittance at 1M, 90 MB: the read's peak 629 -> 600 MB; 464 MB with the mark's view above).
    names, read_columns = table.column_names, table.columns
    del table

    def made(i: int) -> pa.ChunkedArray:
        return _column_text(_taken(read_columns, i), as_bytes)
    with ThreadPoolExecutor(max_workers=TEXT_THREADS, thread_name_prefix="csv-text") as pool:
        columns = [future.result() for future in [pool.submit(made, i) for i in range(len(read_columns))]]
    return pa.table(columns, names=names).to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow")}.get)


def _taken(columns: list, i: int) -> pa.ChunkedArray:
    """columns[i], its place emptied: the caller then holds the only reference to it."""
    column, columns[i] = columns[i], None
    return column


def _edged(cells: pa.Array, may_trim: np.ndarray) -> bool:
    """Whether some cell of `cells` (text or bytes, large or not) starts or ends with a byte `may_trim` holds."""
    if cells.offset:
        return True
    if not len(cells):
        return False
    _, offsets, data = cells.buffers()
    bounds = np.frombuffer(offsets, dtype=_OFFSETS[cells.type], count=len(cells) + 1)
    text = np.frombuffer(data or b"", dtype=np.uint8)
    filled = bounds[1:] > bounds[:-1]
    edges = np.concatenate((text[bounds[:-1][filled]], text[bounds[1:][filled] - 1]))
    return bool(may_trim[edges].any())


def _source_lines(data: bytes, dialect: Dialect, rows: int) -> pd.Series:
    """Line numbers of records; exact even when quoted cells span several lines or blank lines are skipped."""
    # b"\n" is never part of another character in UTF-8 or Windows-1252: counting bytes counts lines.
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if physical == rows + 1:            # one record per line: no multi-line cell, no blank line
        return pd.Series(range(2, rows + 2), dtype="int64")
    text = data.decode(dialect.encoding)
    reader = csv.reader(io.StringIO(text), delimiter=dialect.separator)
    lines, previous = [], 0
    for record in reader:
        if record and any(cell.strip() for cell in record):
            lines.append(previous + 1)
        previous = reader.line_num
    return pd.Series(lines[1:rows + 1], dtype="int64")


def repeated_cells(cells: pd.Series) -> pd.Series:
    """Mask of the cells (ids, numbers: never missing) already seen higher up in the file, as cells.duplicated()
    gives it. Files list their ids in order, mostly: cells each greater than the one before are known distinct by
    one comparison each, without hashing a million of them (pandas' duplicated: 0.3-0.5 s CPU at 1M invoices)."""
    text = cells.array.__arrow_array__().combine_chunks() if len(cells) > 1 else None
    if (text is not None and not text.null_count
            and pc.all(pc.greater(text.slice(1), text.slice(0, len(text) - 1))).as_py()):
        return pd.Series(False, index=cells.index)
    return cells.duplicated()


ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
FRENCH_DATE = r"^(?P<day>\d{1,2})[/.-](?P<month>\d{1,2})[/.-](?P<year>\d{4})$"


def parse_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(ISO 'YYYY-MM-DD' strings, mask of invalid cells) from dd/mm/yyyy, dd-mm-yyyy or ISO dates."""
    fast = _parse_dates_arrow(values)
    return fast if fast is not None else _parse_dates_pandas(values)


def dates_out_of_range(dates: pd.Series) -> pd.Series:
    """Mask of the ISO dates (as parse_dates gives them) before 1900 or after 2100; not-a-date cells are not in it."""
    return dates.notna() & ((dates < FIRST_DATE) | (dates > LAST_DATE))


def _parse_dates_arrow(values: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """parse_dates in Arrow's kernels (several times faster), when every well-shaped cell is a real date;
    None otherwise, and the pandas path then finds the bad cells. A test holds both paths equal."""
    text = pa.array(values.astype("string[pyarrow]").array).cast(pa.string())
    is_iso = pc.match_substring_regex(text, ISO_DATE)
    if pc.all(is_iso).as_py():                             # an ISO file: no French date to rewrite
        iso = text
    else:
        parts = pc.extract_regex(text, FRENCH_DATE)
        year = pc.struct_field(parts, "year")
        if pc.any(pc.equal(year, "0000")).as_py():         # no year 0 in the French format (pandas says so)
            return None
        french = pc.binary_join_element_wise(year, pc.utf8_lpad(pc.struct_field(parts, "month"), 2, "0"),
                                             pc.utf8_lpad(pc.struct_field(parts, "day"), 2, "0"), "-")
        iso = pc.if_else(is_iso, text, french)
    try:
        pc.cast(iso, pa.date32())                          # refuses 31/02 or month 13: any such cell
    except pa.ArrowInvalid:
        return None
    dates = iso.to_pandas().astype("str").set_axis(values.index)
    return dates, pd.Series(pc.is_null(iso).to_numpy(zero_copy_only=False), index=values.index)


def _parse_dates_pandas(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = values.astype("string")
    iso = pd.to_datetime(text.where(text.str.match(r"^\d{4}-\d{2}-\d{2}$")), format="%Y-%m-%d", errors="coerce")
    fr = pd.to_datetime(text.str.replace("-", "/", regex=False).str.replace(".", "/", regex=False)
                        .where(text.str.match(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$")),
                        format="%d/%m/%Y", errors="coerce")
    parsed = iso.fillna(fr)
    return parsed.dt.strftime("%Y-%m-%d"), parsed.isna()


class RejectCollector:
    """Gathers refusals row by row (vectorised: a mask at a time) and keeps the first reason per row. The masks are
    read as numpy truths: a file's dozen checks each cost a few pandas operations otherwise, about a third of a
    small file's reading (a night's remittance of a few hundred lines: 16 ms, whatever its size)."""

    def __init__(self, file: str, lines: pd.Series) -> None:
        self.file, self.index = file, lines.index
        self._lines = lines.to_numpy()
        self._bad = np.zeros(len(lines), dtype=bool)
        self.rejects: list[Reject] = []

    @property
    def bad(self) -> pd.Series:
        """The rows refused so far, as a mask aligned with the frame."""
        return pd.Series(self._bad, index=self.index)

    def add(self, mask: pd.Series, field: str, reason) -> None:
        """reason: a string, or a Series of strings aligned with the frame."""
        new = mask.to_numpy(dtype=bool, na_value=False) & ~self._bad
        if not new.any():
            return
        if isinstance(reason, pd.Series):
            reasons = reason.reindex(self.index)[new].tolist()     # a reason may be given for the bad rows only
        else:
            reasons = [reason] * int(new.sum())
        for line, text in zip(self._lines[new].tolist(), reasons):
            self.rejects.append(Reject(self.file, int(line), field, str(text)))
        self._bad |= new
