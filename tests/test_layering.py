"""The package's layering (issue #12), held statically from the source, as import-linter's `layers`
and `independence` contracts would hold it: every import, SQL string and SQL call is read with `ast`,
nothing is imported.

Layers, top to bottom; a module imports its own layer or lower ones, never a higher one; the
components of a layer marked independent never import each other:

- `cli` — the command line; it starts the web app and the scheduler;
- `web`, `scheduler` (independent) — the other entry points;
- `app` — use cases: read through the store, call the core, write through the store, render;
  a use case never imports another use case, except the composers (`COMPOSERS`);
- `audit` — the audit log and its seal (keys, checkpoints, file digests), written through the store
  (`db.audit`); the use cases and the CLI record and verify through it;
- `channels` — delivery (post, e-mail, SMS) of what `render` made, so it may import `render`;
- `db` (the store, the only package speaking SQL), `importers`, `render` (independent) — the adapters;
- `config`, `scanner` — shared services that read files but decide nothing: the settings, the privacy
  scan of written files (`render` scans each CSV it writes); under the adapters, over the core;
- `core` — pure decisions: imports only itself and the leaves;
- `rules`, `money`, `memory`, `errors` and the package root — the leaves: the rules' types (and loader; the
  core takes `Rules` objects, it never calls the loader), integer cents, the garbage collector's pause of the
  big batches, the error types.

`ALLOWED` listed the violations issue #12 was removing; it is empty now and may only stay so.
`test_every_allowed_violation_is_still_a_violation` fails as soon as an entry is no longer true:
whoever removes a violation deletes its line.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recouvrement"
ROOT = "recouvrement"

# Top to bottom: (components, independent).
LAYERS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("cli",), False),
    (("web", "scheduler"), True),
    (("app",), False),
    (("audit",), False),
    (("channels",), False),
    (("db", "importers", "render"), True),
    (("config", "scanner"), False),
    (("core",), False),
    (("rules", "money", "memory", "errors", ""), False),     # "": the package root, recouvrement/__init__.py
)
STORE = "db"
COMPOSERS = {
    "recouvrement.app.nightly",     # the nightly run: import, reconcile, remind, agency, report
    "recouvrement.app.demo",        # the demo: nightly runs and a plan, on the sample clinic
    "recouvrement.app.reminders",   # the day's reminders, then their outboxes sent (remind, nightly)
}
SKIPPED = ("db/migrations/",)       # alembic's scripts, run by alembic only

# SQL in a string: a statement's keywords, upper case as the house writes them (French prose never
# carries them). Docstrings are not read.
SQL_WORDS = re.compile(r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
                       r"|\b(?:CREATE|ALTER|DROP)\s+(?:TABLE|INDEX|VIEW)\b|\bWHERE\b|\bJOIN\b|\bGROUP\s+BY\b"
                       r"|\bORDER\s+BY\b|\bON\s+CONFLICT\b")
# SQLAlchemy's SQL makers and engine-level calls, as imported from sqlalchemy or sqlmodel.
SQL_CALLS = {"text", "select", "insert", "update", "delete", "inspect", "create_engine", "literal_column",
             "table", "column"}
SQL_METHODS = {"exec_driver_sql"}


class Allowed(NamedTuple):
    module: str
    what: str       # "imports <module>", "SQL string" or "calls <name>()"
    why: str


# The violations issue #12 listed are all removed; the list stays, empty, for the record. Never add a line.
ALLOWED: tuple[Allowed, ...] = ()


@dataclass(frozen=True)
class Violation:
    module: str
    what: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.what} ({self.rule})"


def module_name(path: Path, package: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        if not any(skip in path.relative_to(package).as_posix() for skip in SKIPPED):
            found[module_name(path, package)] = path
    return found


def component(module: str) -> str:
    """`recouvrement.app.plans` → `app`; `recouvrement.money` → `money`; `recouvrement` → ``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(module: str) -> int | None:
    for index, (components, _) in enumerate(LAYERS):
        if component(module) in components:
            return index
    return None


def imported(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> Iterator[tuple[str, int]]:
    """The project's modules an import names (`from recouvrement.app import users` names the module
    `recouvrement.app.users`; `from recouvrement.app.plans import x` names `recouvrement.app.plans`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == ROOT:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != ROOT:
                continue
            targets = {f"{source}.{alias.name}" for alias in node.names}
            for target in sorted({target if target in known else source for target in targets}):
                yield target, node.lineno


def docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def sql_uses(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """SQL strings (f-strings read with their holes) and calls of SQLAlchemy's SQL makers."""
    skip = docstrings(tree)
    makers: dict[str, str] = {}          # local name -> sqlalchemy name
    modules_: set[str] = set()           # `import sqlalchemy as sa`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("sqlalchemy", "sqlmodel"):
            makers.update({alias.asname or alias.name: alias.name for alias in node.names if alias.name in SQL_CALLS})
        elif isinstance(node, ast.Import):
            modules_.update(alias.asname or alias.name for alias in node.names
                            if alias.name.split(".")[0] in ("sqlalchemy", "sqlmodel"))
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else " x " for part in node.values)
            if SQL_WORDS.search(text):
                yield "SQL string", node.lineno
            skip.update(id(part) for part in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if SQL_WORDS.search(node.value):
                yield "SQL string", node.lineno
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in makers:
                yield f"calls {makers[func.id]}()", node.lineno
            elif isinstance(func, ast.Attribute):
                if func.attr in SQL_METHODS or (func.attr in SQL_CALLS and isinstance(func.value, ast.Name)
                                                and func.value.id in modules_):
                    yield f"calls {func.attr}()", node.lineno


def violations(package: Path = PACKAGE) -> list[Violation]:
    found = modules(package)
    known = set(found)
    out = []
    for module, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        here = layer_of(module)
        for target, line in imported(tree, module, path.name == "__init__.py", known):
            there = layer_of(target)
            if here is None or there is None or component(target) == component(module):
                pass
            elif there < here:
                out.append(Violation(module, f"imports {target}", line, "a lower layer imports a higher one"))
            elif there == here and LAYERS[here][1]:
                out.append(Violation(module, f"imports {target}", line, "independent components"))
            if (component(module) == component(target) == "app" and module not in COMPOSERS
                    and target not in (module, f"{ROOT}.app")):
                out.append(Violation(module, f"imports {target}", line, "a use case imports another use case"))
        if component(module) != STORE:
            out.extend(Violation(module, what, line, "SQL outside the store") for what, line in sql_uses(tree))
    return out


def unexplained(found: list[Violation]) -> list[str]:
    allowed = {(entry.module, entry.what) for entry in ALLOWED}
    return [str(v) for v in found if (v.module, v.what) not in allowed]


@pytest.fixture(scope="module")
def found() -> list[Violation]:
    return violations()


def test_every_module_of_the_package_sits_in_a_layer():
    assert [module for module in modules() if layer_of(module) is None] == []


def test_no_module_imports_a_higher_layer_or_an_independent_sibling(found):
    assert unexplained([v for v in found if v.rule in ("a lower layer imports a higher one",
                                                       "independent components")]) == []


def test_a_use_case_never_imports_another_use_case_except_the_composers(found):
    assert unexplained([v for v in found if v.rule == "a use case imports another use case"]) == []


def test_no_sql_outside_the_store(found):
    assert unexplained([v for v in found if v.rule == "SQL outside the store"]) == []


def test_every_allowed_violation_is_still_a_violation(found):
    """The list only shrinks: an entry that is no longer true is deleted by whoever fixed it."""
    still = {(v.module, v.what) for v in found}
    assert [entry for entry in ALLOWED if (entry.module, entry.what) not in still] == []


def test_each_allowed_violation_is_listed_once_and_says_why():
    keys = [(entry.module, entry.what) for entry in ALLOWED]
    assert len(keys) == len(set(keys))
    assert [entry for entry in ALLOWED if len(entry.why.strip()) < 10] == []


def test_the_checks_find_an_upward_import_a_use_case_import_and_sql(tmp_path):
    package = tmp_path / ROOT
    for folder in ("core", "app", "db"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "core" / "pure.py").write_text("from recouvrement.app import plans\n")
    (package / "app" / "plans.py").write_text(
        "from sqlalchemy import text as sql\nfrom .agency import x\n"
        "def f(conn, who):\n"
        "    '''SELECT a FROM docstring WHERE ignored'''\n"
        "    conn.execute(sql(f'SELECT a FROM t WHERE b = {who}'))\n"
        "    return 'SELECT id ' 'FROM invoice'\n")
    (package / "app" / "agency.py").write_text("x = 'Le patient a payé ; rien à faire'\n")
    (package / "db" / "reads.py").write_text("from sqlalchemy import text\nQ = text('SELECT 1 FROM t')\n")
    assert sorted(str(v) for v in violations(package)) == [
        "recouvrement.app.plans:2: imports recouvrement.app.agency (a use case imports another use case)",
        "recouvrement.app.plans:5: SQL string (SQL outside the store)",
        "recouvrement.app.plans:5: calls text() (SQL outside the store)",
        "recouvrement.app.plans:6: SQL string (SQL outside the store)",
        "recouvrement.core.pure:1: imports recouvrement.app.plans (a lower layer imports a higher one)",
    ]
