"""How ``--help`` names an argument that takes several values.

Typer 0.29 writes such an argument with its Python annotation as its type (``SELFIE <list[Path]>``). Commands
declared with ``cls=ListArgumentsCommand`` write it as the name with ``...`` and the type of one value
(``SELFIE... <path>``), the way a single argument already reads (``file <path>``).
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperCommand

_LIST_TYPE = re.compile(r" <list\[(?P<element>[^\]]+)\]>$")


def _plain_name(name: str) -> str:
    """``SELFIE <list[Path]>`` -> ``SELFIE... <path>``; any other name unchanged."""
    return _LIST_TYPE.sub(lambda m: f"... <{m['element'].lower()}>", name)


class ListArgumentsCommand(TyperCommand):
    """A Typer command whose ``--help`` names list arguments plainly (see the module's docstring)."""

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
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)
