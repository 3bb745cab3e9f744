"""How ``--help`` names the type of a value, as idcli's help always read.

Typer 0.29 writes an argument that takes several values with its Python annotation as its type (``SELFIE
<list[Path]>``), and a path parameter declared with a ``parser=`` (every one: ``options.given_path`` refuses an
empty path) by its annotation's class name (``OUT <Path>``, ``--otio <Path>``; typer/core.py ``_bare_type``)
instead of ``<path>``. ``PlainHelpCommand`` writes them ``SELFIE... <path>`` and ``OUT <path>``; ``PlainHelpTyper``
makes it every command's class, so a command added later reads the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand

_LIST_TYPE = re.compile(r" <list\[(?P<element>[^\]]+)\]>$")
_PATH_TYPE = re.compile(r" <Path>$")
_Function = TypeVar("_Function", bound=Callable[..., Any])


def _plain_name(name: str) -> str:
    """``SELFIE <list[Path]>`` -> ``SELFIE... <path>``, ``--otio <Path>`` -> ``--otio <path>``; any other name
    unchanged."""
    name = _LIST_TYPE.sub(lambda m: f"... <{m['element'].lower()}>", name)
    return _PATH_TYPE.sub(" <path>", name)


class PlainHelpCommand(TyperCommand):
    """A Typer command whose ``--help`` names list arguments and paths plainly (see the module's docstring)."""

    # typer.Context is the Context subclass typer hands its commands; the base class names typer's vendored click's.
    def format_options(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        # Typer's own layout (typer.core._typer_format_options): Arguments, then Options.
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_plain_name(record[0]), record[1]))
            elif param.param_type_name == "option":
                options.append((_plain_name(record[0]), record[1]))
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


class PlainHelpTyper(typer.Typer):
    """A Typer app whose commands are ``PlainHelpCommand``s unless they name a class of their own."""

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
                **settings: Any) -> Callable[[_Function], _Function]:
        return super().command(name, cls=cls or PlainHelpCommand, **settings)
