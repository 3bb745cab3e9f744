"""What identity QA flagged in one image, per character, in words a supervisor reads in a terminal.

A group shot's ``qa`` record holds the whole cosine matrix; its ``flags`` say only *that* something failed.
These lines say *who*: the character with no face, the character whose face is not theirs enough, which
face looks like a character it was not matched to, and, in a plate image (whose boxes say where each character was
asked for), two characters whose faces stand in each other's boxes. They are read from the record alone (``idcli
qa``, no model), so they say exactly what the sidecar says: ``findings`` in a supervisor's words (``idcli qa``),
``in_plain_words`` in a director's (the storyboard page, where no one need know what a cosine is).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..shell_words import shell_path
from .qa import PLATE_QA_VERSION

if TYPE_CHECKING:
    from .runs import Take


@dataclass(frozen=True)
class _Failure:
    """One thing QA found wrong in an image, before it is put into words: ``kind`` is ``no_face`` (``who``: the
    cast; ``plate``: a plate image; ``unusable``: faces were found but none could be compared), ``missing`` (``who``:
    the character with no face), ``low`` (``who``: the character, ``value``: its face's cosine, ``limit``: the
    threshold; ``face``: its index), ``leak`` (``face``: its index, ``who``: the character it was matched to or empty,
    ``like``: whom it looks like, twins included, ``value``: the leakage), ``swap`` (a plate image: ``who``: the
    characters of a ring, two or more, each one's face in the next one's box and the last one's in the first's:
    A and B who swapped places, or A, B, C with A's face in B's box, B's in C's and C's in A's; ``face``: the faces in
    their boxes, in the same order; ``value``: the cosine of each one's face, in the next one's box, to it) or
    ``unusable`` (``face``: its index)."""

    kind: str
    who: tuple[str, ...] = ()
    like: tuple[str, ...] = ()
    face: Any = None
    value: Any = None
    limit: Any = None
    plate: bool = False
    unusable: bool = False


def _failures(qa: Mapping[str, Any]) -> list[_Failure]:
    """What a QA record (``review/qa.py: assess``) flagged, per character and face; none when nothing is flagged."""
    flags = _field(qa, "flags", list)
    if not flags:
        return []
    # The storyboard page reads sidecars edited by hand too: a field of the wrong type says nothing, never stops it.
    characters = _field(qa, "characters", Mapping)
    faces = _field(qa, "faces", list)
    # A face whose embedding is degenerate (review/qa.py: usable_embedding) was compared with no one: said, as its
    # character may be the one missing. Numbered as the record's faces are, a damaged entry counted.
    unusable = [_Failure("unusable", face=i) for i, face in enumerate(faces)
                if isinstance(face, Mapping) and face.get("unusable") and not face.get("plate_face")]
    if "no_face" in flags:
        cast = tuple(str(name) for name in _field(qa, "cast", list) or characters)
        # A plate image may hold the plate's own people: no_face there means none in the characters' boxes.
        return [_Failure("no_face", cast, plate=qa.get("version") == PLATE_QA_VERSION, unusable=bool(unusable)),
                *unusable]
    found = [_Failure("missing", (str(name),)) for name, entry in characters.items()
             if isinstance(entry, Mapping) and entry.get("face") is None]
    if "low_identity" in flags:
        low = _field(qa, "thresholds", Mapping).get("low_identity")
        # Every matched face, a character's second place included (named twice: a mirror). The record's cosines
        # are rounded to 4 places and assess compared them unrounded: half a place of slack.
        lows = [_Failure("low", (str(face["character"]),), face=i, value=face["cosine"], limit=low)
                for i, face in enumerate(faces)
                if isinstance(face, Mapping) and face.get("character") and isinstance(face.get("cosine"), int | float)
                and isinstance(low, int | float) and face["cosine"] < low + 0.5e-4]
    else:
        lows = []
    pair = qa.get("leakage_pair")
    leaks = []
    if "leakage" in flags and isinstance(pair, Mapping) and isinstance(qa.get("leakage"), int | float):
        index = pair.get("face")
        face = faces[index] if isinstance(index, int) and 0 <= index < len(faces) else {}
        matched = face.get("character") if isinstance(face, Mapping) else None
        # Characters who share one face (identity/twins.py): the face looks as much like each of them.
        like = (str(pair.get("character")), *(str(name) for name in _field(pair, "twins", list)))
        leaks.append(_Failure("leak", (str(matched),) if matched else (), like, index, qa.get("leakage")))
    swaps = _swaps(qa, faces, lows) if qa.get("version") == PLATE_QA_VERSION and lows and leaks else []
    # A swap (or a ring) says what its low-identity lines and a leak between its faces would: one line for it. The
    # leak of a face in a ring is the ring's when it looks like the character the ring says it is (or that one's twin).
    said = {face for swap in swaps for face in swap.face}
    return [*found, *swaps, *(f for f in lows if f.face not in said),
            *(f for f in leaks if not (f.face in said and f.who and _whose_face(swaps, f.who[0]) in f.like)),
            *unusable]


def _swaps(qa: Mapping[str, Any], faces: list[Any], lows: list[_Failure]) -> list[_Failure]:
    """Rings of characters whose faces stand in each other's places in a plate image (the only images whose record
    says where each character was asked for: a plate face matched to a character lies in its recorded box): pairs
    first (A's face in B's box and B's in A's), then rings of three or more among the faces left (A's in B's, B's in
    C's, C's in A's). A face belongs in a ring when it is low identity in its own box and looks like the character of
    the box the ring gives it to at least as much as the leakage threshold and more than its own. Pairs in cast order,
    each face in one ring at most."""
    limit = _field(qa, "thresholds", Mapping).get("leakage")
    if not isinstance(limit, int | float):
        return []
    low: dict[int, str] = {}  # face index -> the character whose box it is in (one face per character: a plate's)
    for failure in lows:
        if failure.who[0] not in low.values():
            low[failure.face] = failure.who[0]
    order = {str(name): i for i, name in enumerate(_field(qa, "cast", list))}
    ranked = sorted(low, key=lambda face: (order.get(low[face], len(order)), face))

    def looks_like(face: int, name: str) -> float | None:
        """The cosine of ``face`` to ``name`` when it could be that character's face in another's box, else None."""
        cross, own = _field(faces[face], "cosines", Mapping).get(name), faces[face].get("cosine")
        # A sidecar edited by hand may say Infinity (Python's JSON reads it): no likeness, and no weight for _rings.
        if isinstance(cross, int | float) and isinstance(own, int | float) and math.isfinite(cross) \
                and low[face] != name and cross >= limit - 0.5e-4 and cross > own:
            return float(cross)
        return None

    swaps: list[_Failure] = []
    used: set[int] = set()
    for first, second in itertools.combinations(ranked, 2):
        a, b = low[first], low[second]
        if first in used or second in used:
            continue
        crossed = (looks_like(second, a), looks_like(first, b))  # the face in b's box to a, the face in a's box to b
        if crossed[0] is not None and crossed[1] is not None:
            swaps.append(_Failure("swap", (a, b), face=(first, second), value=crossed))
            used.update((first, second))
    return swaps + _rings([face for face in ranked if face not in used], low, looks_like)


def _rings(left: list[int], low: Mapping[int, str], looks_like: Any) -> list[_Failure]:
    """Rings of three or more among the faces ``left`` (no pair among them: ``_swaps`` took every pair). Each face
    is given to the box of the character it looks like, one face to a box, so that the most faces are in a ring
    (then the highest likeness): a one-to-one assignment of faces to boxes in which a face may stay in its own box,
    whose cycles are the rings. Each ring starts with its first character in cast order (``left``'s order)."""
    if len(left) < 3:
        return []
    import numpy as np

    from .qa import best_assignment

    # Rows: the faces; columns: the boxes they may stand in for, by the face now in each. Staying costs nothing, a
    # face given to another character's box gains far more than any likeness adds: the most faces first.
    weights = np.array([[0.0 if row == column else (-1e9 if (cross := looks_like(face, low[other])) is None
                                                    else 1e3 + cross)
                         for column, other in enumerate(left)] for row, face in enumerate(left)])
    given = dict(best_assignment(weights))  # row -> column: the face in left[row]'s box is left[column]'s character's
    box_of = {column: row for row, column in given.items() if row != column and weights[row, column] > 0}
    rings = []
    seen: set[int] = set()
    for start in range(len(left)):  # cast order: each ring starts with its first character
        if start in seen or start not in box_of:
            continue
        ring = [start]  # each one's face is in the next one's box: box_of[ring[-1]]
        while (nxt := box_of[ring[-1]]) != start:
            ring.append(nxt)
        seen.update(ring)
        after = ring[1:] + ring[:1]
        rings.append(_Failure("swap", tuple(low[left[i]] for i in ring), face=tuple(left[i] for i in ring),
                              value=tuple(float(looks_like(left[box], low[left[i]])) for i, box in
                                          zip(ring, after, strict=True))))
    return rings


def _whose_face(swaps: list[_Failure], name: str) -> str | None:
    """The character whose face is in ``name``'s box by one of ``swaps`` (the one before it in its ring); None."""
    for swap in swaps:
        if name in swap.who:
            return swap.who[swap.who.index(name) - 1]
    return None


def _field(record: Mapping[str, Any], name: str, kind: type) -> Any:
    """``record[name]`` when it is a ``kind`` (a list, a mapping), else an empty one."""
    value = record.get(name)
    return value if isinstance(value, kind) else ({} if kind is Mapping else kind())


def _either(names: tuple[str, ...]) -> str:
    """``mara``, or ``mara or ines, who share one face`` (twins: the face looks as much like each)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}, who share one face"


def _ring_steps(swap: _Failure) -> list[tuple[str, str, Any, Any]]:
    """A swap's places, one per character of its ring: (whose face, in whose box, that face's index, its cosine to
    whose it is); a pair's two, as ``mara and theo swapped places`` says them."""
    count = len(swap.who)
    return [(swap.who[i], swap.who[(i + 1) % count], swap.face[(i + 1) % count], swap.value[i]) for i in range(count)]


def _and(parts: list[str]) -> str:
    """Parts of a sentence joined as English joins them: ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def findings(qa: Mapping[str, Any]) -> list[str]:
    """One line per failure of a QA record (``review/qa.py: assess``), in a supervisor's words (cosines, face
    numbers); none when nothing is flagged."""
    said = []
    for failure in _failures(qa):
        cast = _and(list(failure.who)) if failure.who else ""  # as the page joins them: mara, theo and ines
        if failure.kind == "no_face":
            said.append(f"no usable face for {cast}" if failure.unusable
                        else f"no face in the recorded plate boxes of {cast}" if failure.plate
                        else f"no face found for {cast}")
        elif failure.kind == "missing":
            said.append(f"{cast}: no face")
        elif failure.kind == "low":
            said.append(f"{cast}: cosine {failure.value:.2f} below {failure.limit}")
        elif failure.kind == "leak":
            whose = f"matched to {cast}" if failure.who else "matched to nobody"
            said.append(f"face #{failure.face} ({whose}) looks like {_either(failure.like)} ({failure.value:.2f})")
        elif failure.kind == "swap":
            places = [f"{who}'s face is in {box}'s plate box (face #{face}, {value:.2f})" if not n else
                      f"{who}'s in {box}'s (face #{face}, {value:.2f})" for n, (who, box, face, value) in
                      enumerate(_ring_steps(failure))]
            said.append(f"{_and(list(failure.who))} swapped places{' in a ring' if len(failure.who) > 2 else ''}: "
                        f"{_and(places)}")
        else:
            said.append(f"face #{failure.face} could not be embedded (its embedding is zero or not a number): "
                        "compared with no character")
    return said


def in_plain_words(qa: Mapping[str, Any]) -> list[str]:
    """The same failures in a director's words, for the storyboard page: who is not in the picture, whose face is
    not theirs, who a face looks like instead. A cosine is called the face's *likeness* to the character's selfies
    (the page says once what it measures), and faces are numbered as the page's table numbers them."""
    said = []
    for failure in _failures(qa):
        cast = _and(list(failure.who)) if failure.who else ""
        if failure.kind == "no_face":
            said.append(f"no face could be checked: {cast} should be in it" if failure.unusable
                        else f"no face where the plate puts {cast}" if failure.plate
                        else f"no face found: {cast} should be in it")
        elif failure.kind == "missing":
            said.append(f"{cast} is not in it: no face found for {cast}")
        elif failure.kind == "low":
            said.append(f"the face taken for {cast} does not look like {cast} (likeness {failure.value:.2f}; "
                        f"{failure.limit} or more passes)")
        elif failure.kind == "leak":
            whose = f"the face taken for {cast}" if failure.who else "a face of no character"
            said.append(f"{whose} (#{failure.face}) looks like {_either(failure.like)} "
                        f"(likeness {failure.value:.2f})")
        elif failure.kind == "swap":
            places = [f"{who}'s face is where the plate puts {box} (#{face}, likeness {value:.2f})" if not n else
                      f"{who}'s where it puts {box} (#{face}, likeness {value:.2f})" for n, (who, box, face, value) in
                      enumerate(_ring_steps(failure))]
            said.append(f"{cast} have swapped places{' in a ring' if len(failure.who) > 2 else ''}: {_and(places)}")
        else:
            said.append(f"face #{failure.face} could not be read, so it was compared with no one")
    return said


MAX_LINES = 40  # a terminal's worth; --json lists every flagged image


def flagged_lines(images: list[dict[str, Any]], out: object, limit: int = MAX_LINES) -> list[str]:
    """``idcli qa``'s lines under its summary: each flagged image (``RecheckResult.flagged_images``) and its
    findings, at most ``limit`` of them, then how many more and where to see them."""
    lines = [f"  {image['image']}: {'; '.join(image['findings']) or ', '.join(image['flags'])}"
             for image in images[:limit]]
    if len(images) > limit:
        lines.append(f"  … and {len(images) - limit} more flagged images "
                     f"(idcli qa {shell_path(str(out))} --json lists every one)")
    return lines


def unpassed_note(unpassed: list[Take], root: object, shown: str, again: str, render: str) -> str:
    """The note for shots that stand as a take QA flagged because none of their takes passed and none was picked
    (``default_take``: the first): which take of which shot, what QA found, and how to get a better one. One wording
    for ``deliver`` (``shown``: "delivered", ``again``: "deliver") and ``export`` ("shown in the animatic",
    "export"), so that the cut and the delivery say the same of the same takes. ``render``: the folder's render
    command (``Run.render_command``), to which the re-roll adds ``--retake-flagged``."""
    named = [f"{take.shot_id} take {take.take}" + (f" ({'; '.join(found)})" if (found := findings(take.qa or {}))
                                                    else "") for take in unpassed]
    folder = shell_path(str(root))
    return (f"{len(unpassed)} shot(s) {shown} with a take identity QA flagged, none of their takes passing and none "
            f"picked: {', '.join(named[:10])}{' ...' if len(named) > 10 else ''}; pick a take (idcli select {folder} "
            f"SHOT=N) or re-roll them ({render} --retake-flagged), then {again} again")
