"""Imports every command module so that they register on the `cli` group."""

from recouvrement.cli import db_commands, import_commands, reconcile_commands, demo_commands  # noqa: F401
