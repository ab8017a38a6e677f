"""The fast paths of the tabular reader give exactly what the plain ones give."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recouvrement.errors import RecouvrementError
from recouvrement.importers import tabular
from recouvrement.importers.tabular import _parse_dates_arrow, _parse_dates_pandas, parse_dates, read_table

DAYS = st.integers(0, 32)
MONTHS = st.integers(0, 13)
YEARS = st.one_of(st.integers(0, 9999), st.integers(1900, 2030))
SHAPES = ["{y:04d}-{m:02d}-{d:02d}", "{d:02d}/{m:02d}/{y:04d}", "{d}/{m}/{y:04d}", "{d}.{m:02d}.{y:04d}",
          "{d}-{m}-{y:04d}", "{y}-{m}-{d}", " {d:02d}/{m:02d}/{y:04d}", ""]
CELLS = st.builds(lambda shape, d, m, y: shape.format(d=d, m=m, y=y), st.sampled_from(SHAPES), DAYS, MONTHS, YEARS)


def same(left: tuple[pd.Series, pd.Series], right: tuple[pd.Series, pd.Series]) -> bool:
    return all(a.equals(b) and a.dtype == b.dtype for a, b in zip(left, right))


@settings(max_examples=300, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=8), st.booleans())
def test_the_arrow_date_path_agrees_with_the_pandas_path_whenever_it_answers(cells, arrow_strings):
    values = pd.Series(cells, index=range(10, 10 + len(cells)), dtype="string[pyarrow]" if arrow_strings else None)
    fast = _parse_dates_arrow(values)
    assert fast is None or same(fast, _parse_dates_pandas(values))
    assert same(parse_dates(values), _parse_dates_pandas(values))


def test_real_dates_in_both_formats_take_the_arrow_path():
    values = pd.Series(["29/02/2024", "1/2/2025", "2025-12-31", "", "not a date"])
    assert _parse_dates_arrow(values) is not None


@pytest.mark.parametrize("cells", [["2024-02-29", "2025-12-31"], ["2025-02-30", "2025-01-01"], ["0000-01-01"],
                                   ["1899-12-31", "2101-01-01"]])
def test_a_column_of_iso_dates_only_agrees_with_the_pandas_path(cells):
    values = pd.Series(cells, dtype="string[pyarrow]")
    assert same(parse_dates(values), _parse_dates_pandas(values))


def test_an_impossible_date_is_found_by_the_pandas_path():
    dates, bad = parse_dates(pd.Series(["31/02/2025", "01/03/2025"]))
    assert bad.tolist() == [True, False] and dates.iloc[1] == "2025-03-01"


def test_a_windows_1252_file_with_an_undefined_byte_is_refused_with_its_name(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes("invoice_number;city\r\nF1;Orléans \x81\r\n".encode("latin-1"))
    with pytest.raises(RecouvrementError, match="illisible comme fichier CSV") as refused:
        read_table(path, ["invoice_number"], ["city"])
    assert refused.value.file == "bad.csv"


def test_cells_lose_their_surrounding_spaces_including_non_breaking_ones(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("invoice_number;city\n  F1 ;\u00a0Lyon\u00a0\n", encoding="utf-8")
    frame, _ = read_table(path, ["invoice_number"], ["city"])
    assert frame[["invoice_number", "city"]].iloc[0].tolist() == ["F1", "Lyon"]


def test_a_utf8_file_with_a_byte_order_mark_reads_from_its_first_cell(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfinvoice_number;city\r\nF1;Lyon\r\n")
    frame, _ = read_table(path, ["invoice_number"], ["city"])
    assert frame[["invoice_number", "city", "source_line"]].iloc[0].tolist() == ["F1", "Lyon", 2]


@pytest.mark.parametrize("separator", [";", ",", "\t"])
@pytest.mark.parametrize("first", ["invoice_number", '"invoice_number"'])
def test_a_byte_order_mark_read_past_gives_what_the_same_file_without_it_gives(tmp_path, separator, first):
    """The mark is skipped by a view past it (not a copy of the file): every cell, line, column and warning as the
    same file without it, a quoted first header, a cell over two lines, a blank line and an unread column too."""
    rows = [f"{first}{separator}care_description{separator}city{separator}extra", f"F1{separator} Détartrage "
            f"{separator} Paris {separator}", "", f'F2{separator}"a\nb"{separator}Lyon{separator}x', f"F3{separator}"
            f"{separator}Orléans{separator}"]
    text = "\r\n".join(rows) + "\r\n"
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_bytes(text.encode("utf-8"))
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    for unread in (frozenset(), frozenset({"care_description"})):
        without, warned = read_table(plain, ["invoice_number"], ["care_description", "city"], unread=unread)
        frame, warnings = read_table(marked, ["invoice_number"], ["care_description", "city"], unread=unread)
        assert frame.equals(without) and list(frame.columns) == list(without.columns)
        assert warnings == [w.replace("plain.csv", "marked.csv") for w in warned]
    assert frame["invoice_number"].tolist() == ["F1", "F2", "F3"] and frame["source_line"].tolist() == [2, 4, 6]


def test_a_column_left_unread_is_empty_and_the_others_as_read(tmp_path):
    """read_table(unread=…): the columns the caller will not keep are not converted, left empty as when the file
    has none; every other cell, line and warning as without."""
    path = tmp_path / "invoices.csv"
    path.write_text("invoice_number;care_description;city;extra\nF1;  Détartrage  ; Paris ;\n\nF2;\"a\nb\";Lyon;x\n",
                    encoding="utf-8")
    whole, warnings = read_table(path, ["invoice_number"], ["care_description", "city"])
    partial, partial_warnings = read_table(path, ["invoice_number"], ["care_description", "city"],
                                           unread=frozenset({"care_description"}))
    assert whole["care_description"].tolist() == ["Détartrage", "a\nb"]
    assert partial["care_description"].tolist() == ["", ""]
    assert partial.drop(columns="care_description").equals(whole.drop(columns="care_description"))
    assert partial_warnings == warnings


def _whole(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b";", b"\r\n", "é".encode(), "€".encode(), "😀".encode(), b"\xe9", b"\x80",
                                 b"\xf0\x9f", b"\xc3"]), max_size=40), st.integers(1, 7))
def test_the_encoding_checked_by_blocks_is_the_one_the_whole_file_decoded_gives(pieces, block):
    """A character cut by a block's end, a bad byte in the last block, a truncated sequence at the end: by blocks
    of `block` bytes (the product's are 1 MB), detect_encoding says what decoding the whole file says."""
    data = b"".join(pieces)
    tabular.UTF8_CHECK_BLOCK, kept = block, tabular.UTF8_CHECK_BLOCK
    try:
        assert tabular.detect_encoding(data) == _whole(data)
    finally:
        tabular.UTF8_CHECK_BLOCK = kept


WINDOWS_1252_CELLS = st.text(alphabet=st.sampled_from(list("aZ09 ;\"\n-'.") + ["é", "È", "ç", "œ", "€", "\u00a0",
                                                                                 "ÿ", "«", "Œ"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WINDOWS_1252_CELLS, WINDOWS_1252_CELLS, WINDOWS_1252_CELLS), min_size=1, max_size=12),
       st.booleans())
def test_a_windows_1252_file_read_as_bytes_gives_what_the_same_text_in_utf8_gives(rows, leave_care):
    """The Windows-1252 file is parsed as bytes and its cells read made UTF-8 column by column: every cell, line,
    column and warning as the same text written in UTF-8 (accents, 'œ', '€', non-breaking spaces, quoted cells
    over several lines, quotes, separators in cells, blank lines, an unread column)."""
    def quoted(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"'

    lines = ["invoice_number;care_description;city;extra"]
    for number, (care, city, extra) in enumerate(rows):
        lines += [f"F{number};{quoted(care)};{quoted(city)};{quoted(extra)}", ""]
    text = "\r\n".join(lines) + "\r\n"
    unread = frozenset({"care_description"}) if leave_care else frozenset()
    with tempfile.TemporaryDirectory() as folder:
        windows, utf8 = Path(folder) / "windows.csv", Path(folder) / "utf8.csv"
        windows.write_bytes(text.encode("cp1252"))
        utf8.write_bytes(text.encode("utf-8"))
        # Windows-1252 bytes that happen to be UTF-8 ('é««' is E9 AB AB: U+9AEB) are read as UTF-8, as before
        assume(text.isascii() or tabular.detect_encoding(windows.read_bytes()) == "cp1252")
        assert text.isascii() or tabular._cp1252_as_bytes(windows.read_bytes())   # the path tested: as bytes
        frame, warnings = read_table(windows, ["invoice_number"], ["care_description", "city"], unread=unread)
        expected, expected_warnings = read_table(utf8, ["invoice_number"], ["care_description", "city"], unread=unread)
    assert frame.equals(expected) and list(frame.columns) == list(expected.columns)
    assert [str(dtype) for dtype in frame.dtypes] == [str(dtype) for dtype in expected.dtypes]
    assert warnings == [w.replace("utf8.csv", "windows.csv") for w in expected_warnings]


@pytest.mark.parametrize("read, made", [(pa.binary(), pa.string()), (pa.large_binary(), pa.large_string())])
def test_a_windows_1252_chunk_starting_past_its_buffer_is_made_utf8_from_its_own_cells(read, made):
    """Bytes give text, large bytes (what _parse_text reads) large text: the same cells, in one chunk."""
    cells = ["Orléans", "", "Œuvre €", "Lyon", "Besançon"]
    column = pa.array([c.encode("cp1252") for c in cells], read)
    for start in range(len(cells)):
        cut = tabular._column_text(pa.chunked_array([column.slice(start), column.slice(0, start)]), as_bytes=True)
        assert cut.type == made and cut.num_chunks == 1 and cut.to_pylist() == cells[start:] + cells[:start]
        alone = tabular._utf8_from_cp1252(column.slice(start))
        assert alone.type == made and alone.to_pylist() == cells[start:]
    ascii_only = tabular._column_text(pa.chunked_array([pa.array([b"Lyon", b"", b"Paris"], read)]), as_bytes=True)
    assert ascii_only.type == made and ascii_only.to_pylist() == ["Lyon", "", "Paris"]


def test_every_windows_1252_byte_is_made_the_utf8_python_s_codec_makes_of_it():
    """The 251 bytes Windows-1252 defines (the 5 others refuse the file before: _cp1252_as_bytes), alone, among
    ASCII, in cells of any length, some empty."""
    defined = [byte for byte in range(256) if byte not in tabular.CP1252_UNDEFINED]
    cells = [bytes([byte]) for byte in defined] + [b"", b"a" + bytes(defined) + b"z", bytes(reversed(defined)), b"x"]
    for kind in (pa.binary(), pa.large_binary()):
        made = tabular._utf8_from_cp1252(pa.array(cells, kind))
        assert made.to_pylist() == [cell.decode("cp1252") for cell in cells]
        made.validate(full=True)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_the_cells_reach_pandas_as_arrow_read_them_without_a_cast_to_large_text(tmp_path, encoding, monkeypatch):
    """Arrow reads every column as large text (large bytes from Windows-1252, made large text), the type pandas'
    Arrow strings hold: pandas casts no column again (each a copy of its offsets; the 1M invoices file's 27
    columns: 0.6-0.8 s of the read's CPU). Fails without the change: read as text, every column cast."""
    from pandas.core.arrays import string_
    casts = []
    cast = string_.pc.cast

    def watched(values, target=None, *args, **kwargs):
        casts.append(str(target))
        return cast(values, target, *args, **kwargs)
    monkeypatch.setattr(string_.pc, "cast", watched)
    path = tmp_path / "factures.csv"
    path.write_bytes("invoice_number;city;amount\r\nF1; Orléans ;12,50\r\nF2;Lyon;3\r\n".encode(encoding))
    frame, _ = read_table(path, ["invoice_number", "city"], ["amount"])
    assert casts == []
    assert frame["city"].tolist() == ["Orléans", "Lyon"] and frame["amount"].tolist() == ["12,50", "3"]
    assert all(str(dtype) == "string" and dtype.storage == "pyarrow" for dtype in frame.dtypes.iloc[:3])


@pytest.mark.parametrize("content", ["invoice_number;city\r\nF1;Orléans;de trop\r\n",
                                     'invoice_number;city\r\nF1;"Orléans\r\n', "invoice_numéro;city\r\nF1;Orléans\r\n"])
def test_a_windows_1252_file_arrow_cannot_read_is_refused_as_when_transcoded_first(tmp_path, content, monkeypatch):
    """A row too long, a quote left open (Arrow fails on the bytes: read again as before), a header with an accent
    (not read as bytes): the same refusal, or the same frame, as the file made UTF-8 first gives."""
    path = tmp_path / "bad.csv"
    path.write_bytes(content.encode("cp1252"))

    def outcome():
        try:
            return read_table(path, ["invoice_number"], ["city"])
        except RecouvrementError as refused:
            return str(refused), refused.file, refused.line

    read_as_bytes = outcome()
    monkeypatch.setattr(tabular, "_cp1252_as_bytes", lambda data: False)
    transcoded = outcome()
    if isinstance(transcoded, tuple) and isinstance(transcoded[0], str):
        assert read_as_bytes == transcoded
    else:
        assert read_as_bytes[0].equals(transcoded[0]) and read_as_bytes[1] == transcoded[1]


EDGES = ["a", "Z", "~", "!", "é", " ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x7f", "\x85", "\u00a0",
         "\u1680", "\u2003", "\u2028", "\u202f", "\u3000", "\ufeff", "😀"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(EDGES), max_size=5)), max_size=6),
                min_size=1, max_size=4), st.integers(0, 2))
def test_cells_trimmed_when_the_column_needs_it_are_those_the_whole_kernel_gives(chunks, start):
    """_column_text leaves a column whose cells start and end with bytes that cannot be whitespace as it is: the
    same cells as Arrow's utf8_trim_whitespace on every chunk (ASCII and Unicode spaces, controls, non-breaking
    spaces, empty and missing cells, a chunk starting past its buffer), in text and in large text (what
    _parse_text reads), and from Windows-1252 bytes for the characters it has."""
    for kind in (pa.string(), pa.large_string()):
        arrays = [pa.array(cells, kind) for cells in chunks]
        arrays[0] = arrays[0].slice(min(start, len(arrays[0])))
        column = pa.chunked_array(arrays, type=kind)
        made = tabular._column_text(column, as_bytes=False)
        assert made.to_pylist() == pc.utf8_trim_whitespace(column).to_pylist()
        assert made.type == kind and made.num_chunks == 1
    windows = [[cell if cell is None else "".join(c for c in cell if c in WINDOWS_1252_EDGES) for cell in cells]
               for cells in chunks]
    for kind in (pa.binary(), pa.large_binary()):
        arrays = [pa.array([cell if cell is None else cell.encode("cp1252") for cell in cells], kind)
                  for cells in windows]
        arrays[0] = arrays[0].slice(min(start, len(arrays[0])))
        made = tabular._column_text(pa.chunked_array(arrays, type=kind), as_bytes=True)
        texts = [pa.array(cells, tabular._TEXT_OF_BYTES[kind]) for cells in windows]
        texts[0] = texts[0].slice(min(start, len(texts[0])))
        assert made.to_pylist() == pc.utf8_trim_whitespace(pa.chunked_array(texts)).to_pylist()
        assert made.type == tabular._TEXT_OF_BYTES[kind] and made.num_chunks == 1


WINDOWS_1252_EDGES = {c for c in EDGES if c.encode("cp1252", errors="ignore")} | {"…", "Œ", "’"}


def test_arrow_trims_off_a_cell_s_edge_only_the_windows_1252_bytes_said_to_be_maybe_whitespace():
    """_MAY_TRIM_CP1252 against Arrow's own kernel, for every byte Windows-1252 defines: a byte it does not hold is
    never taken off the start or the end of a cell (an accented capital, '…', '€', 'œ': a column of names is not
    trimmed for nothing). It holds the bytes up to the space and the non-breaking space (0xA0)."""
    for byte in range(256):
        if byte in tabular.CP1252_UNDEFINED:
            continue
        character = bytes([byte]).decode("cp1252")
        cell = character + "a" + character
        trimmed = pc.utf8_trim_whitespace(pa.array([cell])).to_pylist()[0]
        assert trimmed == cell or tabular._MAY_TRIM_CP1252[byte], hex(byte)
    assert [byte for byte in range(256) if tabular._MAY_TRIM_CP1252[byte]] == [*range(0x21), 0xA0]


def test_a_windows_1252_column_of_accented_names_is_not_trimmed_and_one_with_spaces_is(tmp_path, monkeypatch):
    """Names starting or ending with an accented letter ('É' is 0xC9, UTF-8 C3 89): Arrow's trimming (which reads
    every character as Unicode) is not run on their column, as it is not on plain ASCII ones; a column with a
    space or a non-breaking space at an edge is trimmed. Fails without the change: the names' column trimmed (its
    edges were looked at once made UTF-8, where every byte from 0x80 may be whitespace)."""
    trimmed = []
    kernel = pc.utf8_trim_whitespace

    def watched(cells, *args, **kwargs):
        trimmed.append(cells.to_pylist())
        return kernel(cells, *args, **kwargs)
    monkeypatch.setattr(tabular.pc, "utf8_trim_whitespace", watched)
    path = tmp_path / "factures.csv"
    path.write_bytes("invoice_number;last_name;city;amount\r\nF1;Élodie;\u00a0Orléans;12,50\r\n"
                     "F2;André;Lyon ;3\r\n".encode("cp1252"))
    assert tabular.detect_encoding(path.read_bytes()) == "cp1252"
    frame, _ = read_table(path, ["invoice_number", "last_name"], ["city", "amount"])
    assert frame["last_name"].tolist() == ["Élodie", "André"] and frame["city"].tolist() == ["Orléans", "Lyon"]
    assert trimmed == [["\u00a0Orléans", "Lyon "]]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_file_of_several_blocks_gives_each_column_in_one_chunk(tmp_path, encoding):
    """Arrow reads a file by blocks (1 MB) in its own threads, a chunk a block: each column is made one chunk after,
    in the parse's own threads (see _parse_text: what Arrow's threads allocated, once freed, stays in their
    heaps). The cells are those of the file, in its order. Fails without the change: a chunk a block."""
    rows = [f"F{n:07d};Orléans {n % 97};{n % 1000},{n % 100:02d}" for n in range(90_000)]
    path = tmp_path / "factures.csv"
    path.write_bytes(("invoice_number;city;amount\r\n" + "\r\n".join(rows) + "\r\n").encode(encoding))
    assert path.stat().st_size > 2 << 20
    frame, _ = read_table(path, ["invoice_number", "city"], ["amount"])
    assert [frame[c].array.__arrow_array__().num_chunks for c in ("invoice_number", "city", "amount")] == [1, 1, 1]
    assert frame["invoice_number"].tolist() == [row.split(";")[0] for row in rows]
    assert frame["city"].iloc[-1] == f"Orléans {89_999 % 97}" and frame["amount"].iloc[-1] == "999,99"
    assert frame["source_line"].tolist() == list(range(2, len(rows) + 2))


def test_reject_collector_keeps_the_first_reason_and_reads_missing_as_not_refused():
    """Masks of any dtype (a missing truth is no refusal), a reason given for the refused rows only, the first
    reason of a row kept; `bad` aligned with the frame's own index."""
    from recouvrement.importers.tabular import RejectCollector
    lines = pd.Series([2, 3, 5, 6], index=[10, 11, 12, 13])
    rejects = RejectCollector("f.csv", lines)
    rejects.add(pd.Series([True, None, False, None], index=lines.index, dtype="boolean"), "a", "first")
    cells = pd.Series(["x", "y", "z", "w"], index=lines.index)
    again = pd.Series([True, True, False, False], index=lines.index)
    rejects.add(again, "b", "second: " + cells[again])
    rejects.add(pd.Series([np.nan, 0.0, 1.0, np.nan], index=lines.index), "c", "third")
    assert [(r.line, r.field, r.reason) for r in sorted(rejects.rejects)] == [
        (2, "a", "first"), (3, "b", "second: y"), (5, "c", "third")]
    assert rejects.bad.tolist() == [True, True, True, False]
    assert rejects.bad.index.tolist() == [10, 11, 12, 13]
