"""Everyday words for a face that are none of the 135 terms, each with the terms it means: a hint, never a name.

A previs artist writes what the face does ('smiling', 'crying', 'calm'); the vocabulary names emotions, and its
synonyms leave out any word that could as well mean another term (idcli/data/expressions.yaml). Suggested by
spelling, 'smiling' got grumpiness, desire, dislike. Each word here is answered with the terms whose face it
describes (their descriptions in the data file), and stays refused: the artist chooses which, as 'upset' must.
Where the 135 have no such emotion (boredom, confusion), the terms whose face comes nearest, said so in
docs/expressions.md. Keys are as ``expressions.normalise`` leaves a name (no case, spaces, '-' or '_').
"""

from __future__ import annotations

_SMILE = ("happiness", "joy", "cheerfulness")  # a natural smile; one reaching the eyes; a broad toothy smile
_LAUGH = ("amusement", "gaiety", "jolliness")  # a chuckle; an open laughing smile; about to laugh
_TEARS = ("sorrow", "grief", "anguish")  # moist downcast eyes; eyes red and wet; eyes wide and wet
_SOBS = ("grief", "anguish", "misery")  # shoulders shaking; hands to the face; the face crumples, quivering
_CALM = ("neutral", "contentment")  # the relaxed face at rest; a content peaceful face
_BORED = ("glumness", "neutral")  # no boredom among the 135: eyes lowered, chin propped on a hand; a blank face
_CONFUSED = ("uneasiness",)  # no confusion among the 135: a faint frown, eyes glancing sideways

MEANT: dict[str, tuple[str, ...]] = {
    "smiling": _SMILE, "smile": _SMILE, "smiles": _SMILE, "grinning": _SMILE, "grin": _SMILE,
    "laughing": _LAUGH, "laugh": _LAUGH, "laughs": _LAUGH,
    "crying": _TEARS, "cry": _TEARS, "cries": _TEARS, "tearful": _TEARS, "teary": _TEARS, "intears": _TEARS,
    "weeping": _TEARS, "sobbing": _SOBS,
    "calm": _CALM, "relaxed": _CALM, "serene": _CALM, "peaceful": _CALM,
    "bored": _BORED, "boredom": _BORED,
    "confused": _CONFUSED, "confusion": _CONFUSED, "puzzled": _CONFUSED,
}


def meant_terms(key: str) -> tuple[str, ...]:
    """The terms a word for a face means (``key`` normalised as expressions.normalise does); () for any other."""
    return MEANT.get(key, ())
