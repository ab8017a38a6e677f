"""Importers: one module per file format, all with the same small API (see base.py)."""
