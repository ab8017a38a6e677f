"""The command line imports a command's module when that command is asked for (click's lazy loading): a command
starts without the libraries of the others (pdf, web, importers, alembic), `--help` still lists every command with
its one-line help, and each group's map of lazy modules names exactly the modules registering its commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click

from recouvrement.cli import LazyGroup, cli

ENTRY = "from recouvrement.cli import main; main()"


def command_line(*args: str, before: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("RECOUVREMENT_CONFIG", None)
    return subprocess.run([sys.executable, "-c", before + ENTRY, *args], capture_output=True, text=True, env=env)


def defining_modules(command: click.Command) -> set[str]:
    """The modules of recouvrement.cli that register `command` and its subcommands, except the subcommands its own
    lazy map names (they are imported when asked for)."""
    modules = {command.callback.__module__.rsplit(".", 1)[1]}
    if isinstance(command, click.Group):
        own = command.lazy if isinstance(command, LazyGroup) else {}
        for name, sub in command.commands.items():
            if name not in own:
                modules |= defining_modules(sub)
    return modules


def lazy_groups(group: click.Group):
    if isinstance(group, LazyGroup):
        yield group
    for sub in group.commands.values():
        if isinstance(sub, click.Group):
            yield from lazy_groups(sub)


def test_each_lazy_map_names_exactly_the_modules_registering_its_commands():
    from recouvrement.cli import commands  # noqa: F401  (every module imported: every command registered)
    groups = list(lazy_groups(cli))
    assert {g.name for g in groups} >= {"cli", "import", "export"}
    for group in groups:
        own = set() if group is cli else {group.callback.__module__.rsplit(".", 1)[1]}
        unmapped = {name for name in group.commands if name not in group.lazy}
        assert {name for name in unmapped if defining_modules(group.commands[name]) != own} == set(), group.name
        assert set(group.lazy) <= set(group.commands), group.name
        wrong = {name: (modules, defining_modules(group.commands[name])) for name, modules in group.lazy.items()
                 if set(modules) != defining_modules(group.commands[name])}
        assert wrong == {}, group.name


def test_the_help_lists_every_command_with_its_line_as_when_all_were_imported():
    lazy = command_line("--help")
    eager = command_line("--help", before="import recouvrement.cli.commands; ")
    assert lazy.returncode == eager.returncode == 0
    assert lazy.stdout == eager.stdout
    from recouvrement.cli import commands  # noqa: F401
    listed = lazy.stdout.split("Commandes:", 1)[1]
    for name, command in cli.commands.items():
        line = next(line for line in listed.splitlines() if line.split()[:1] == [name])
        assert " ".join(command.get_short_help_str(limit=500).split()[:3]) in line
    for group in ("import", "export"):
        shown = command_line(group, "--help").stdout.split("Commandes:", 1)[1]
        assert {line.split()[0] for line in shown.splitlines() if line.strip()} == set(cli.commands[group].commands)


def loaded_by(*args: str) -> set[str]:
    """The modules imported once the command line has handled `args` (a --help: parsed, nothing run)."""
    shown = command_line(*args, before="import atexit, json, sys; atexit.register(lambda: print(json.dumps("
                                        "sorted(sys.modules)), file=sys.stderr)); ")
    assert shown.returncode == 0, shown.stderr
    return set(json.loads(shown.stderr.strip().splitlines()[-1]))


def test_a_command_imports_only_what_it_runs():
    remind = loaded_by("remind", "--help")
    assert "recouvrement.app.remind" in remind
    assert not {m for m in remind if m.split(".")[0] in ("alembic", "sqlmodel", "fastapi", "weasyprint", "typst")}
    assert not remind & {"recouvrement.app.nightly", "recouvrement.app.imports", "recouvrement.app.agency",
                         "recouvrement.db.models", "recouvrement.cli.import_commands"}
    imports = loaded_by("import", "invoices", "--help")
    assert not imports & {"recouvrement.app.agency", "recouvrement.cli.agency_commands", "recouvrement.app.remind",
                          "recouvrement.app.reconcile"}
    every = loaded_by("--help")
    assert {f"recouvrement.cli.{m}" for modules in cli.lazy.values() for m in modules} <= every


def test_an_unknown_command_is_refused_as_before():
    shown = command_line("relancer")
    assert shown.returncode == 2
    assert "relancer" in shown.stderr and "Traceback" not in shown.stderr


def test_a_command_is_imported_with_the_garbage_collector_paused_then_running_again(monkeypatch):
    # A command's libraries are a few hundred thousand objects, none garbage: the collector is paused while they are
    # imported (memory.no_cycle_collection), and runs again once the command is found.
    import gc
    import importlib

    seen = []
    real = importlib.import_module

    def watching(name, *args):
        seen.append((name, gc.isenabled()))
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", watching)
    assert gc.isenabled()
    command = cli.get_command(click.Context(cli), "remind")
    assert command is not None and command.name == "remind"
    assert seen and all(not enabled for _, enabled in seen) and gc.isenabled()
