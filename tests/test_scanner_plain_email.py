"""An e-mail in the plain shape our writer gives is read without the standard parser, to the very text the standard
parser gives (issue #16: the parser was a third of a letter's e-mail time); any other message, and any mutation of
ours, is read the same by one path or the other."""

from __future__ import annotations

import dataclasses
import email
from email import policy

import pytest
from hypothesis import given, settings, strategies as st

from recouvrement.channels.email import email_bytes, email_html
from recouvrement.render.letters import render_html, render_text
from recouvrement.render.views import KINDS, specimen
from recouvrement.scanner import _EMAIL_HEADERS, _header_text, _part_text, _plain_message, _same_text, email_text

SENDER = "Centre de santé des Lilas <facturation@cds-lilas.example>"


def parsed_text(data: bytes, name: str, scanned=()) -> str:
    """email_text as it was: the standard parser (compat32) for every message."""
    clean = frozenset(_same_text(text) for text in scanned)
    message = email.message_from_bytes(data, policy=policy.compat32)
    lines = [f"{header}: {_header_text(message[header])}" for header in _EMAIL_HEADERS if message[header]]
    for number, part in enumerate(message.walk(), start=1):
        if part.is_multipart():
            continue
        filename = part.get_filename()
        lines.append(f"--- part {number} {part.get_content_type()}" + (f" {filename}" if filename else "") + " ---")
        lines.append(_part_text(part, name, clean))
    return "\n".join(lines)


def outcome(read, *args, **kwargs):
    """What a reading gives: its text, or the error it raised (a part that cannot be read refuses the message)."""
    try:
        return read(*args, **kwargs)
    except Exception as error:      # noqa: BLE001 - compared, not swallowed
        return (type(error).__name__, str(error))


def letter(view):
    html, text = render_html(view), render_text(view)
    return email_bytes(view, SENDER, html, text), (text, email_html(view, html))


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_letter_s_e_mail_is_read_without_the_parser_to_the_parser_s_text(kind):
    for view in (specimen(kind, invoices=3, guarantor=True), specimen(kind, also_due=1)):
        data, scanned = letter(view)
        assert _plain_message(data) is not None
        assert email_text(data, "l.eml") == parsed_text(data, "l.eml")
        assert email_text(data, "l.eml", scanned=scanned) == parsed_text(data, "l.eml", scanned=scanned)


@settings(max_examples=120, deadline=None)
@given(name=st.text(max_size=80), creditor=st.text(min_size=1, max_size=60), extra=st.text(max_size=200))
def test_any_names_and_text_in_an_e_mail_read_to_the_parser_s_text(name, creditor, extra):
    view = specimen("relance_2", invoices=2)
    view = dataclasses.replace(view, recipient=dataclasses.replace(view.recipient, name=name),
                               creditor=dataclasses.replace(view.creditor, name=creditor))
    html, text = render_html(view), render_text(view) + extra
    try:
        data = email_bytes(view, SENDER, html, text)
    except Exception:          # a name the writer refuses: nothing to read
        return
    for scanned in ((), (render_text(view), email_html(view, html))):
        assert email_text(data, "l.eml", scanned=scanned) == parsed_text(data, "l.eml", scanned=scanned)


def mutations(data: bytes) -> list[bytes]:
    """Ways a message may differ from our writer's: each must read as the standard parser reads it."""
    head, _, body = data.partition(b"\r\n\r\n")
    html_at = data.index(b"Content-Type: text/html")
    png_at = data.index(b"Content-Type: image/png")
    return [
        head + b"\r\nX-Note: Suivi de chimioth=C3=A9rapie\r\n\r\n" + body,            # another header
        head + b"\r\nTo: second@example.org\r\n\r\n" + body,                              # a header twice
        head + b"\r\nSubject: =?utf-8?q?Cardiologie?=\r\n\r\n" + body,
        head.replace(b"Subject: ", b"Subject:\r\n  ") + b"\r\n\r\n" + body,             # folded
        head + b"\r\n\r\nA preamble: psychiatrie\r\n" + body,                             # a preamble
        data + b"An epilogue: psychiatrie\r\n",                                           # an epilogue
        data.replace(b"\r\n", b"\n"),                                                     # bare line feeds
        data[:html_at] + b"Content-Type: text/html; charset=\"utf-8\"\r\n" + data[html_at:],  # Content-Type twice
        data[:png_at] + b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=\"compte-rendu-irm.pdf\"\r\n\r\nJVBERi0xLjQKJeLjz9MK\r\n--=_rel_recouvrement\r\n"
        + data[png_at:],                                                                  # another part
        data[:png_at] + b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"x.html\"\r\n\r\n"
        b"<b>psy</b>chiatrie\r\n--=_rel_recouvrement\r\n" + data[png_at:],             # a part named .html
        data.replace(b"qr-virement.png", b"ordonnance.png"),                              # another file name
        data.replace(b'filename="qr-virement.png"', b"filename*=utf-8''ordonnance.png"),
        data.replace(b"Content-Type: image/png", b"Content-Type: IMAGE/PNG; name=\"irm.png\""),
        data.replace(b"quoted-printable", b"Quoted-Printable"),
        data.replace(b"\r\n--=_alt_recouvrement--", b"\r\n--=_alt_recouvrement--  "),
        data.replace(b"--=_rel_recouvrement\r\nContent-Type: image", b"--=_rel_recouvrement \r\nContent-Type: image"),
        data.replace(b"=_alt_recouvrement", b"=_alt"),                                    # a boundary inside another
        data.replace(b"Centre de sant", "Centre de santé".encode("utf-8"), 1),            # 8-bit in a header
        data[:len(data) // 2],                                                            # cut short
        b"",
        b"Subject: Suivi de chimioth\xc3\xa9rapie\r\n\r\nbody",
        b"From nobody Mon Jan  1 00:00:00 2026\r\n" + data,
    ]


def test_every_mutation_of_an_e_mail_reads_as_the_parser_reads_it():
    data, scanned = letter(specimen("mise_en_demeure", invoices=2))
    for number, mutated in enumerate(mutations(data)):
        for given_scanned in ((), scanned):
            assert outcome(email_text, mutated, "l.eml", scanned=given_scanned) == \
                outcome(parsed_text, mutated, "l.eml", scanned=given_scanned), number


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_bytes_spliced_into_an_e_mail_read_as_the_parser_reads_them(data):
    message, scanned = letter(specimen("relance_1", invoices=2))
    at = data.draw(st.integers(0, len(message)))
    cut = data.draw(st.integers(0, 40))
    spliced = data.draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"--=_rel_recouvrement\r\n", b"\n", b"=", b": ",
                                         b"--=_alt_recouvrement--\r\n", b"Content-Type: text/plain\r\n",
                                         b"psychiatrie", b"\xc3\xa9", b" "]))
    mutated = message[:at] + spliced + message[at + cut:]
    assert outcome(email_text, mutated, "l.eml", scanned=scanned) == \
        outcome(parsed_text, mutated, "l.eml", scanned=scanned)
