"""No module reaches into another's private names: a name another module needs is part of that module's interface,
so it has a public name (docs/architecture.md, "Module interfaces").

An AST walk over idcli/, tests/ and tools/ finds every use of an underscored name of *another* module: imported
(``from .output import _emit``), read or patched through the module (``run._default_engine``,
``monkeypatch.setattr(safeio, "_writer_tags", ...)``, or a dotted string naming one, as ``mock.patch`` takes).
Underscored attributes of objects (an engine's ``_denoise``) and of third-party modules are not judged here.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Uses of another module's private name that tests or tools may keep, each with its reason. Aim: empty. idcli/
# itself has no such list.
ALLOWED: dict[tuple[str, str], str] = {}

ATTRIBUTE_CALLS = {"setattr", "delattr", "getattr", "hasattr"}
DOTTED_PRIVATE = re.compile(r"idcli(?:\.\w+)*\._(?!_)\w+")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: Path) -> str:
    """``idcli/cli/output.py`` → ``idcli.cli.output``; a test or tool by its file name (tests/ is on the path)."""
    relative = path.relative_to(ROOT)
    if relative.parts[0] in ("tests", "tools"):
        return path.stem
    parts = list(relative.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    files = [*sorted((ROOT / "idcli").rglob("*.py")), *sorted((ROOT / "tests").glob("*.py")),
             *sorted((ROOT / "tools").glob("*.py"))]
    return {_module_name(path): path for path in files}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def private_uses(source: str, module: str, is_package: bool, modules: set[str]) -> list[tuple[int, str, str]]:
    """``(line, owner module, name)`` for each use in ``source`` (the text of ``module``) of a private name of
    another module of ``modules``."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    bound: dict[str, str] = {}  # a local name → the module it is bound to
    uses: list[tuple[int, str, str]] = []

    def owner_of(expression: ast.expr) -> str | None:
        dotted = _dotted(expression)
        if dotted is None:
            return None
        first, _, rest = dotted.partition(".")
        if first not in bound:  # a local name, an object: not a module
            return None
        name = bound[first] + (f".{rest}" if rest else "")
        return name if name in modules and name != module else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound.setdefault(alias.name.partition(".")[0], alias.name.partition(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source_module = ".".join(base + ([node.module] if node.module else []))
            else:
                source_module = node.module or ""
            for alias in node.names:
                if f"{source_module}.{alias.name}" in modules:  # a module imported from its package
                    bound[alias.asname or alias.name] = f"{source_module}.{alias.name}"
                elif _private(alias.name) and source_module in modules and source_module != module:
                    uses.append((node.lineno, source_module, alias.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = owner_of(node.value)
            if owner is not None:
                uses.append((node.lineno, owner, node.attr))
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            name = node.args[1]
            if called in ATTRIBUTE_CALLS and isinstance(name, ast.Constant) and isinstance(name.value, str) \
                    and _private(name.value):
                owner = owner_of(node.args[0])
                if owner is not None:
                    uses.append((node.lineno, owner, name.value))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for found in DOTTED_PRIVATE.findall(node.value):
                owner, _, name = found.rpartition(".")
                if owner in modules and owner != module:
                    uses.append((node.lineno, owner, name))
    return sorted(set(uses))


@functools.cache
def _all_uses() -> dict[str, list[tuple[int, str, str]]]:
    sources = _sources()
    modules = set(sources)
    return {str(path.relative_to(ROOT)): found for module, path in sources.items()
            if (found := private_uses(path.read_text("utf-8"), module, path.name == "__init__.py", modules))}


def test_no_idcli_module_uses_another_modules_private_names() -> None:
    found = [f"{file}:{line}: {name} of {owner}" for file, uses in _all_uses().items() if file.startswith("idcli/")
             for line, owner, name in uses]
    assert found == [], "give these names a public name in the module that owns them:\n" + "\n".join(found)


def test_tests_and_tools_use_only_public_names_or_the_allowed_ones() -> None:
    uses = {(file, f"{owner}.{name}"): line for file, found in _all_uses().items() if not file.startswith("idcli/")
            for line, owner, name in found}
    unlisted = [f"{file}:{line}: {name}" for (file, name), line in sorted(uses.items()) if (file, name) not in ALLOWED]
    assert unlisted == [], "use the module's public surface, or make the name public:\n" + "\n".join(unlisted)
    assert sorted(set(ALLOWED) - set(uses)) == []  # an entry no longer needed leaves the list


def test_the_walk_finds_each_kind_of_use() -> None:
    """The check can fail: each way of reaching into another module's private name is found, its own are not."""
    modules = {"idcli", "idcli.cli", "idcli.cli.output", "idcli.cli.options", "idcli.run", "idcli.safeio", "helper"}
    source = """\
import idcli.run
import idcli.safeio as safeio
from . import output
from .output import _emit, emit
from .options import _own_helper as helper
from helper import _made
from ..run import default_engine as _engine

def _mine(): ...

_mine()
output._guarded(print)
idcli.run.PRIVATE
monkeypatch.setattr(safeio, "_writer_tags", {})
monkeypatch.setattr("idcli.run.PRIVATE", None)
getattr(output, "_note")
""".replace("PRIVATE", "_default_engine")  # written so, the walk over this file does not find it here
    found = private_uses(source, "idcli.cli.options", False, modules)
    assert found == [(4, "idcli.cli.output", "_emit"), (6, "helper", "_made"), (12, "idcli.cli.output", "_guarded"),
                     (13, "idcli.run", "_default_engine"), (14, "idcli.safeio", "_writer_tags"),
                     (15, "idcli.run", "_default_engine"), (16, "idcli.cli.output", "_note")]
