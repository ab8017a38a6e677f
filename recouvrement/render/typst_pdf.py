"""The letters' print batch laid out by Typst: each letter's stored HTML turned into Typst markup, one document a chunk.

Why: WeasyPrint needs about 150-200 ms of CPU a letter, Typst a few (benchmarks/letters.py, issue #16). The input stays
the letter's HTML as written and approved (render/letters.py), so the batch prints exactly what was scanned and
recorded. The letters' HTML uses a few elements and classes only (templates/letters/); each maps to the Typst
counterpart of its rule in letter.css. An element or class this module does not know raises `NotTypstable`: the
caller then lays the batch out with WeasyPrint (render/pdf.py), never a letter with a part missing.
Text goes into the markup as Typst string literals (`#"..."`), so no character of a name or an address is markup.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import tempfile
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import typst

_WHITESPACE = re.compile(r"[ \t\r\n\f]+")  # HTML's whitespace: the no-break spaces of "1 234,56 €" stay
_VOID = {"br", "img", "meta", "link"}
_SKIPPED = {"head", "title", "style", "meta", "link", "script"}
_DATA_PNG = "data:image/png;base64,"


class NotTypstable(ValueError):
    """This HTML holds an element or class the Typst layout does not know."""


@dataclass
class _Node:
    tag: str
    classes: frozenset[str] = frozenset()
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Node | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root")
        self.stack = [self.root]
        self.skip = 0
        self.style: list[str] = []  # the text of the document's <style> elements
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        if self.skip or tag in _SKIPPED:
            self.skip += tag not in _VOID
            return
        values = {k: v or "" for k, v in attrs}
        node = _Node(tag, frozenset(values.get("class", "").split()), values)
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False
        if self.skip:
            self.skip -= tag not in _VOID
            return
        if tag in _VOID:
            return
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.style.append(data)
        if not self.skip:
            self.stack[-1].children.append(data)


# The HTML our templates write, read by regular expressions: a declaration, a comment, a start tag whose attributes
# are all double-quoted (or bare), an end tag, or text holding no "<". Anything else (a "<" in text, an attribute in
# single quotes or unquoted) and the page is read by HTMLParser instead (_TreeBuilder): same tree, about four times
# slower (issue #16: 0.7 ms a letter).
_TOKEN = re.compile(r"<(?:!--.*?--|![^<>]*|/([a-zA-Z][a-zA-Z0-9]*)\s*|([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
                    r"(?:\s*=\s*\"[^\"]*\")?)*)\s*(/?))>", re.S)
_ATTRIBUTE = re.compile(r"([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*\"([^\"]*)\")?")


class _NotSimple(ValueError):
    """This HTML is not in the plain form _fast_tree reads."""


def _fast_tree(html: str) -> _TreeBuilder:
    """The tree _TreeBuilder builds from `html`, read by regular expressions (raises _NotSimple when it cannot)."""
    builder = _TreeBuilder()
    data, start, end = builder.handle_data, builder.handle_starttag, builder.handle_endtag
    position = 0
    in_style = False
    for match in _TOKEN.finditer(html):
        text = html[position:match.start()]
        position = match.end()
        closing, tag = match.group(1), match.group(2)
        if in_style:  # raw text up to </style>, as HTMLParser reads it
            if closing is None or closing.lower() != "style":
                raise _NotSimple("style")
            if text:
                data(text)
            end("style")
            in_style = False
            continue
        if text:
            if "<" in text:
                raise _NotSimple(text)
            data(unescape(text))
        if closing:
            end(closing.lower())
        elif tag:
            tag = tag.lower()
            attributes = match.group(3)
            start(tag, [(m.group(1).lower(), None if m.group(2) is None else unescape(m.group(2)))
                        for m in _ATTRIBUTE.finditer(attributes)] if attributes else [])
            if match.group(4):
                end(tag)
            elif tag == "style":
                in_style = True
            elif tag == "script":  # raw text too: left to HTMLParser
                raise _NotSimple(tag)
    text = html[position:]
    if in_style or "<" in text:
        raise _NotSimple(text)
    if text:
        data(unescape(text))
    return builder


def _tree(html: str) -> _TreeBuilder:
    try:
        return _fast_tree(html)
    except _NotSimple:
        builder = _TreeBuilder()
        builder.feed(html)
        builder.close()
        return builder


def _text(value: str) -> str:
    """A Typst string literal: whatever the text says, it is printed, never read as markup."""
    return "#" + json.dumps(value, ensure_ascii=False)


# Classes each element may carry; anything else is a template change this module has not followed.
_KNOWN: dict[str, frozenset[str]] = {
    "html": frozenset(), "body": frozenset(), "br": frozenset(), "strong": frozenset({"ref"}), "b": frozenset(),
    "span": frozenset({"name", "muted"}), "p": frozenset({"muted", "letter-ref", "place-date", "signature"}),
    "div": frozenset({"letter-head", "recipient", "box", "highlight", "pay"}), "header": frozenset({"creditor"}),
    "section": frozenset({"also-due", "payment", "help"}), "h1": frozenset(), "h2": frozenset(),
    "table": frozenset({"invoices", "schedule"}), "thead": frozenset(), "tbody": frozenset(),
    "tr": frozenset({"total"}), "th": frozenset({"amount"}), "td": frozenset({"amount", "ref"}),
    "img": frozenset({"qr"}),
}


def _check(node: _Node) -> None:
    if node.tag not in _KNOWN or not node.classes <= _KNOWN[node.tag]:
        raise NotTypstable(f"<{node.tag} class={' '.join(sorted(node.classes))!r}> has no Typst layout")


def _inline(children: list[_Node | str]) -> str:
    """Inline content as markup, whitespace collapsed as HTML does, trimmed at both ends of the block."""
    parts: list[tuple[str, str]] = []  # ("s", text) or ("m", markup)
    for child in children:
        if isinstance(child, str):
            text = _WHITESPACE.sub(" ", child)
            if text:
                parts.append(("s", text))
            continue
        _check(child)
        if child.tag == "br":
            parts.append(("m", "#linebreak()"))
        elif child.tag in ("strong", "b"):
            mono = ", font: mono" if "ref" in child.classes else ""
            parts.append(("m", f"#text(weight: \"bold\"{mono})[{_inline(child.children)}]"))
        elif child.tag == "span":
            style = "weight: \"bold\", size: 11pt" if "name" in child.classes else "fill: muted, size: 8.5pt"
            parts.append(("m", f"#text({style})[{_inline(child.children)}]"))
        else:
            raise NotTypstable(f"<{child.tag}> inside a line of text has no Typst layout")
    # Collapse spaces across element boundaries, drop them at the start of a line and at both ends.
    out: list[str] = []
    space = False
    started = False
    for kind, value in parts:
        if kind == "m":
            if value == "#linebreak()":
                space = False
            elif space and started:
                out.append(_text(" "))
                space = False
            out.append(value)
            started = value != "#linebreak()"
            continue
        lead, body, trail = value[:1] == " ", value.strip(" "), value[-1:] == " "
        if (lead or space) and started and body:
            out.append(_text(" "))
        if body:
            out.append(_text(body))
            started = True
            space = trail
        else:
            space = space or lead
    return "".join(out)


def _blocks(children: list[_Node | str]) -> str:
    """Block-level content: each element by its rule; stray text between blocks is whitespace only."""
    out = []
    elements = [child for child in children if not (isinstance(child, str) and not child.strip())]
    for child, after in zip(elements, [*elements[1:], None]):
        if isinstance(child, str):
            out.append(f"#par[{_inline([child])}]")
            continue
        markup = _block(child)
        if isinstance(after, _Node) and "signature" in after.classes:
            markup = f"#block(sticky: true)[{markup}]"  # letter.css: .signature { break-before: avoid }
        out.append(markup)
    return "\n".join(out)


def _paragraph(node: _Node) -> str:
    body = _inline(node.children)
    if "muted" in node.classes:
        body = f"#text(fill: muted, size: 8.5pt)[{body}]"
    if "signature" in node.classes:
        return f"#v(2mm, weak: true)\n#par[{body}]"
    return f"#par[{body}]"


def _block(node: _Node) -> str:
    _check(node)
    tag, classes = node.tag, node.classes
    if tag in ("html", "body", "section", "header"):
        return _blocks(node.children)
    if tag == "p":
        return _paragraph(node)
    if tag == "h1":
        return f"#heading-one[{_inline(node.children)}]"
    if tag == "h2":
        return f"#heading-two[{_inline(node.children)}]"
    if tag == "table":
        return _table(node)
    if tag == "div" and "letter-head" in classes:
        return _letter_head(node)
    if tag == "div" and "pay" in classes:
        qr = [c for c in node.children if isinstance(c, _Node) and c.tag == "img"]
        rest = [c for c in node.children if not (isinstance(c, _Node) and c.tag == "img")]
        return f"#pay-box({_image(qr[0]) if qr else 'none'})[{_blocks(rest)}]"
    if tag == "div" and "box" in classes:
        return f"#note-box(highlight: {'true' if 'highlight' in classes else 'false'})[{_blocks(node.children)}]"
    raise NotTypstable(f"<{tag}> has no Typst layout here")


def _letter_head(node: _Node) -> str:
    """The head of fixed height: the creditor, and the recipient placed in the envelope's window."""
    parts = []
    for child in node.children:
        if isinstance(child, str):
            continue
        _check(child)
        if child.tag == "header":
            parts.append(f"#creditor[{_blocks(child.children)}]")
        elif "recipient" in child.classes:
            parts.append(f"#recipient[{_inline(child.children)}]")
        elif "letter-ref" in child.classes:
            parts.append(f"#letter-ref[{_inline(child.children)}]")
        elif "place-date" in child.classes:
            parts.append(f"#place-date[{_inline(child.children)}]")
        else:
            raise NotTypstable(f"<{child.tag}> in the letter head has no Typst layout")
    return "#letter-head[" + "\n".join(parts) + "]"


def _image(node: _Node) -> str:
    _check(node)
    src = node.attrs.get("src", "")
    if not src.startswith(_DATA_PNG):
        raise NotTypstable("only an inline PNG (the QR code) can be printed")
    return _png_literal(src[len(_DATA_PNG):])


@functools.lru_cache(maxsize=4096)
def _png_literal(data: str) -> str:
    return "bytes((" + ",".join(map(str, base64.b64decode(data))) + ",))"


# Column widths of letter.css (table-layout: fixed): the n-th header's width plus its padding, the last column the rest.
_WIDTHS = {"invoices": ("24% + 3mm", "15% + 3mm", "15% + 3mm", "28% + 3mm"), "schedule": ("30% + 3mm",)}


def _cells(row: _Node) -> list[_Node]:
    cells = [c for c in row.children if isinstance(c, _Node)]
    for cell in cells:
        _check(cell)
    return cells


def _table(node: _Node) -> str:
    rows: list[tuple[_Node, bool]] = []
    for group in node.children:
        if isinstance(group, _Node):
            _check(group)
            for row in group.children:
                if isinstance(row, _Node):
                    _check(row)
                    rows.append((row, group.tag == "thead"))
    count = sum(int(cell.attrs.get("colspan", "1")) for cell in _cells(rows[0][0]))
    kind = next(iter(node.classes & set(_WIDTHS)), "")
    fixed = list(_WIDTHS.get(kind, ()))[:count - 1]
    columns = ", ".join(fixed + ["1fr"] * (count - len(fixed)))
    body = []
    for row, head in rows:
        total = "total" in row.classes
        for cell in _cells(row):
            options = []
            if (span := int(cell.attrs.get("colspan", "1"))) > 1:
                options.append(f"colspan: {span}")
            if head:
                options.append("fill: head-fill")
            if "amount" in cell.classes:
                options.append("align: right")
            content = _inline(cell.children)
            if "ref" in cell.classes:
                content = f"#text(font: mono, size: 8.5pt)[{content}]"
            if "amount" in cell.classes:
                content = f"#box[{content}]"  # white-space: nowrap
            if head:
                content = f"#text(weight: \"bold\", size: 8.5pt)[{content}]"
            elif total:
                content = f"#text(weight: \"bold\")[{content}]"
            body.append(f"table.cell({', '.join(options)})[{content}]")
        body.append("table.hline(stroke: total-rule)" if total else "table.hline(stroke: rule)")
    return f"#letter-table(columns: ({columns},), " + ", ".join(body) + ")"


@functools.cache
def _letter_css() -> str:
    return (Path(__file__).resolve().parents[1] / "templates" / "letters" / "letter.css").read_text(encoding="utf-8").strip()


def letter_markup(html: str) -> str:
    """One letter's body as Typst markup (the shared styles are in _PREAMBLE).

    Only a letter styled by letter.css, inline and unchanged, is ours to lay out: _PREAMBLE is that sheet.
    """
    builder = _tree(html)
    if "".join(builder.style).strip() != _letter_css():
        raise NotTypstable("not styled by the letters' letter.css")
    return _blocks(builder.root.children)


# letter.css in Typst. A line box as CSS builds it: line-height 1.3 is DejaVu Sans's ascender (0.928 em) and descender
# (0.236 em) plus half the leading above and below (0.068 em each), so the line's edges are 0.996 em above and
# 0.304 em below the baseline and Typst adds no leading of its own (1.35 for the creditor and the window address).
# Margins are the page's plus the 8 px (6 pt) the user-agent sheet gives the body (user-agent.css), at the top of
# a letter's first page only.
_PREAMBLE = r"""
#let muted = rgb("#444")
#let mono = "DejaVu Sans Mono"
#let head-fill = rgb("#eee")
#let rule = 0.3mm + rgb("#bbb")
#let total-rule = 0.5mm + rgb("#111")
#set document(title: none)
#set text(font: "DejaVu Sans", size: 9pt, fill: rgb("#111"), lang: "fr", hyphenate: false,
          top-edge: 0.996em, bottom-edge: -0.304em)
#set par(leading: 0pt, spacing: 1.3mm, justify: false)
#set page(paper: "a4", numbering: "1", margin: (top: 15mm, right: 20mm + 6pt, bottom: 12mm, left: 20mm + 6pt), footer-descent: 50% - 3.75pt)
#let page-footer(body) = pad(right: -6pt, align(right, text(size: 7.5pt, fill: rgb("#555"), body)))
#let one-page = page-footer[page 1 / 1]
#let counted(letter) = context page-footer[page #counter(page).display() / #counter(page).at(label("letter-end-" + str(letter))).first()]
#let counting = json("counted.json")
#let footer-of(letter) = if letter in counting { counted(letter) } else { one-page }
#let heading-one(body) = block(above: 3mm, below: 2.5mm, text(size: 11pt, weight: "bold", body))
#let heading-two(body) = block(above: 3mm, below: 1.5mm, sticky: true, text(size: 10pt, weight: "bold", body))
#let letter-table(..args) = block(above: 2mm, below: 3mm, table(
  stroke: none, inset: (x: 1.5mm, top: 0.8mm, bottom: 1.1mm), align: left + top, ..args))
#let note-box(highlight: false, body) = block(width: 100%, inset: (x: 3mm, y: 2mm), above: 2mm, below: 2mm,
  stroke: 0.4mm + if highlight { rgb("#1d5f8a") } else { rgb("#888") },
  fill: if highlight { rgb("#eef5fa") } else { none }, body)
#let pay-box(qr, body) = note-box(grid(columns: (1fr, 30mm), column-gutter: 1.5mm,
  block(spacing: 0pt, body),
  if qr != none { move(dx: 1.5mm, dy: -1mm, image(qr, format: "png", width: 30mm, height: 30mm, scaling: "pixelated")) }))
#let letter-head(body) = block(height: 79mm, width: 100%, spacing: 0pt, body)
#let creditor(body) = { set text(top-edge: 1.021em, bottom-edge: -0.329em); set par(spacing: 0pt); block(spacing: 0pt, body) }
#let recipient(body) = place(top + left, dx: 90mm, dy: 35mm, block(width: 85mm, height: 35mm, clip: true, {
  set text(size: 10pt, top-edge: 1.021em, bottom-edge: -0.329em); body }))
#let letter-ref(body) = place(top + left, dy: 74.5mm, text(fill: muted, size: 8.5pt, body))
#let place-date(body) = place(top + left, dx: 90mm, dy: 74mm, body)
"""


def batch_markup(bodies: list[str]) -> str:
    """The Typst source of several letters (their letter_markup), each from a new page, its pages numbered on its own.

    A letter's footer says "page n / N". Counting pages is introspection, which costs Typst a second layout of the whole
    document (0.9 ms a letter, 15 %): only the letters listed in the file counted.json beside it (a JSON list of their
    numbers) count theirs, the others print "page 1 / 1".
    """
    letters = [f"#page(footer: footer-of({number}))[#counter(page).update(1)#v(6pt)\n{body}\n"
               f"#metadata(none) <letter-end-{number}>]" for number, body in enumerate(bodies)]
    return _PREAMBLE + "\n".join(letters) + "\n"


@functools.cache
def _fonts() -> typst.Fonts:
    """The system's fonts, listed once a process (DejaVu Sans, as for WeasyPrint: scripts/setup.sh installs it)."""
    return typst.Fonts()


# The typst package memoizes layouts process-wide and, after each compile, forgets only what the last 10 compiles did
# not use (comemo::evict(10)): a worker laying out chunk after chunk held about ten chunks' layouts, 1.3 GB at 100
# letters a chunk (issue #16). Blank compiles after each document age its entries out: what the next document shares
# with it (the letters' fixed paragraphs, used by every chunk) is kept, the rest is dropped before the next chunk.
_EVICTIONS = 9
_BLANK = b"#set page(width: 1pt, height: 1pt)"


@functools.cache
def _blank() -> typst.Compiler:
    return typst.Compiler(font_paths=_fonts())


def _forget_layouts() -> None:
    """Age the layouts of the last document out of the typst package's cache (about 0.4 ms of CPU a letter)."""
    for _ in range(_EVICTIONS):
        _blank().compile(input=_BLANK, format="svg")


# A letter whose markup (its QR code's bytes left out) is longer than this may take more than one page: it counts its
# pages from the first layout. Over every kind of letter (specimens of 1 to 5 invoices, with and without a guarantor,
# a plan offered, other sums due) and the benchmark's, the longest one-page letter was 4,031 characters and the
# shortest two-page one 4,047. A shorter letter that still runs long is found by the layout and laid out again.
_ONE_PAGE_AT_MOST = 3900
_QR_LITERAL = re.compile(r"bytes\(\([0-9,]*\)\)")


def _may_run_long(body: str) -> bool:
    return len(body) > _ONE_PAGE_AT_MOST and len(_QR_LITERAL.sub("", body)) > _ONE_PAGE_AT_MOST


def typst_pdf(htmls: list[str]) -> tuple[bytes, list[int]]:
    """Several letters as one PDF, each from a new page: (PDF bytes, page count of each letter).

    Only the letters that may run long count their pages; the others say "page 1 / 1", which needs no introspection
    (a chunk of short letters is laid out once, not twice). A letter that says so and takes more than one page after
    all is then made to count its pages, in a layout that reuses the first for the other letters.
    Raises NotTypstable when a letter holds what this layout does not know (the caller uses WeasyPrint then).
    """
    bodies = [letter_markup(html) for html in htmls]
    counted = [number for number, body in enumerate(bodies) if _may_run_long(body)]
    with tempfile.TemporaryDirectory(prefix="letters-typst-") as folder:
        main = Path(folder) / "batch.typ"  # a file, not bytes: the typst package evaluates in a document only from a file
        main.write_text(batch_markup(bodies), encoding="utf-8")
        listed = Path(folder) / "counted.json"
        # The same compiler and source for both layouts, only counted.json edited: the letters it does not name keep
        # their layout (memoized by the typst package), which a new source or compiler would lay out again.
        compiler = typst.Compiler(str(main), root=folder, font_paths=_fonts())
        while True:
            listed.write_text(json.dumps(counted), encoding="utf-8")
            pdf = compiler.compile(format="pdf", pdf_tags=False)
            # The page of each letter's end, read from the laid-out document (no layout again).
            ends = json.loads(compiler.eval(f"range({len(bodies)}).map(i => locate(label(\"letter-end-\" + str(i))).page())"))
            counts = [end - start for start, end in zip([0, *ends], ends)]
            longer = [number for number, count in enumerate(counts) if count > 1]
            if set(longer) <= set(counted):
                break
            counted = sorted(set(counted) | set(longer))
    _forget_layouts()
    assert isinstance(pdf, bytes) and len(counts) == len(htmls), "one page range a letter"
    return pdf, counts
