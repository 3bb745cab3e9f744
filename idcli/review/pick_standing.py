"""Does a director's pick still stand? One answer for every command that says so.

A pick (``selects.json``, selects.py) names a take and the job key the take had when it was picked. After a shot-list
edit and a render it may no longer show what the director saw. ``select OUT`` lists the answer (select_list.py),
``select`` says it of the picks it carries forward (selects.py), ``review`` and ``export`` say it in their notes
(pick_notes.py), and the page marks it (runs.py's ``Shot.selection_stale``): each asks ``pick_standing`` and words
the answer its own way, so that they never disagree.
"""

from __future__ import annotations

from enum import StrEnum


class PickStanding(StrEnum):
    """How a pick stands; the values are the names ``select OUT --json`` gives (docs/file-formats.md)."""

    AS_PICKED = "as-picked"
    RE_RENDERED = "re-rendered"  # the take's job key changed since it was picked, or the recorded key is damaged
    SHOT_GONE = "shot-gone"  # renamed or removed from the shot list
    BEYOND_TAKES = "beyond-takes"  # the shot's takes: were lowered below the picked take
    NOT_RENDERED = "not-rendered"  # no take of that number is committed


def pick_standing(shot_id: str, take: int, picked_key: object, rendered_key: str | None, *,
                  listed: bool | None = None, live: set[tuple[str, int]] | None = None) -> PickStanding:
    """How the pick of take ``take`` of ``shot_id``, recorded with ``picked_key``, stands.

    ``rendered_key``: the job key of that take as committed now, None when no take of that number is rendered.
    ``listed``: whether the shot is in the shot list the folder was last rendered from (None: unknown, a folder
    from before idcli kept one). ``live``: that shot list's takes, ``(shot, take)`` (None: unknown).

    A pick recorded without a key (a hand-written ``{"take": 2}``) stands: nothing says otherwise. One whose key is
    not a string (a damaged or hand-edited file) cannot be the take's key: it reads as re-rendered, the safe
    reading, for the director must then look again rather than take an image they may never have seen as chosen.
    """
    if listed is False:
        return PickStanding.SHOT_GONE
    if rendered_key is None:
        return PickStanding.NOT_RENDERED
    if live is not None and (shot_id, take) not in live:
        return PickStanding.BEYOND_TAKES
    if picked_key is not None and picked_key != rendered_key:
        return PickStanding.RE_RENDERED
    return PickStanding.AS_PICKED


# What the notes and the list say of a pick whose recorded key is damaged, instead of "re-rendered since it was picked
# (its prompt, settings or a character's selfies changed)", untrue of it: its standing is RE_RENDERED all the same.
DAMAGED_RECORD = "its record in selects.json is damaged (its job_key is no take's key)"
# The same, short, where a badge or a heading says it (the storyboard page).
DAMAGED_SHORT = DAMAGED_RECORD.split(" (", 1)[0]


def has_damaged_key(picked_key: object) -> bool:
    """Whether a pick's recorded ``job_key`` is damaged (recorded, but no string): it reads as re-rendered, and is
    worded as damaged (DAMAGED_RECORD)."""
    return picked_key is not None and not isinstance(picked_key, str)
