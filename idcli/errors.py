"""Errors that idcli reports to people, with the exit code each one maps to.

Domain code raises these; only the CLI edge turns them into one printed message and an exit
code. A traceback is shown only when ``IDCLI_DEBUG=1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .option_words import SURFACE_PARTS, words

# Stable exit codes: scripts depend on them, so they are part of the public contract.
EXIT_OK = 0
EXIT_JOBS_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_OUTPUT_BUSY = 3
EXIT_MODEL_UNAVAILABLE = 4
EXIT_OUTPUT_UNUSABLE = 5  # the output folder cannot be written (read-only, a file in the way, disk full)
EXIT_CHECK_FAILED = 6  # idcli verify found an image that fails; idcli reproduce made a different image
EXIT_INTERNAL_ERROR = 70  # a bug in idcli (sysexits' EX_SOFTWARE): never 1, which means failed jobs
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_HANGUP = 129  # SIGHUP: the terminal closed (128 + 1, as a shell reports a process the signal ended)


class IdcliError(Exception):
    """Base class for every error idcli reports to a person.

    ``file``, ``line``, ``column`` and ``field`` say where the problem is when that is known (they
    are ``None`` otherwise); ``--json`` commands copy them into their ``error`` object.

    A message that names arguments is given in parts, text and ``option_words.Option``s: it reads
    ``device='cuda': …`` from Python and ``--device cuda: …`` from the command line (option_words.py).
    """

    exit_code = EXIT_INVALID_INPUT
    file: str | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __init__(self, *args: object, file: str | os.PathLike[str] | None = None, line: int | None = None,
                 column: int | None = None, field: str | None = None) -> None:
        if any(isinstance(arg, SURFACE_PARTS) for arg in args) or (
                len(args) > 1 and all(isinstance(arg, str) for arg in args)):
            self.parts = args  # one message in parts, read in the words of the surface in use by __str__
            args = (words(args),)
        super().__init__(*args)
        # Instance attributes only when given, so subclasses that set them another way keep theirs; they
        # travel with the exception's __dict__ when it is pickled (a Ray worker's error).
        for name, value in (("file", None if file is None else os.fspath(file)), ("line", line),
                            ("column", column), ("field", field)):
            if value is not None:
                setattr(self, name, value)

    def __str__(self) -> str:
        parts = self.__dict__.get("parts")
        return words(parts) if parts else super().__str__()

    @property
    def message_parts(self) -> tuple[Any, ...]:
        """The message as given, text and ``Option``s: what a message built on this one goes on with."""
        return self.__dict__.get("parts") or (super().__str__(),)

    def render(self) -> str:
        return str(self)

    def as_json(self) -> dict[str, object]:
        """The ``error`` object of the ``--json`` contract (docs/file-formats.md)."""
        return {"type": type(self).__name__, "message": self.render(), "file": self.file, "line": self.line,
                "column": self.column, "field": self.field, "hint": None, "problems": []}


def printable(text: str) -> str:
    """``text`` with newlines, tabs and other control characters escaped (``\\n``).

    Messages quote values from the document; a key or id such as "abc\\n" printed raw split one
    problem over two lines, which also made the CLI miscount the problems.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def terminal_safe(text: str) -> str:
    """``text`` as idcli prints it for a person: its lines kept, every other control character escaped as
    ``printable`` escapes it. Names read from files received from outside (a sidecar's paths, a folder's file names,
    an identity pack's) reach the terminal; raw, an escape sequence in one retitled, cleared or recoloured it."""
    return "\n".join("\t".join(printable(part) for part in line.split("\t")) for line in text.split("\n"))


@dataclass
class Problem:
    """One thing wrong with an input document."""

    message: str
    path: str = ""  # field path such as ``shots[3].size``; empty for the whole document
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    hint: str = ""  # what is allowed, or a did-you-mean

    def as_json(self, source: str) -> dict[str, object]:
        return {"file": source, "line": self.line, "column": self.column, "field": self.path or None,
                "message": self.message, "hint": self.hint or None}

    def format(self, source: str) -> str:
        where = source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: "
        if self.path:
            text += f"{self.path}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        # One problem, one line, whatever the document's keys and values hold.
        return printable(text)


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """``problems`` as a reader meets them going down the file: by line, then column; those without a line (the
    document as a whole, a character's selfies that could not be checked) last, each group in the order found.
    An artist fixes from the top; the checks run field by field, so a later line's problem was often found first."""
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))


@dataclass
class ShotListError(IdcliError):
    """A shot list (or another input document) that cannot be used; nothing is rendered."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    # The shot list as far as it parsed (a LoadedShotList whose shots with a type error are None), so a
    # caller can add the checks that read files (plates) for the rest: `validate` lists every problem.
    parsed: Any = field(default=None, compare=False, repr=False)
    exit_code = EXIT_INVALID_INPUT

    # Enough to fix a document in one pass without drowning the terminal.
    MAX_SHOWN = 20

    def __post_init__(self) -> None:
        # Every place that prints or emits them (stderr, --json's problems and first place) reads them in file order.
        self.problems = in_file_order(self.problems)
        super().__init__(self.render())

    def as_json(self) -> dict[str, object]:
        # The first problem's place is the error's place; every problem is in ``problems``.
        first = self.problems[0].as_json(self.source) if self.problems else {"file": self.source}
        return {"type": type(self).__name__, "message": self.render(), "file": self.source,
                "line": first.get("line"), "column": first.get("column"), "field": first.get("field"),
                "hint": first.get("hint"), "problems": [p.as_json(self.source) for p in self.problems]}

    def render(self) -> str:
        lines = [p.format(self.source) for p in self.problems[: self.MAX_SHOWN]]
        hidden = len(self.problems) - self.MAX_SHOWN
        if hidden > 0:
            lines.append(f"... and {hidden} more problem(s)")
        return "\n".join(lines)


class InputError(IdcliError):
    """A bad command-line argument or input file outside a shot list."""

    exit_code = EXIT_INVALID_INPUT


class ProjectMismatchError(InputError):
    """The output folder holds another project's renders (``--force`` renders into it anyway)."""

    exit_code = EXIT_INVALID_INPUT


class OutputBusyError(IdcliError):
    """Another idcli run holds the output folder."""

    exit_code = EXIT_OUTPUT_BUSY


class OutputError(IdcliError):
    """The output folder cannot be used (read-only, a file in the way, disk full)."""

    exit_code = EXIT_OUTPUT_UNUSABLE


class ModelUnavailableError(IdcliError):
    """A model that cannot be found or loaded; says where to get it.

    ``missing``: true when the model is not on this machine at all (not in its Hugging Face cache): a Ray worker's
    refusal then also says that each node needs the model (executors/ray_worker.py); false for one that is there but
    does not load (a damaged weight file), whose own words say the fix."""

    exit_code = EXIT_MODEL_UNAVAILABLE
    missing = False


class ExecutorUnavailableError(IdcliError):
    """``--executor ray``: Ray is not installed, the cluster cannot be reached, or no worker could start.

    ``report``: when it stopped a run that had begun rendering (the cluster went away), the run's
    ``RenderReport`` so far, as :class:`Interrupted` has it; else None.
    """

    exit_code = EXIT_MODEL_UNAVAILABLE
    report: Any = None


class Interrupted(IdcliError):
    """The run was stopped by a signal; writes in flight were finished or removed.

    ``report``: when rendering had begun, the run's ``RenderReport`` so far (the jobs committed, skipped or
    failed before the signal); None when the signal came while planning.
    """

    exit_code = EXIT_INTERRUPTED  # each instance carries its signal's: 130 (SIGINT), 143 (SIGTERM) or 129 (SIGHUP)

    def __init__(self, signal_name: str, exit_code: int,
                 kept: str = "completed images are kept, rerun to resume") -> None:
        super().__init__(f"interrupted by {signal_name}; {kept}")
        self.exit_code = exit_code
        self.report: Any = None
