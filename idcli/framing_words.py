"""Framing as script supervisors write it ('CU', 'medium shot', 'LS') turned into idcli's four framings.

The shot list is read through ``canonical_framing`` before anything is keyed, so an alias gives exactly the
job key of the framing it stands for. Abbreviations that name a framing idcli does not have (an extreme
close-up, an over-the-shoulder, a two-shot) are refused with the nearest framing and why there is no such one, never
quietly mapped to something else.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import PydanticCustomError

# Spellings are compared without case, spaces, hyphens or underscores: 'Close_Up', 'close up', 'closeup'.
ALIASES: dict[str, tuple[str, ...]] = {
    "close-up": ("CU", "closeup", "close up", "close-up shot"),
    "medium": ("MS", "medium shot", "mid shot"),
    "wide": ("WS", "wide shot", "LS", "long shot"),
    "full-body": ("FS", "full body", "full shot", "full-body shot"),
}

# Shot names idcli has no framing for, each spelling (squashed) with the nearest framing and why there is none.
_EXTREME_CLOSE = ("close-up", "an extreme close-up crops into the face (eyes, mouth); idcli's tightest framing is "
                              "a face filling the frame, so that the identity can be seen")
_MEDIUM_CLOSE = ("medium", "a medium close-up (chest up) lies between close-up (face filling the frame) and "
                           "medium (waist up); pick the one whose composition you want")
_EXTREME_WIDE = ("wide", "an extreme wide shot (extreme long shot) makes the figure a speck; idcli's widest "
                         "framing keeps the figure small but its face still renders")
_POSITION = "is a camera position, not a shot size; choose a size and say '{} of ...' in the prompt"
_WHO_IS_IN_FRAME = ("medium", "a two-shot (three-shot, group shot) says who is in frame, not a shot size; name each "
                              "character in the prompt (each conditions their own region) and choose a size")
_INSERT = ("close-up", "an insert shows a detail (a hand, a letter), not a person at a size; write a close-up whose "
                       "prompt names the detail")
_ESTABLISHING = ("wide", "an establishing shot shows the place, which is the prompt's to say; choose a size and write "
                         "'establishing shot' in the prompt")
AMBIGUOUS: dict[str, tuple[str, str]] = {
    "ecu": _EXTREME_CLOSE, "extremecloseup": _EXTREME_CLOSE,
    "mcu": _MEDIUM_CLOSE, "mediumcloseup": _MEDIUM_CLOSE,
    "ews": _EXTREME_WIDE, "els": _EXTREME_WIDE, "extremewideshot": _EXTREME_WIDE, "extremelongshot": _EXTREME_WIDE,
    "ots": ("medium", "over-the-shoulder " + _POSITION.format("over the shoulder")),
    "overtheshoulder": ("medium", "over-the-shoulder " + _POSITION.format("over the shoulder")),
    "pov": ("medium", "a point-of-view shot " + _POSITION.format("point of view")),
    "pointofview": ("medium", "a point-of-view shot " + _POSITION.format("point of view")),
    "2s": _WHO_IS_IN_FRAME, "twoshot": _WHO_IS_IN_FRAME, "3s": _WHO_IS_IN_FRAME, "threeshot": _WHO_IS_IN_FRAME,
    "groupshot": _WHO_IS_IN_FRAME,
    "insert": _INSERT, "insertshot": _INSERT,
    "est": _ESTABLISHING, "establishing": _ESTABLISHING, "establishingshot": _ESTABLISHING,
}


def _squashed(text: str) -> str:
    return re.sub(r"[\s_-]+", "", text).lower()


_CANONICAL: dict[str, str] = {
    _squashed(spelling): framing
    for framing, aliases in ALIASES.items() for spelling in (framing, *aliases)
}


def canonical_framing(value: Any) -> Any:
    """The canonical framing ``value`` stands for; anything else is returned as it is, for the schema to refuse
    (a number, an unknown word: its usual 'allowed: ...' message). An ambiguous abbreviation is refused here."""
    if not isinstance(value, str):
        return value
    squashed = _squashed(value)
    if squashed in _CANONICAL:
        return _CANONICAL[squashed]
    if squashed in AMBIGUOUS:
        nearest, why = AMBIGUOUS[squashed]
        raise PydanticCustomError(
            "framing_ambiguous", "'{value}' is no idcli framing: {why}",
            {"value": value, "why": why, "hint": f"nearest: framing: {nearest}"})
    return value


def aliases_text() -> str:
    """The aliases in words, for the schema's description and messages."""
    return "; ".join(f"{framing}: {', '.join(spellings)}" for framing, spellings in ALIASES.items())


_SEPARATORS = r"[\s_-]*"  # what _squashed removes


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a framing: exactly the strings ``canonical_framing`` reads as a framing, so that a YAML
    editor accepts ``CU`` and ``close up`` as idcli does (and still flags ``ECU``, ``wider``). The canonical names
    come first, as an enum, for completion. JSON Schema patterns have no case flag: each letter is a class."""
    def spelled(squashed: str) -> str:
        return _SEPARATORS.join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in squashed)

    words = "|".join(spelled(squashed) for squashed in sorted(_CANONICAL))
    return {"anyOf": [{"type": "string", "enum": list(ALIASES)},
                      {"type": "string", "pattern": f"^{_SEPARATORS}(?:{words}){_SEPARATORS}$"}]}
