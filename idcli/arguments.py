"""Checking the arguments of the public library functions (``idcli.render``, ``plan_shotlist``, ...).

The command line parses its options into the right types; a pipeline calling the library does not,
and a wrong type used to hang (``batch_size=0`` looped forever), be misread (``only="a010"`` was
iterated letter by letter) or silently mean something else (``batch_size="4"`` meant auto). Each
check here raises ``InputError`` (exit code 2) naming the argument, what it got and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import InputError

if TYPE_CHECKING:
    from .shotlist import LoadedShotList

# One shot id or several, as ``render(only=...)`` (check_only) and ``deliver(shots=...)`` (parse_shots) accept them:
# the annotations say what the checks allow, so a pipeline's type checker refuses no call that runs.
ShotIds: TypeAlias = str | list[str] | tuple[str, ...] | set[str] | frozenset[str]

MAX_BATCH_SIZE = 1024
DTYPES = ("float32", "float16", "bfloat16")
# What an argument given as "" is, most likely: os.environ.get("VAR", "") of a variable nobody set.
EMPTY_VALUE = "an empty value (an unset environment variable?)"


def shown(value: Any) -> str:
    """A refused argument's value as an error message shows it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name}={shown(value)}: give True or False")
    return value


def check_batch_size(value: Any, name: str = "batch_size") -> int | str:
    """An int 1..1024 or ``"auto"``; nothing else (no strings of digits, no floats, no bools)."""
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        hint = " (an int, not a string)" if isinstance(value, str) and value.strip().isdigit() else ""
        raise InputError(f"{name}={shown(value)}: give an int 1..{MAX_BATCH_SIZE} or 'auto'{hint}")
    if not 1 <= value <= MAX_BATCH_SIZE:
        raise InputError(f"{name}={value}: give an int 1..{MAX_BATCH_SIZE} or 'auto'")
    return value


def check_only(value: Any) -> list[str] | None:
    """``None`` (every shot), one shot id as a string, or a list/tuple/set of shot ids."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]  # one shot id, not a sequence of one-letter ids
    if isinstance(value, (list, tuple, set, frozenset)):
        ids = list(value)
        bad = [v for v in ids if not isinstance(v, str)]
        if bad:
            raise InputError(f"only={shown(value)}: shot ids are strings, got {shown(bad[0])}")
        if not ids:
            raise InputError("only=[] selects no shot; pass None to render every shot")
        return ids
    raise InputError(f"only={shown(value)}: give a shot id, a list of shot ids, or None")


def check_optional_str(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"{name}={shown(value)}: give a string or None")
    return value


def check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name}={shown(value)}: give a string")
    return value


def check_dtype(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in (*DTYPES, "auto"):
        raise InputError(f"dtype={shown(value)}: allowed: None, 'auto', {', '.join(map(repr, DTYPES))}")
    return value


def check_path_or_none(name: str, value: Any) -> str | None:
    """A folder or file given as a string or path (``face_models``); returned as a string.

    ``""`` is refused, as the command refuses ``--face-models ""``: it is what ``os.environ.get("VAR", "")`` of an
    unset variable gives, and read as None it silently meant the default (``Path("")`` is the current folder)."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        if not os.fspath(value):
            raise InputError(f"{name}='': {EMPTY_VALUE}; give a path ('.' for the current folder) or None",
                             field=name)
        return os.fspath(value)
    raise InputError(f"{name}={shown(value)}: give a path (str or pathlib.Path) or None")


def check_path(name: str, value: Any) -> Path:
    """A file given as a string or path (``reproduce``'s image)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise InputError(f"{name}={shown(value)}: give a path (str or pathlib.Path)")
    return Path(value)


def check_out_dir(value: Any, name: str = "out_dir") -> Path:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise InputError(f"{name}={shown(value)}: give the output folder as a str or pathlib.Path")
    return Path(value)


def check_out_dir_is_folder(root: Path, error: type[InputError] = InputError) -> None:
    """The one check of every command that reads an output folder: a file given by mistake (the shot list for
    its folder, an easy slip) is named as a file, not as a folder that does not exist; a file inside an output folder
    (the storyboard page, ``OUT/review/index.html``) names that folder."""
    if root.is_dir():
        return
    raise error(f"{root} is a file, not an output folder{inside_output_folder(root)}" if root.exists()
                else f"{root}: no such output folder", file=root)


def inside_output_folder(path: Path) -> str:
    """For an error about ``path``, which holds no renders: ``: it is inside the output folder OUT; give OUT itself``
    when a folder one or two levels above it is an output folder (a render wrote its journal or manifest in its
    ``.idcli``: a lock alone, which any command taking the folder leaves, says nothing), as the storyboard page's
    ``OUT/review``, its ``index.html`` or a shot's folder are; else nothing. Told to render into it, the artist given
    ``OUT/review`` would have rendered into the page's folder."""
    here = Path(os.path.abspath(path))  # "." and ".." spelt out, so that "idcli review ." inside review/ is told too
    for parent in (here.parent, here.parent.parent):
        if parent != here and any((parent / ".idcli" / name).is_file() for name in ("journal.jsonl",
                                                                                    "shotlist.jsonl")):
            named = parent if path.is_absolute() else Path(os.path.relpath(parent))  # as the path was given
            return f": it is inside the output folder {named}; give {named} itself"
    return ""


def check_not_inside_output_folder(root: Path, error: type[InputError] = InputError) -> None:
    """Refuse, before anything is written there, a folder with no records of its own inside an output folder (the
    storyboard page's ``OUT/review``, a shot's folder): a command that takes the folder's lock first left
    ``OUT/review/.idcli/lock`` behind, and one that lists found nothing and said so as if OUT held nothing."""
    inside = "" if (root / ".idcli").is_dir() else inside_output_folder(root)
    if inside:
        raise error(f"{root}: not an output folder{inside}", file=root)


def check_callable(name: str, value: Any) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise InputError(f"{name}={shown(value)}: give a callable or None")
    return value


def check_progress(value: Any) -> Any:
    missing = [m for m in ("start", "advance", "note", "stop") if not callable(getattr(value, m, None))]
    if value is not None and missing:
        raise InputError(f"progress={shown(value)}: needs the methods start, advance, note and stop "
                         f"(missing: {', '.join(missing)})")
    return value


def check_qa_thresholds(value: Any, name: str = "qa_thresholds") -> Any:
    """None (the defaults) or a ``QAThresholds``: a bare number would switch QA off image by image."""
    from .review.qa import QAThresholds

    if value is not None and not isinstance(value, QAThresholds):
        raise InputError(f"{name}={shown(value)}: give idcli.review.qa.QAThresholds(low_identity, "
                         f"leakage) or None", field=name)
    return value


def check_takes(value: Any) -> dict[str, int] | None:
    """None or {shot id: take count} (``--retake-flagged``'s raised take counts)."""
    from .shotlist import MAX_TAKES

    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and type(v) is int and 1 <= v <= MAX_TAKES for k, v in value.items()):
        raise InputError(f"takes={shown(value)}: give {{shot id: take count 1..{MAX_TAKES}}} or None")
    return value


def as_loaded_shotlist(value: Any, name: str = "loaded") -> LoadedShotList:
    """A ``LoadedShotList``, or a path (str or pathlib.Path) to a shot-list file, which is loaded."""
    from .shotlist import LoadedShotList, load_shotlist

    if isinstance(value, LoadedShotList):
        return value
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return load_shotlist(value)
    raise InputError(f"{name}={shown(value)}: give a shot list (idcli.load_shotlist(...)) or the path to one")
