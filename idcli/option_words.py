"""How an error names an argument: as the Python caller wrote it, or as the command line's flag.

The library is called two ways, ``idcli.render(..., device="cuda")`` and ``idcli render --device cuda``, and an
error about an argument should name it the way it was given: ``device='cuda': no CUDA device is available here
(use device='cpu')`` to a pipeline, ``--device cuda: no CUDA device is available here (use --device cpu)`` on the
command line. A message is written once, its arguments as ``Option`` parts::

    raise InputError(Option("device", device), ": no CUDA device is available here (use ", Option("device", "cpu"),
                     ")")

and each surface reads it in its own words: Python's by default, the flags' inside ``options_as_flags()``, which
the CLI edge (cli/output.py ``guarded``) holds around every command. A note (a plain string a report carries) is
worded when it is made, with ``words()``; where more than an argument's name differs (a command to run, several
flags in a row), ``EachSurface`` holds both texts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

_NO_VALUE = object()
_MAX_SHOWN = 240  # a value as a message shows it: a long path whole, a pasted page not
_AS_FLAGS: ContextVar[bool] = ContextVar("idcli_options_as_flags", default=False)


@dataclass(frozen=True)
class Option:
    """An argument named in a message: ``name`` as Python spells it, ``value`` as given (none: the argument alone),
    ``flag`` the command line's (default ``--`` and the name hyphenated), ``negated`` its flag for False (a bool's)."""

    name: str
    value: Any = _NO_VALUE
    flag: str | None = None
    negated: str | None = None

    def as_python(self) -> str:
        if self.value is _NO_VALUE:
            return self.name
        text = repr(os.fspath(self.value) if isinstance(self.value, os.PathLike) else self.value)  # one line
        return f"{self.name}={text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + '...'}"

    def as_flag(self) -> str:
        flag = self.flag or "--" + self.name.replace("_", "-")
        if self.value is _NO_VALUE or self.value is True:
            return flag
        if self.value is False:
            return self.negated or flag
        values = self.value if isinstance(self.value, list | tuple) else [self.value]  # a list: the flag repeated
        return " ".join(f"{flag} {_as_typed(value)}" for value in values)


@dataclass(frozen=True)
class EachSurface:
    """A part of a message written for each surface: ``python`` to a Python caller, ``flags`` on the command line
    (``reproduce('frame.png', delivered_from=OUT)`` there, ``idcli reproduce frame.png --from OUT`` here)."""

    python: str
    flags: str

    def as_python(self) -> str:
        return self.python

    def as_flag(self) -> str:
        return self.flags


def joined(*options: Option) -> EachSurface:
    """Several arguments given together: ``force=True, only='SHOT'`` to Python, ``--force --only SHOT`` typed."""
    return EachSurface(", ".join(o.as_python() for o in options), " ".join(o.as_flag() for o in options))


SURFACE_PARTS = (Option, EachSurface)  # the parts a message reads differently on each surface


def _as_typed(value: Any) -> str:
    """A value as it is typed after its flag: a path as a path, a float as short as it reads (``--fps 300``)."""
    from .errors import printable

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value == "":
        return '""'  # as it was typed (`--preset ""`, an unset variable), not a flag that seems to lack its value
    return f"{value:g}" if isinstance(value, float) else printable(str(value))


def words(parts: tuple[Any, ...]) -> str:
    """The message ``parts`` (text and ``Option``s) in the words of the surface in use (module docstring)."""
    as_flags = _AS_FLAGS.get()
    return "".join((part.as_flag() if as_flags else part.as_python()) if isinstance(part, SURFACE_PARTS)
                   else str(part) for part in parts)


@contextlib.contextmanager
def options_as_flags() -> Iterator[None]:
    """Inside it, messages name their arguments as the command line's flags (the CLI's commands run in it)."""
    token = _AS_FLAGS.set(True)
    try:
        yield
    finally:
        _AS_FLAGS.reset(token)
