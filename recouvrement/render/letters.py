"""Reminder letters as HTML and plain text, rendered in a whitelist sandbox from a LetterView only.

The templates see `view`, and may read only the fields of the view records: no method, no dunder, no
global; and `qr_src`, the letter's SEPA transfer QR code as a data: URI (render/sepa_qr.py). An undefined name is an error, never an empty string in a letter.
The plain text (the e-mail body) is derived from the HTML, so both always say the same thing.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment
from stdnum import iban

from recouvrement.core.references import format_rf
from recouvrement.core.wording import postal_line
from recouvrement.money import format_eur
from recouvrement.render.views import Creditor, LetterLine, LetterView, Recipient

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "letters"

_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")
# What a template may read: the fields of the view records, and the position inside a for loop.
_READABLE: dict[type, frozenset[str]] = {
    **{cls: frozenset(f.name for f in dataclasses.fields(cls))
       for cls in (Creditor, Recipient, LetterLine, LetterView)},
    LoopContext: frozenset({"index", "first", "last", "length"}),
}


def date_fr(value: date, short: bool = False) -> str:
    """'1er décembre 2026', '23 novembre 2026', or '23/11/2026' when short.

    >>> date_fr(date(2026, 11, 23)), date_fr(date(2026, 12, 1)), date_fr(date(2026, 3, 4), short=True)
    ('23 novembre 2026', '1er décembre 2026', '04/03/2026')
    """
    if short:
        return value.strftime("%d/%m/%Y")
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {_MONTHS[value.month - 1]} {value.year}"


def lines(value: str) -> list[str]:
    """The non-empty lines of a multi-line address."""
    return [part.strip() for part in value.splitlines() if part.strip()]


def days_after(value: date, days: int) -> date:
    """The date `days` calendar days later: deadlines are counted from the letter date."""
    return value + timedelta(days=days)


class _WhitelistSandbox(SandboxedEnvironment):
    """A sandbox stricter than Jinja's: only the declared fields of the view records are readable."""

    def is_safe_attribute(self, obj: object, attr: str, value: object) -> bool:
        return attr in _READABLE.get(type(obj), ())


@functools.cache
def environment() -> SandboxedEnvironment:
    """The letters' Jinja environment (built once): whitelist sandbox, strict undefined, French filters."""
    env = _WhitelistSandbox(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined,
                            autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals.clear()  # no range, dict, lipsum...: a letter needs none of them
    # The creditor's IBAN is printed in every letter: stdnum's formatting kept per value.
    env.filters.update(eur=format_eur, date_fr=date_fr, days_after=days_after, rf=format_rf,
                       iban=functools.lru_cache(maxsize=64)(iban.format), lines=lines, postal=postal_line)
    return env


def render_html(view: LetterView) -> str:
    """The letter as a complete HTML document (inline CSS), for the PDF and the e-mail."""
    if not isinstance(view, LetterView):
        raise TypeError(f"render_html needs a LetterView, not {type(view).__name__}")
    from recouvrement.render.sepa_qr import qr_data_uri
    return environment().get_template(f"{view.kind}.html.j2").render(view=view, qr_src=qr_data_uri(view))


def render_text(view: LetterView) -> str:
    """The letter as plain text (the e-mail body), derived from its HTML."""
    return html_to_text(render_html(view))


# Elements after which the text needs a line break, and those that open a paragraph.
_BREAK = {"br", "tr", "li", "div", "header", "footer", "section", "table"}
_PARAGRAPH = {"p", "h1", "h2", "h3", "table", "ul", "ol", "section", "header", "footer"}
# Source whitespace only: the no-break spaces of "1 234,56 €" must survive into the text.
_WHITESPACE = re.compile(r"[ \t\r\n]+")
_VOID = {"br", "meta", "link", "img", "hr", "col", "wbr", "input"}


class _TextExtractor(HTMLParser):
    """HTML of a letter → readable text: paragraphs separated by a blank line, cells by ' | '."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0  # inside <head>, <style> or an element marked data-text="skip"
        self.cell_open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_depth or tag in ("head", "style") or ("data-text", "skip") in attrs:
            if tag not in _VOID:
                self.skip_depth += 1
            return
        if tag in _PARAGRAPH:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" | " if self.cell_open else "")
            self.cell_open = True

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            self.skip_depth -= 1
            return
        if tag == "tr":
            self.cell_open = False
        if tag in _PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in _BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(_WHITESPACE.sub(" ", data))


# The markup of a letter as our templates write it: comments, declarations (<!DOCTYPE html>), end tags, and start tags
# whose attribute values hold no character reference and no angle bracket. Anything else (a "<" in text, a script)
# is left to html.parser.
_MARKUP = re.compile(
    r"<!--.*?-->|<![^<>]*>|</([a-zA-Z][a-zA-Z0-9]*)\s*>"
    r"|<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-zA-Z][-a-zA-Z0-9]*(?:\s*=\s*(?:\"[^\"<>&]*\"|'[^'<>&]*'|[^\s\"'<>=&`]+))?)*)"
    r"\s*(/?)>", re.DOTALL)
_SKIP_ATTRIBUTE = re.compile(r"""\sdata-text\s*=\s*(?:"skip"|'skip'|skip(?![^\s/>]))""", re.IGNORECASE)
_CDATA_END = re.compile(r"</style", re.IGNORECASE)


def _tokens_read(parser: _TextExtractor, document: str) -> bool:
    """The document fed to the parser's handlers token by token, as html.parser would call them, by one regular
    expression (html.parser's tokenizer was a tenth of a letter's composing time: issue #16); False, the parser
    left half-fed, when the document holds anything but plain markup and text (tests/render/test_letters.py holds
    the text equal to html.parser's)."""
    position, end = 0, len(document)
    search, handle_data = _MARKUP.search, parser.handle_data
    handle_starttag, handle_endtag = parser.handle_starttag, parser.handle_endtag
    while position < end:
        token = search(document, position)
        stop = token.start() if token else end
        if stop > position:
            data = document[position:stop]
            if "<" in data:
                return False
            handle_data(html.unescape(data) if "&" in data else data)
        if token is None:
            break
        position = token.end()
        closing, opening, attributes, slash = token.groups()
        if closing:
            handle_endtag(closing.lower())
        elif opening:
            tag = opening.lower()
            if tag == "script":
                return False
            skip = bool(attributes) and _SKIP_ATTRIBUTE.search(attributes) is not None
            handle_starttag(tag, [("data-text", "skip")] if skip else [])
            if slash:
                handle_endtag(tag)
            elif tag == "style":       # its content is raw text up to its end tag, which the parser skips
                close = _CDATA_END.search(document, position)
                if close is None:
                    return False
                position = close.start()
    return True


def html_to_text(document: str) -> str:
    """Plain text of a letter's HTML: no markup, single spaces, at most one blank line in a row."""
    parser = _TextExtractor()
    if not _tokens_read(parser, document):
        parser = _TextExtractor()
        parser.feed(document)
        parser.close()
    lines = (line.strip() for line in "".join(parser.parts).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
