"""Letters from a whitelist view: HTML and text (letters), PDF and the day's print batch (pdf)."""

from recouvrement.render.letters import render_html, render_text
from recouvrement.render.views import KINDS, Creditor, LetterLine, LetterView, Recipient

__all__ = ["KINDS", "Creditor", "LetterLine", "LetterView", "Recipient", "render_html", "render_text"]
