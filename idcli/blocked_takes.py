"""Takes a render could not plan because a character they name cannot be used (its selfie shows no face, a file
unreadable): what the run-start line records of them (``blocked_record``) and how the morning after reads it back
(``read_blocked``), the files' sha256 telling a selfie replaced since. Rendering again blocks them again until such a
file is fixed, so idcli/unfinished.py counts them apart from takes a render can finish.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .shell_words import shell_path

__all__ = ["BlockedTakes", "blocked_record", "blocked_words", "read_blocked"]


@dataclass(frozen=True)
class BlockedTakes:
    """Takes the last render could not plan: a character they name cannot be used (its selfie shows no face, a
    file unreadable). Rendering again blocks them again until the file is fixed (run-start's ``blocked``)."""

    character: str
    takes: tuple[str, ...]  # SHOT_tN of each such take with no image, in shot-list order
    problem: dict[str, Any]  # errors.Problem.as_json: {file, line, column, field, message, hint}
    # the file changed since that render (a selfie replaced, else the shot list edited) once every character
    # blocking them had one changed: a render may now make them
    changed_since: str | None = None
    # other unusable characters the same takes name (the plan blocks a take by its first): each must be fixed too
    also: tuple[BlockedTakes, ...] = ()
    replaced: str | None = None  # this character's own file, replaced since that render

    def as_dict(self) -> dict[str, Any]:
        return {"character": self.character, "takes": list(self.takes), **self.problem,
                "changed_since": self.changed_since,
                "also": [{"character": other.character, **other.problem, "changed_since": other.replaced}
                         for other in self.also]}

    def words(self) -> str:
        """What blocks the takes: each character's words, less the ones whose file was replaced while another's
        still blocks them."""
        named = (self, *self.also)
        if self.changed_since is None:
            named = tuple(one for one in named if one.replaced is None) or named
        return "; ".join(one.own_words() for one in named)

    def own_words(self) -> str:
        """``character 'ana' cannot be used: … — replace characters.ana.selfies[0] (shots.yaml:9:15)``."""
        field, line, column = self.problem.get("field"), self.problem.get("line"), self.problem.get("column")
        where = Path(str(self.problem.get("file") or "")).name
        where += f":{line}" if type(line) is int else ""
        where += f":{column}" if type(line) is int and type(column) is int else ""
        # a selfie or an identity pack is replaced; another field (the character itself) is fixed
        named = field.split(".")[-1].split("[")[0] if isinstance(field, str) else ""
        fix = (f"replace {field}" if named in ("selfies", "identity") else
               f"fix {field}" if isinstance(field, str) and field else f"fix character '{self.character}'")
        return f"{self.problem.get('message')} — {fix}" + (f" ({where})" if where else "")

    def again(self) -> str:
        """``a render before that blocks them again``: what the note and the render's summary say while unfixed."""
        return f"a render before that blocks {'it' if len(self.takes) == 1 else 'them'} again"


def blocked_words(blocked: tuple[BlockedTakes, ...]) -> str:
    """``; 2 blocked: character 'ana' cannot be used: … — replace characters.ana.selfies[0] (shots.yaml:9:15); a
    render before that blocks them again``, each character's takes: what the render's summary line adds, in the
    morning note's words ("" when none)."""
    return "".join(f"; {len(one.takes)} blocked: {one.words()}; {one.again()}" for one in blocked)


def blocked_record(blocked: list[Any], source: str, loaded: Any = None,
                   problems: list[Any] | None = None) -> list[dict[str, Any]]:
    """The run-start line's ``blocked``: per unusable character, the takes it blocked (plan.BlockedJob), its
    problem (errors.Problem.as_json) and its files' sha256 (``inputs``: its selfies or identity pack, as the
    shot list ``loaded`` names them), for the morning after's note: such takes are not work a render can finish
    until one of those files is replaced. ``also``: the other unusable characters (``problems``, the plan's) the
    same takes name: the plan blocks a take by its first, and replacing that file alone blocked it again."""
    from .shot_prompts import shot_characters

    unusable = {field.split(".")[1].split("[")[0]: problem for problem in problems or ()
                if isinstance(field := getattr(problem, "path", None), str) and field.startswith("characters.")}
    shots = {shot.id: shot for shot in loaded.shotlist.shots} if loaded is not None and unusable else {}
    by_character: dict[str, dict[str, Any]] = {}
    for job in blocked:
        entry = by_character.setdefault(job.character, {"character": job.character, "takes": [],
                                                        "problem": job.problem.as_json(source),
                                                        "inputs": _inputs(loaded, job.character), "also": []})
        entry["takes"].append(f"{job.shot_id}_t{job.take}")
        shot = shots.get(job.shot_id)
        for other in shot_characters(shot) if shot is not None else ():
            if other != job.character and other in unusable and all(a["character"] != other for a in entry["also"]):
                entry["also"].append({"character": other, "problem": unusable[other].as_json(source),
                                      "inputs": _inputs(loaded, other)})
    return list(by_character.values())


def _inputs(loaded: Any, name: str) -> list[list[str]]:
    """``[[absolute path, sha256], …]`` of a character's selfies (or identity pack) that are files now."""
    from .hashing import sha256_file

    character = loaded.shotlist.characters.get(name) if loaded is not None else None
    written = (character.selfies or ([character.identity] if character.identity else [])) if character else []
    found = []
    for value in written:
        path = loaded.resolve_path(value).absolute()
        if _small_file(path):
            try:
                found.append([str(path), sha256_file(path)])
            except OSError:  # unreadable: the very reason it is unusable; "" until it can be read
                found.append([str(path), ""])
    return found


_MOST_INPUT_BYTES = 256 * 2**20  # a journal received from outside may name any file: a selfie is far smaller


def _small_file(path: Path) -> bool:
    try:
        info = path.stat()
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size <= _MOST_INPUT_BYTES


def _replaced(inputs: Any) -> str | None:
    """The first of a blocked entry's ``inputs`` (:func:`blocked_record`) whose bytes differ now, or that is gone,
    as a path from the current folder; None: all as that render read them (or none recorded: an earlier journal)."""
    from .hashing import sha256_file

    for pair in inputs[:32] if isinstance(inputs, list) else []:  # a character has 32 selfies at most
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)):
            continue
        path = Path(pair[0])
        if not path.is_absolute():
            continue
        try:
            same = _small_file(path) and sha256_file(path) == pair[1]
        except OSError:
            same = pair[1] == ""  # unreadable then and now
        if not same:
            return shell_path(path)
    return None


def read_blocked(recorded: Any, missing: set[str], changed: str | None = None) -> tuple[BlockedTakes, ...]:
    """The run-start line's ``blocked`` (:func:`blocked_record`) as read back: entries of the wrong shape are left
    out (a received folder's journal), and so are takes that have an image now. ``changed``: the shot list, when
    it was edited since; an entry whose file was replaced since names that file instead."""
    found = []
    for entry in recorded if isinstance(recorded, list) else []:
        takes = entry.get("takes") if isinstance(entry, dict) else None
        kept = tuple(t for t in takes if isinstance(t, str) and t in missing) if isinstance(takes, list) else ()
        first = _character(entry, kept) if kept else None
        if first is None:
            continue
        also = entry.get("also")
        named = (first, *(one for other in (also[:32] if isinstance(also, list) else [])
                           if (one := _character(other, ())) is not None))
        replaced = [one.replaced for one in named]
        # blocked until every character's file changed; an edited shot list may have fixed any of them
        since = changed or (replaced[0] if all(replaced) else None)
        found.append(BlockedTakes(first.character, kept, first.problem, since, named[1:], first.replaced))
    return tuple(found)


def _character(entry: Any, takes: tuple[str, ...]) -> BlockedTakes | None:
    """One character of a ``blocked`` entry as read back (None: of the wrong shape, or no take of it missing)."""
    from .errors import printable

    if not isinstance(entry, dict) or not isinstance(entry.get("character"), str):
        return None
    problem = entry.get("problem")
    problem = problem if isinstance(problem, dict) else {}
    if not isinstance(problem.get("message"), str):
        return None
    shown = {key: printable(value[:300]) if isinstance(value, str) else value if type(value) is int else None
             for key, value in problem.items() if key in ("file", "line", "column", "field", "message", "hint")}
    replaced = _replaced(entry.get("inputs"))
    return BlockedTakes(printable(entry["character"][:100]), takes, shown,
                        replaced=printable(replaced) if replaced else None)
