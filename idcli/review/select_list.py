"""``idcli select OUT`` with no picks: the selects as ``selects.json`` holds them, in shot-list order, and whether
each still stands as the director picked it.

A pick names a take and the job key it had when picked (selects.py). After a shot-list edit and a render it may no
longer show what the director saw: its take re-rendered, its shot renamed or removed, the take beyond the shot's
``takes:`` now, or no take of that number rendered. select, review and export say so in notes when they run; this
is the list an artist reads before the morning's review: every pick, one line each, nothing written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .pick_standing import DAMAGED_RECORD, PickStanding, has_damaged_key, held_words, pick_standing, takes_holding

if TYPE_CHECKING:
    from ..image_stamps import ImageStamps
    from .runs import Take

# How a pick stands (pick_standing.py decides), each with the words the human list uses (the JSON names the code).
STANDINGS = {
    PickStanding.AS_PICKED: "as rendered when picked",
    PickStanding.RE_RENDERED: "re-rendered since it was picked",
    PickStanding.SHOT_GONE: "shot renamed or removed from the shot list",
    PickStanding.BEYOND_TAKES: "take beyond the shot's takes in the shot list now",
    PickStanding.NOT_RENDERED: "no take of that number is rendered now",
}


@dataclass(frozen=True)
class Standing:
    """One select and how it stands."""

    shot_id: str
    take: int
    standing: PickStanding
    damaged: bool = False  # its recorded job_key is no string (pick_standing.has_damaged_key): RE_RENDERED, so worded
    # Whether the picked take's image is still the render's bytes (image_change): None, or "edited" / "damaged".
    image_changed: str | None = None
    # Where the picked image is now when its take no longer holds it (pick_standing.takes_holding): the shot's takes
    # shifted; ``select`` moves the pick to the first of them (pick_standing.followed_take).
    holding: tuple[int, ...] = ()

    @property
    def words(self) -> str:
        """How the human list says it stands (STANDINGS, or the damaged record's own words), and where the picked
        image is now when another take holds it."""
        said = DAMAGED_RECORD if self.damaged and self.standing is PickStanding.RE_RENDERED else STANDINGS[
            self.standing]
        return f"{said}; {held_words(self.take, list(self.holding))}" if self.holding else said

    def as_dict(self) -> dict[str, Any]:
        return {"shot_id": self.shot_id, "take": self.take, "standing": self.standing.value,
                "image_changed": self.image_changed, "picked_image_takes": list(self.holding)}


@dataclass(frozen=True)
class SelectList:
    """Every select in shot-list order (shots no longer in the shot list last, by id), and the shots of the shot
    list nobody picked yet."""

    selects: list[Standing]
    unpicked: list[str]
    shotlist: Path | None = None  # where the shot list the folder was last rendered from is now, when known


def list_selects(out_dir: str | Path) -> SelectList:
    """The selects of ``out_dir`` and whether each stands (reads only). A damaged ``selects.json``, or a folder
    with no committed render, is an InputError, as for ``select`` and ``review``."""
    from ..arguments import check_out_dir, check_out_dir_is_folder
    from ..image_stamps import ImageStamps
    from ..store import STATE
    from .export import standing_takes
    from .runs import load_run
    from .selects import read_selects

    root = check_out_dir(out_dir)
    check_out_dir_is_folder(root)
    picks = read_selects(root)  # raises on a damaged file: listing it as "no picks" would hide the damage
    run = load_run(root)  # a folder with no render is refused, as review and export refuse it
    live = standing_takes(run)
    known = run.order is not None  # the folder knows the shot list it was last rendered from
    stamps = ImageStamps(root / STATE)  # read only: never saved by a command that writes nothing
    listed: list[Standing] = []
    for shot in run.shots:
        pick = picks.pop(shot.id, None)
        if pick is None:
            continue
        take = pick["take"]
        rendered = next((t for t in shot.takes if t.take == take), None)
        standing = pick_standing(shot.id, take, pick.get("job_key"), rendered.job_key if rendered else None,
                                 listed=shot.entry is not None if known else None, live=live)
        holding = () if standing in (PickStanding.AS_PICKED, PickStanding.SHOT_GONE) else tuple(takes_holding(
            shot.id, take, pick.get("job_key"), {t.take: t.job_key for t in shot.takes}, live))
        listed.append(Standing(shot.id, take, standing, has_damaged_key(pick.get("job_key")),
                               image_change(root, rendered, stamps) if rendered else None, holding))
    # Picks of shots neither in the shot list nor rendered: gone from it, when the folder knows its shot list.
    listed += [Standing(shot, pick["take"], pick_standing(shot, pick["take"], pick.get("job_key"), None,
                                                          listed=False if known else None),
                        has_damaged_key(pick.get("job_key")))
               for shot, pick in sorted(picks.items())]
    order = {shot.id: i for i, shot in enumerate(run.shots) if shot.entry is not None}
    listed.sort(key=lambda s: _shot_list_place(order, s.shot_id))
    picked = {s.shot_id for s in listed}
    unpicked = [shot.id for shot in run.shots if shot.entry is not None and shot.id not in picked]
    return SelectList(listed, unpicked, run.order.path if run.order is not None else None)


def image_change(root: Path, take: Take, stamps: ImageStamps) -> str | None:
    """Whether ``take``'s image is still the bytes its render wrote, as ``render`` and ``deliver`` judge it: None
    when it is; "edited" when a whole image with other bytes is there (retouched by hand: render keeps it unless
    --force, store.py's "modified"); "damaged" when what is there is no whole image (render renders it again). Deliver
    refuses either (delivery.py: a copy carries the render's record). ``stamps`` spares the hash of an image unchanged
    since a run hashed it (image_stamps.py); a pick whose image changed is decoded once, to tell the two apart."""
    from ..moving_aside import is_whole_image

    image = root / take.image
    if stamps.sha256(take.image, image) == take.image_sha256:
        return None
    return "edited" if take.image_sha256 and is_whole_image(image) else "damaged"  # as store.state() tells them


def _shot_list_place(order: dict[str, int], shot_id: str) -> tuple[bool, int, str]:
    """Where ``shot_id`` goes in a list in shot-list order (``order``: shot id -> its place in the shot list):
    shots no longer in the shot list last, by id."""
    return shot_id not in order, order.get(shot_id, 0), shot_id


def in_shot_list_order(out_dir: str | Path, shot_ids: Iterable[str]) -> list[str]:
    """``shot_ids`` in the order of the shot list ``out_dir`` was last rendered from (its run manifest), shots no
    longer in it last, by id: as ``list_selects`` orders the picks, so that ``select``'s line of every pick and
    ``select OUT``'s list agree (by id alone in a folder from before idcli kept the manifest, or whose manifest is
    damaged: the picks are written by then, and the order is no reason to fail the command)."""
    from ..errors import InputError
    from .order import read_order

    try:
        found = read_order(Path(out_dir))
    except InputError:
        found = None
    order = found.index() if found is not None else {}
    return sorted(shot_ids, key=lambda shot: _shot_list_place(order, shot))
