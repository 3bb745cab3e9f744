"""Does a director's pick still stand? One answer for every command that says so.

A pick (``selects.json``, selects.py) names a take and the job key the take had when it was picked. After a shot-list
edit and a render it may no longer show what the director saw. ``select OUT`` lists the answer (select_list.py),
``select`` says it of the picks it carries forward (selects.py), ``review`` and ``export`` say it in their notes
(pick_notes.py), and the page marks it (runs.py's ``Shot.selection_stale``): each asks ``pick_standing`` and words
the answer its own way, so that they never disagree. Where a pick's image is now when the shot's takes shifted
(``takes_holding``) is told by all of them in one wording (``held_words``); ``select`` moves the pick there, and
every command that shows the select shows that take as it (``select_shown``), as ``deliver`` sends it. One rule for
all of them: the pick stands on the take picked while that take holds the image picked; else on the first take (in
take order) of the shot list's takes that holds it, one or several alike (``followed_take``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .runs import Shot, Take


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


def takes_holding(shot_id: str, take: int, picked_key: object, keys: Mapping[int, str],
                  live: set[tuple[str, int]] | None = None) -> list[int]:
    """Where the image picked as ``take`` is now: the shot's other takes whose job key (``keys``: take -> key as
    committed now) is ``picked_key``, of the shot list's takes ``live`` when known; in take order.

    Job keys leave the take out, so a seed inserted into ``seeds:`` (or one taken out) shifts the takes, and render
    reuses the picked pixels at another take (idcli/reuse.py): the same job, the same image. Empty for a pick
    recorded without a key or with a damaged one: nothing says which image was picked. ``keys`` may hold keys as the
    page carries them (picks_file.seen_key), given ``picked_key`` in that form."""
    if not isinstance(picked_key, str):
        return []
    return sorted(other for other, key in keys.items()
                  if other != take and key == picked_key and (live is None or (shot_id, other) in live))


def followed_take(holding: list[int]) -> int | None:
    """The take a pick follows its image to (``holding``: takes_holding's answer for a pick whose take no longer holds
    it): the first, in take order, when several hold it (the same job, so the same pixels, as render reuses the first
    in shot-list order: docs/file-formats.md, "Reused images"); None when none does. ``select`` records the pick
    there, and every command shows and delivers that take as the select, so that none of them differs."""
    return holding[0] if holding else None


def held_words(take: int, holding: list[int]) -> str:
    """How every command says where the image picked as ``take`` is now (``holding``: takes_holding's answer), and,
    when several takes hold it, which of them stands for it (``followed_take``)."""
    if len(holding) == 1:
        return f"the image picked as take {take} is take {holding[0]} now (the same job: the shot's takes shifted)"
    return (f"the image picked as take {take} is each of takes {', '.join(map(str, holding))} now (the same job: the "
            f"shot's takes shifted; the first, take {followed_take(holding)}, stands for it)")


def picked_take_now(standing: PickStanding) -> str:
    """What became of a picked take whose image another take holds now (``held_words``), as every note says it."""
    if standing is PickStanding.BEYOND_TAKES:
        return "is beyond the shot's takes in the shot list now"
    if standing is PickStanding.NOT_RENDERED:  # its image file deleted
        return "is not rendered now"
    return "was re-rendered since it was picked"


class SelectShown(NamedTuple):
    """The take that stands for a shot's select (None: none of the takes given) and, when that is the take holding
    the picked image rather than the picked take, ``takes_holding``'s answer (else empty)."""

    take: Take | None
    holding: list[int]


def select_shown(shot: Shot, takes: list[Take]) -> SelectShown:
    """Which of ``takes`` (the shot's among the shot list's) is the director's select as every command shows and
    delivers it: the picked take, unless it no longer holds the image picked (re-rendered, beyond the shot's takes,
    or not rendered now, its image file deleted: ``Shot.unrendered_pick``) while another of ``takes`` does (a seed
    inserted into ``seeds:`` shifted them): then that take, the first of several alike (``followed_take``, where
    ``idcli select`` moves the pick). Only ``idcli select`` records the move; reading commands show it and say so
    (``held_words``).
    A select beyond ``takes`` whose image none of them holds is None: the shot shows its default take."""
    picked = shot.selected
    if picked is None:  # no pick, or one of a take not rendered now (its image deleted): followed as a re-rendered one
        if shot.unrendered_pick is not None:
            holding = takes_holding(shot.id, shot.unrendered_pick, shot.picked_key, {t.take: t.job_key for t in takes})
            if (followed := followed_take(holding)) is not None:
                return SelectShown(next(t for t in takes if t.take == followed), holding)
        return SelectShown(None, [])
    if not shot.selection_damaged and (shot.selection_stale or picked not in takes):
        holding = takes_holding(shot.id, picked.take, shot.picked_key, {t.take: t.job_key for t in takes})
        if (followed := followed_take(holding)) is not None:
            return SelectShown(next(t for t in takes if t.take == followed), holding)
    return SelectShown(picked if picked in takes else None, [])


# What the notes and the list say of a pick whose recorded key is damaged, instead of "re-rendered since it was picked
# (its prompt, settings or a character's selfies changed)", untrue of it: its standing is RE_RENDERED all the same.
DAMAGED_RECORD = "its record in selects.json is damaged (its job_key is no take's key)"
# The same, short, where a badge or a heading says it (the storyboard page).
DAMAGED_SHORT = DAMAGED_RECORD.split(" (", 1)[0]


def has_damaged_key(picked_key: object) -> bool:
    """Whether a pick's recorded ``job_key`` is damaged (recorded, but no string): it reads as re-rendered, and is
    worded as damaged (DAMAGED_RECORD)."""
    return picked_key is not None and not isinstance(picked_key, str)
