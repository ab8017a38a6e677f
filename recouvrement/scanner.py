"""Privacy scan of files and documents: text out of each format, then the detectors of core.privacy.

`ensure_clean` guards every write (letters, e-mails, exports, reports); `scan_paths` backs
`recouvrement audit scan PATH...`, the proof for a DPO that no medical data left the clinic.
Line numbers are those of the extracted text: the file's own lines for text, CSV, JSON and HTML
(tags are blanked, not removed); the text layer for PDF (pdftotext -layout); for an e-mail, the
headers, then each part in order, each under a "--- part N type ---" line.
"""

from __future__ import annotations

import csv
import email
import functools
import html
import io
import quopri
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

from recouvrement.core.privacy import KEY_COLUMNS, Finding, Lexicon, id_tokens, kind_label, redact, scan_text
from recouvrement.errors import RecouvrementError

SHOWN_IN_ERROR = 3  # lines named in a PrivacyLeak message; the rest are counted
# What the clinic does about a refused document (said in every refusal).
HOW_TO_PROCEED = (
    "corrigez la donnée en cause (nom, adresse, mutuelle, payeur, libellé…) dans le logiciel du cabinet "
    "puis réimportez le fichier ; si c'est le nom, l'adresse ou l'e-mail du créancier, déclarez-les tels "
    "qu'imprimés dans la section [creditor] de recouvrement.toml ; pour une fausse alerte (un nom de famille pris "
    "pour un terme de soin), envoyez ce courrier à la main")
_EMAIL_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject")


class PrivacyLeak(RecouvrementError):
    """A document about to leave the clinic holds medical data; it was not written."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 findings: tuple[Finding, ...] = ()) -> None:
        super().__init__(message, file=file, line=line)
        self.findings = findings


# ---------------------------------------------------------------- text out of files

def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252: French software still writes it, and a
    mis-decoded "é" would hide "échographie" from the lexicon."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# JSON escapes that would hide a word: "\u00e9chographie", "...\nPsychiatrie".
_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|([\"\\/bfnrt]))")
_JSON_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": " ", "f": " ", "n": " ", "r": " ", "t": " "}


def json_text(raw: str) -> str:
    """JSON text with its string escapes resolved in place, so lines stay the file's lines."""
    def unescape(match: re.Match[str]) -> str:
        if match[1]:
            char = chr(int(match[1], 16))
            return " " if 0xD800 <= ord(char) <= 0xDFFF else char  # a lone surrogate half
        return _JSON_SIMPLE[match[2]]
    return _JSON_ESCAPE.sub(unescape, raw)


# Attributes whose values travel with the page although they are not body text.
_KEPT_ATTRIBUTES = re.compile(
    r"""\b(?:alt|title|content|value|placeholder|aria-label|download)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""",
    re.IGNORECASE)
_INLINE_TAGS = {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i",
                "kbd", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time",
                "u", "var"}
_TAG = re.compile(r"<!--|-->|<!\[CDATA\[|\]\]>|<[!?/]?([a-zA-Z][\w:-]*)?[^>]*>", re.DOTALL)


def html_text(raw: str) -> str:
    """Text of an HTML page, each tag blanked in place so line numbers stay the page's own.

    Comments, scripts and styles are kept as text: they leave the clinic with the page. Inline
    tags vanish ("<b>psy</b>chiatre" reads "psychiatre"), block tags become a space.
    """
    return html.unescape(_TAG.sub(_blanked, raw))


def _blanked(match: re.Match[str]) -> str:
    return _blank_tag(match[0], match[1] or "")


@functools.lru_cache(maxsize=4096)
def _blank_tag(tag: str, name: str) -> str:
    """What a tag leaves in the text: the values of its kept attributes, a space for a block tag, its line breaks
    (kept per tag: a letter's tags repeat, "<p>", "</td>"…; half of html_text's time, issue #16)."""
    values = " ".join(v.strip("\"'") for v in _KEPT_ATTRIBUTES.findall(tag))
    newlines = "\n" * tag.count("\n")
    if name.lower() in _INLINE_TAGS and not values and not newlines:
        return ""
    return f" {values} {newlines}" if values else f" {newlines}"


def _pypdf_text(data: bytes, name: str) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError
    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise RecouvrementError(f"cannot read this PDF: {exc}", file=name) from exc


def pdf_text(data: bytes, name: str) -> str:
    """The text layer of a PDF: pdftotext -layout (poppler) when installed, else pypdf.

    pdftotext keeps words whole and table rows on one line; pypdf is the pure-Python fallback.
    """
    if not shutil.which("pdftotext"):
        return _pypdf_text(data, name)
    done = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", "-", "-"], input=data,
                          capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", errors="replace").strip() or "not a readable PDF"
        raise RecouvrementError(f"cannot read this PDF: {reason}", file=name)
    return done.stdout.decode("utf-8", errors="replace")


def _header_text(raw: object) -> str:
    """A header as a reader sees it: encoded words decoded, folded lines joined."""
    return _decoded_header(raw) if isinstance(raw, str) else _decoded_any(raw)


@functools.lru_cache(maxsize=4096)
def _decoded_header(raw: str) -> str:
    """_header_text of a header's text, kept: a night's messages share their sender, Reply-To and subject."""
    return _decoded_any(raw)


def _decoded_any(raw: object) -> str:
    try:
        return str(make_header(decode_header(str(raw)))).replace("\r\n", "").replace("\n", "")
    except (HeaderParseError, LookupError, UnicodeError):
        return str(raw)


def _part_text(part: Message | _Part, name: str, scanned: frozenset[str] = frozenset()) -> str:
    """The text of one MIME part, whatever its transfer encoding (base64, quoted-printable); blank lines for a text
    part that is one of `scanned` (see email_text)."""
    content_type = part.get_content_type()
    suffix = Path(part.get_filename() or "").suffix.lower()
    raw = part.get_payload(decode=True)
    payload = raw if isinstance(raw, bytes) else b""    # None for a multipart part
    if scanned and content_type.startswith("text/"):
        decoded = _decode_charset(payload, part)
        if _same_text(decoded) in scanned:
            return "\n" * decoded.count("\n")
    if content_type == "text/html" or suffix in (".html", ".htm"):
        return html_text(_decode_charset(payload, part))
    if content_type == "application/pdf" or suffix == ".pdf":
        return pdf_text(payload, f"{name} (attachment)")
    if content_type == "application/json" or suffix == ".json":
        return json_text(_decode_charset(payload, part))
    if content_type.startswith("text/") or suffix in (".txt", ".csv", ".tsv"):
        return _decode_charset(payload, part)
    return ""  # images and other binaries: only their file name is scanned


def _decode_charset(payload: bytes, part: Message | _Part) -> str:
    charset = part.get_content_charset()
    if charset:
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            pass
    return _decode(payload)


def _same_text(text: str) -> str:
    """A text as e-mail transport leaves it: line ends as LF, no trailing line break."""
    return text.replace("\r\n", "\n").rstrip("\n")


def email_text(data: bytes, name: str, scanned: Iterable[str] = ()) -> str:
    """Headers, then every part of an e-mail with its attachment file name.

    Parsed with the compat32 policy, headers decoded (RFC 2047) one by one: the default policy builds a structured
    object of every header of every part, two thirds of the time of a letter's e-mail (issue #16), for the same text.
    A message in the plain shape our e-mail writer gives (channels/email.py: ASCII, CRLF, quoted boundaries, simple
    part headers) is read by `_plain_message`, to the same text, in a fifth of the time; anything else by the
    standard parser. `scanned`: texts the caller has just scanned, found clean, and put in the message as its parts
    (a letter's text and HTML): a text part that decodes to exactly one of them is left blank (its lines kept), so
    that the detectors do not read it twice; any other part, and every header, is read as always.
    """
    clean = frozenset(_same_text(text) for text in scanned)
    plain = _plain_message(data)
    if plain is not None:
        headers, parts = plain
        walked: Iterable[tuple[int, _Part | Message | None]] = parts
    else:
        message = email.message_from_bytes(data, policy=policy.compat32)
        headers = {header: message[header] for header in _EMAIL_HEADERS}
        walked = ((number, None if part.is_multipart() else part)
                  for number, part in enumerate(message.walk(), start=1))
    lines = [f"{header}: {_header_text(headers[header])}" for header in _EMAIL_HEADERS if headers.get(header)]
    for number, leaf in walked:
        if leaf is None:
            continue
        filename = leaf.get_filename()
        lines.append(f"--- part {number} {leaf.get_content_type()}"
                     + (f" {filename}" if filename else "") + " ---")
        lines.append(_part_text(leaf, name, clean))
    return "\n".join(lines)


# ---------------------------------------------------------------- the plain shape of our own e-mails

_HEADER_LINE = re.compile(r"([!-9;-~]+):[ \t]*(.*)")
_MULTIPART = re.compile(r'multipart/([a-z]+); boundary="([A-Za-z0-9\'()+_,./:=?-]{1,70})"')
_LEAF_TYPE = re.compile(r'([a-z]+/[a-z0-9.+-]+)(?:; charset="?([a-z0-9_-]+)"?)?')
_DISPOSITION = re.compile(r'(?:inline|attachment); filename="([^"\\;*%]*)"')
_LEAF_HEADERS = frozenset(("content-type", "content-transfer-encoding", "content-disposition", "content-id"))
_ENCODINGS = frozenset(("quoted-printable", "base64", "7bit", "8bit"))


class _Part:
    """One leaf of a plain message: what `_part_text` reads of an email.message.Message, as compat32 gives it."""

    def __init__(self, content_type: str, charset: str | None, encoding: str, filename: str | None,
                 body: bytes) -> None:
        self.content_type, self.charset, self.encoding, self.filename, self.body = \
            content_type, charset, encoding, filename, body

    def get_content_type(self) -> str:
        return self.content_type

    def get_content_charset(self) -> str | None:
        return self.charset

    def get_filename(self) -> str | None:
        return self.filename

    def get_payload(self, decode: bool = True) -> bytes:
        """The body decoded as Message.get_payload(decode=True) decodes it (base64 by the stdlib itself: its
        padding repairs)."""
        if self.encoding == "quoted-printable":
            return quopri.decodestring(self.body)
        if self.encoding == "base64":
            message = Message()
            message["Content-Transfer-Encoding"] = "base64"
            message.set_payload(self.body.decode("ascii"))
            decoded = message.get_payload(decode=True)
            return decoded if isinstance(decoded, bytes) else b""
        return self.body


def _plain_message(data: bytes) -> tuple[dict[str, str], list[tuple[int, _Part | None]]] | None:
    """The top headers (the first of each name, unfolded as compat32 keeps them) and the parts in the order of
    Message.walk() (None for a multipart), numbered from 1; None when the message is not in the plain shape (the
    standard parser reads it then). tests/test_scanner.py holds both readings equal."""
    if not data.isascii() or data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        return None
    text = data.decode("ascii")
    head, separator, body = text.partition("\r\n\r\n")
    if not separator:
        return None
    headers = _header_block(head)
    if headers is None:
        return None
    parts: list[tuple[int, _Part | None]] = []
    if not _walk(headers, body, parts, top=True):
        return None
    first: dict[str, str] = {}
    for name, value in headers:
        known = _EMAIL_HEADERS_LOWER.get(name.lower())
        if known is not None and known not in first:
            first[known] = value
    return first, parts


_EMAIL_HEADERS_LOWER = {header.lower(): header for header in _EMAIL_HEADERS}


def _header_block(head: str) -> list[tuple[str, str]] | None:
    """(name, value) of each header in order, folded lines joined as compat32 joins them; None when a line is not a
    header."""
    headers: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if not headers:
                return None
            name, value = headers[-1]
            headers[-1] = (name, f"{value}\r\n{line}")
            continue
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        headers.append((match[1], match[2]))
    return headers


def _walk(headers: list[tuple[str, str]], body: str, parts: list[tuple[int, _Part | None]], top: bool = False) -> bool:
    """This part (and, for a multipart, its parts, depth first) appended to `parts`; False when not plain."""
    found: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in found and key in _LEAF_HEADERS:
            return False              # the same header twice: the standard parser decides which counts
        if key in _LEAF_HEADERS:
            found[key] = value
        elif not top:
            return False
    number = len(parts) + 1
    content_type = found.get("content-type")
    if content_type is None:
        return False
    multipart = _MULTIPART.fullmatch(content_type)
    if multipart:
        parts.append((number, None))
        return _walk_multipart(multipart[2], body, parts)
    leaf = _LEAF_TYPE.fullmatch(content_type.lower())
    encoding = found.get("content-transfer-encoding", "7bit").lower()
    if leaf is None or leaf[1].startswith(("multipart/", "message/")) or encoding not in _ENCODINGS:
        return False
    filename = None
    if "content-disposition" in found:
        disposition = _DISPOSITION.fullmatch(found["content-disposition"])
        if disposition is None:
            return False
        filename = disposition[1].strip() or None
    parts.append((number, _Part(leaf[1], leaf[2], encoding, filename, body.encode("ascii"))))
    return True


def _walk_multipart(boundary: str, body: str, parts: list[tuple[int, _Part | None]]) -> bool:
    """The parts between `--boundary` lines: no preamble, nothing after the closing line but its line end."""
    opening, closing = f"--{boundary}\r\n", f"\r\n--{boundary}--"
    if not body.startswith(opening):
        return False
    end = body.find(closing)
    if end < 0 or body[end + len(closing):] not in ("", "\r\n") or body.count(f"--{boundary}") != \
            body.count(f"\r\n--{boundary}\r\n") + 2:
        return False
    for chunk in body[len(opening):end].split(f"\r\n--{boundary}\r\n"):
        head, separator, content = chunk.partition("\r\n\r\n")
        if not separator:
            return False
        headers = _header_block(head)
        if headers is None or not _walk(headers, content, parts):
            return False
    return True


def extract_text(path: Path) -> str:
    """The text a reader of the file would see, by file type (anything unknown read as text)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            text = pdf_text(path.read_bytes(), str(path))
        elif suffix == ".eml":
            text = email_text(path.read_bytes(), str(path))
        elif suffix in (".html", ".htm", ".xhtml"):
            text = html_text(_decode(path.read_bytes()))
        elif suffix == ".json":
            text = json_text(_decode(path.read_bytes()))
        else:
            text = _decode(path.read_bytes())
    except OSError as exc:
        raise RecouvrementError(f"cannot read this file: {exc.strerror or exc}", file=str(path)) from exc
    # Compatibility forms (ligatures "ﬁ", non-breaking spaces) fold to what the detectors expect.
    return unicodedata.normalize("NFKC", text)


# ---------------------------------------------------------------- scanning

def known_texts(settings) -> tuple[str, ...]:
    """What the clinic configured about itself, known not to be a leak wherever it is printed:
    the creditor's name, address, city, e-mail and the e-mail sender ("Cabinet dentaire du Parc")."""
    creditor, smtp = getattr(settings, "creditor", None), getattr(settings, "smtp", None)
    texts = [getattr(creditor, f, "") for f in ("name", "address", "city", "email")]
    texts.append(getattr(smtp, "sender", "") or "")
    return tuple(t for t in texts if t)


def csv_identifiers(text: str) -> frozenset[str]:
    """The identifiers a CSV carries in its key columns (core.privacy.KEY_COLUMNS: patient_id, invoice_number…),
    as its writer (render.csvfile) knew them when it scanned the file: "P10" there is a patient, not a diagnosis."""
    first = text.split("\n", 1)[0]
    delimiter = max(";,\t|", key=first.count)
    try:
        rows = csv.reader(io.StringIO(text), delimiter=delimiter)
        header = next(rows, [])
        keys = [index for index, column in enumerate(header) if column.strip() in KEY_COLUMNS]
        if not keys:
            return frozenset()
        return frozenset(token for row in rows for index in keys if index < len(row)
                         for token in id_tokens(row[index]))
    except csv.Error:  # not a CSV after all (a cell over the field size limit): no identifiers, all scanned
        return frozenset()


def scan_file(path: Path, lexicon: Lexicon | None = None, known: tuple[str, ...] = ()) -> list[Finding]:
    """The findings of one file; its name is scanned too (line 0): a file name leaves with the file.
    A CSV's key columns are identifiers, as when it was written (see `csv_identifiers`)."""
    name = [Finding(0, f.kind, f.excerpt) for f in scan_text(Path(path).name, lexicon)]
    text = extract_text(path)
    ids = csv_identifiers(text) if Path(path).suffix.lower() in (".csv", ".tsv") else frozenset()
    return name + scan_text(text, lexicon, known, ids)


def _files(path: Path) -> list[Path]:
    """A file itself, or the files under a folder in sorted order, hidden ones (.git) left out."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    raise RecouvrementError("fichier ou dossier introuvable", file=str(path))


def scan_paths(paths: Iterable[Path], lexicon: Lexicon | None = None,
               known: tuple[str, ...] = ()) -> list[tuple[Path, Finding]]:
    """Every finding under the given files and folders, file by file in sorted order.
    `known`: the clinic's own identity (see `known_texts`), as when the files were written."""
    seen: set[Path] = set()
    found: list[tuple[Path, Finding]] = []
    for given in paths:
        for path in _files(Path(given)):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            found.extend((path, finding) for finding in scan_file(path, lexicon, known))
    return found


def format_finding(path: Path, finding: Finding) -> str:
    """One finding as a compiler would print it: "file:line: kind: excerpt" (the file's name masked)."""
    shown = Path(path).with_name(redact(Path(path).name, file_name=True))
    return f"{shown}:{finding.line}: {finding.kind}: {finding.excerpt}"


def ensure_clean(text: str, name: str, lexicon: Lexicon | None = None, known: tuple[str, ...] = (),
                 ids: frozenset[str] | set[str] = frozenset()) -> None:
    """Refuse a document that holds medical data: raise PrivacyLeak naming it, the kinds and lines of
    what was found (never the text) and how to proceed. `known`: see `known_texts`; `ids`: the identifiers
    the document carries as keys (see core.privacy.scan_text)."""
    refuse_findings(scan_text(text, lexicon, known, ids), name)


def refuse_findings(findings: Iterable[Finding], name: str) -> None:
    """ensure_clean's refusal, for a document scanned in parts (a print batch laid out chunk by chunk)."""
    found = list(findings)
    if found:
        raise PrivacyLeak(leak_message(found), file=name, line=found[0].line, findings=tuple(found))


def leak_message(findings: list[Finding], where: str = "") -> str:
    """Why a document was refused, in French, for a clinic person: what it looks like, where, what to do."""
    labels = [f"à {label}" for label in dict.fromkeys(kind_label(f.kind) for f in findings)]
    kinds = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " et " + labels[-1]
    lines = sorted({f.line for f in findings})
    shown = ", ".join(str(n) for n in lines[:SHOWN_IN_ERROR])
    more = len(lines) - SHOWN_IN_ERROR
    count = f"{len(findings)} constat{'s' if len(findings) > 1 else ''}"
    return (f"document refusé, rien n'a été écrit ni envoyé : il contient ce qui ressemble {kinds}"
            f"{where} ({count}, ligne{'s' if len(lines) > 1 else ''} {shown}"
            + (f" et {more} autre{'s' if more > 1 else ''}" if more > 0 else "") + f") ; {HOW_TO_PROCEED}")
