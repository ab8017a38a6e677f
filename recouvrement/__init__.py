"""recouvrement: medical receivables and ethical debt collection for French healthcare providers."""

__version__ = "0.1.0"
