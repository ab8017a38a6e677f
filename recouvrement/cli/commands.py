"""Imports every `*_commands` module of this package so that its commands register on `cli`."""

import importlib
import pkgutil

import recouvrement.cli as package

for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.endswith("_commands")):
    importlib.import_module(f"recouvrement.cli.{module}")
