"""What the artist should know of the director's picks when the shot list changed after they were made.

A pick (``selects.json``) names a take and the job key it had when it was picked. After an edit and a render,
a pick may no longer show what the director saw: its take was re-rendered (the shot changed), or its shot was
renamed or removed from the shot list. ``review`` and ``export`` show the former as the take is rendered now and
leave the latter out; these lines say so, so that an animatic sent to editorial never passes a new image off as
the director's choice without a word. ``select`` says the same per pick (selects.py, ``_standing_note``).
"""

from __future__ import annotations

import shlex

from ..errors import printable
from .runs import Run


def pick_notes(run: Run) -> list[str]:
    """One line per select re-rendered since it was picked, in shot-list order, then one line naming the selects of
    shots no longer in the shot list; empty when every pick stands as it was made."""
    from .export import standing_takes

    folder = shlex.quote(str(run.root))
    live = standing_takes(run)
    notes = []
    for shot in run.shots:
        if shot.selected is None or (run.order is not None and shot.entry is None):
            continue
        named = printable(shot.id)
        if live is not None and (shot.id, shot.selected.take) not in live:
            notes.append(f"{named}: the director's select, take {shot.selected.take}, is beyond the shot's takes in "
                         f"the shot list now; left out, the shot shows another take: pick one of its takes (idcli "
                         f"select {folder} {named}=N)")
            continue
        if not shot.selection_stale:
            continue
        notes.append(f"{named}: the director's select, take {shot.selected.take}, was re-rendered since it was "
                     "picked (its prompt, settings or a character's selfies changed); shown as rendered now: look "
                     f"again and pick (idcli select {folder} {named}=N)")
    if run.order is not None:
        gone = [f"{printable(s.id)}=t{s.selected.take}" for s in run.shots
                if s.entry is None and s.selected is not None]
        if gone:
            notes.append(f"{len(gone)} select(s) of shots no longer in the shot list (renamed or removed) are left "
                         f"out: {', '.join(gone[:10])}{' ...' if len(gone) > 10 else ''} (idcli select {folder} "
                         "SHOT=none clears one)")
    return notes
