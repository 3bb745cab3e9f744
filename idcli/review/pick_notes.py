"""What the artist should know of the director's picks when the shot list changed after they were made.

A pick (``selects.json``) names a take and the job key it had when it was picked. After an edit and a render,
a pick may no longer show what the director saw: its take was re-rendered (the shot changed), or its shot was
renamed or removed from the shot list. ``review`` and ``export`` show the former as the take is rendered now (or,
when another take holds the image picked, that take: pick_standing.select_shown) and leave the latter out; these
lines say so, so that an animatic sent to editorial never passes a new image off as the director's choice without a
word. ``select`` says the same per pick (selects.py, ``_standing_note``); both ask pick_standing.py how a pick
stands.
"""

from __future__ import annotations

from ..errors import printable
from ..shell_words import shell_path
from .pick_standing import (
    DAMAGED_RECORD,
    PickStanding,
    followed_take,
    has_damaged_key,
    held_words,
    pick_standing,
    picked_take_now,
    takes_holding,
)
from .runs import Run


def pick_notes(run: Run) -> list[str]:
    """One line per select re-rendered since it was picked, in shot-list order, then one line naming the selects of
    shots no longer in the shot list; empty when every pick stands as it was made."""
    from .export import standing_takes

    folder = shell_path(run.root)
    live = standing_takes(run)
    notes: list[str] = []
    gone: list[str] = []  # picks of shots no longer in the shot list: one line for them all
    for shot in run.shots:
        take = shot.picked_take
        if take is None:  # no pick, or one of a take not rendered that no take holds (load_run's problems say so)
            continue
        named = printable(shot.id)
        rendered_key = shot.selected.job_key if shot.selected is not None else None  # None: not rendered now
        standing = pick_standing(shot.id, take, shot.picked_key, rendered_key,
                                 listed=shot.entry is not None if run.order is not None else None, live=live)
        holding = takes_holding(shot.id, take, shot.picked_key, {t.take: t.job_key for t in shot.takes}, live)
        if standing in (PickStanding.RE_RENDERED, PickStanding.BEYOND_TAKES, PickStanding.NOT_RENDERED) and holding:
            # The shot's takes shifted (a seed inserted): the picked image is the same job at another take, shown as
            # the select there (pick_standing.select_shown: the first of several alike, followed_take, as deliver
            # sends it and idcli select records it).
            notes.append(f"{named}: the director's select, take {take}, {picked_take_now(standing)}; "
                         f"{held_words(take, holding)}: shown as the select (idcli select {folder} "
                         f"{named}={followed_take(holding)} records it there)")
        elif standing is PickStanding.SHOT_GONE:
            gone.append(f"{named}=t{take}")
        elif standing is PickStanding.BEYOND_TAKES:
            notes.append(f"{named}: the director's select, take {take}, is beyond the shot's takes in the shot list "
                         f"now; left out, the shot shows another take: pick one of its takes (idcli select {folder} "
                         f"{named}=N)")
        elif standing is PickStanding.RE_RENDERED and has_damaged_key(shot.picked_key):
            notes.append(f"{named}: the director's select, take {take}: {DAMAGED_RECORD}; shown as rendered now: look "
                         f"again and pick (idcli select {folder} {named}=N)")
        elif standing is PickStanding.RE_RENDERED:
            notes.append(f"{named}: the director's select, take {take}, was re-rendered since it was picked (its "
                         "prompt, settings or a character's selfies changed); shown as rendered now: look again and "
                         f"pick (idcli select {folder} {named}=N)")
    if gone:
        notes.append(f"{len(gone)} select(s) of shots no longer in the shot list (renamed or removed) are left out: "
                     f"{', '.join(gone[:10])}{' ...' if len(gone) > 10 else ''} (idcli select {folder} SHOT=none "
                     "clears one)")
    return notes

