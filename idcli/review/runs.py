"""A rendered output folder as the review commands see it: shots in order, their takes, selections.

This is the one place that reads sidecar fields for review, so a change of field names lands here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..arguments import check_out_dir_is_folder, inside_output_folder
from ..errors import InputError
from ..random_mark import made_by_random_weights
from ..shell_words import shell_path
from .order import ShotEntry, ShotOrder, read_order


@dataclass(frozen=True)
class Take:
    """One committed image and what review shows of it."""

    shot_id: str
    take: int
    job_key: str
    seed: int | None
    prompt: str
    characters: tuple[str, ...]
    expression: str | None
    framing: str | None
    method: str | None
    image: str  # relative to the output folder (POSIX)
    sidecar: str
    width: int | None
    height: int | None
    image_sha256: str
    mask_strip: str | None
    qa: dict[str, Any] | None = field(default=None, compare=False)
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # A random-weight test model made it (a tiny/bench preset, or the synthetic face models gave its identities).
    random_weights: bool = field(default=False, compare=False)

    @property
    def stem(self) -> str:
        return f"{self.shot_id}_t{self.take}"

    @property
    def flags(self) -> list[str]:
        flags = (self.qa or {}).get("flags") or []
        return [str(f) for f in flags] if isinstance(flags, list) else []

    @property
    def qa_error(self) -> str | None:
        error = (self.qa or {}).get("error")
        return str(error) if error else None


_INT64 = 2**63 - 1  # OTIO's metadata integers are C++ int64


def _count(value: Any, limit: int = _INT64) -> int | None:
    """``value`` when it is a whole number 0..``limit`` (bools and floats are not), else None: a tampered
    sidecar's width, height or seed is shown as unknown instead of failing the page or the export."""
    return value if type(value) is int and 0 <= value <= limit else None


def _inside(root: Path, relpath: Any) -> str | None:
    """``relpath`` when it names a regular file inside the output folder (no absolute path, no ``..``, no
    link), else None: the page links only to the folder's own files."""
    from pathlib import PurePosixPath

    if not isinstance(relpath, str) or not relpath:
        return None
    parts = PurePosixPath(relpath).parts
    if PurePosixPath(relpath).is_absolute() or ".." in parts or "\\" in relpath:
        return None
    target = root.joinpath(*parts)
    return relpath if target.is_file() and not target.is_symlink() else None


def expression_words(record: dict[str, Any]) -> str | None:
    """What a take's sidecar says was scripted for its faces: the shot's expression, then in brackets each character
    whose own (``expressions:``) differs from it (``joy (theo: anger)``); without a shot expression, each character's
    own (``mara: worry, theo: hope``). A group shot's exceptions were dropped when the shot had an expression too."""
    expression = record.get("expression")
    label = expression.get("label") if isinstance(expression, dict) else expression
    # Each identity entry records its character's expression (per-character ``expressions`` included).
    own = [(str(c.get("name")), str(c["expression"]["label"])) for c in record.get("identity") or []
           if isinstance(c, dict) and isinstance(c.get("expression"), dict) and c["expression"].get("label")]
    if not label:
        return ", ".join(f"{name}: {term}" for name, term in own) or None
    others = [f"{name}: {term}" for name, term in own if term != label]
    return f"{label} ({', '.join(others)})" if others else str(label)


def take_from_record(record: dict[str, Any], root: Path) -> Take:
    """A Take from a sidecar that results.scan_results accepted."""
    image = record["image"]
    label = expression_words(record)
    method = record.get("method")
    fusion = record.get("fusion")
    strip = _inside(root, fusion.get("mask_strip")) if isinstance(fusion, dict) else None
    qa = record.get("qa")
    random_weights = made_by_random_weights(record)  # the model's or any identity's face models (random_mark.py)
    return Take(
        shot_id=record["shot_id"], take=record["take"], job_key=record["job_key"],
        seed=_count(record.get("seed")),
        prompt=str(record.get("prompt") or ""),
        characters=tuple(str(c) for c in record.get("characters") or []),
        expression=str(label) if label else None,
        framing=str(record["framing"]) if record.get("framing") else None,
        method=str(method.get("name")) if isinstance(method, dict) and method.get("name") else None,
        image=image["path"], sidecar=record["sidecar"]["path"],
        width=_count(image.get("width")) or None, height=_count(image.get("height")) or None,
        image_sha256=str(image.get("sha256") or ""),
        mask_strip=strip, qa=qa if isinstance(qa, dict) else None, record=record, random_weights=random_weights)


def default_take(takes: list[Take]) -> Take | None:
    """The take that stands for a shot nobody picked: the first (lowest-numbered) take identity QA did not flag,
    else the first take. A retake round (``render --retake-flagged``) adds takes until one passes, and this is
    the one that passed; a shot rendered as variations (``takes: 3``) stands as its take 1, as on set."""
    ordered = sorted(takes, key=lambda take: take.take)
    return next((take for take in ordered if not take.flags), ordered[0] if ordered else None)


@dataclass
class Shot:
    id: str
    takes: list[Take]
    entry: ShotEntry | None  # None: not in the shot list (any more)
    selected: Take | None = None
    # the selected take was re-rendered since it was picked, or its record is damaged (pick_standing.RE_RENDERED)
    selection_stale: bool = False
    # The job key as selects.json records it, whatever its type: pick_standing.py judges it (a damaged one too).
    picked_key: Any = field(default=None, repr=False)
    # The take picked when it is not rendered now (its image file deleted) while another of the shot list's takes holds
    # the image picked (``selected`` is None): every command follows the pick there (pick_standing.select_shown).
    unrendered_pick: int | None = None

    @property
    def picked_take(self) -> int | None:
        """The take number selects.json names for the shot (rendered or not, ``unrendered_pick``); None: no pick."""
        return self.selected.take if self.selected is not None else self.unrendered_pick

    @property
    def selection_damaged(self) -> bool:
        """The select reads as re-rendered (``selection_stale``) because its record in selects.json is damaged, not
        because its take changed: said in those words (pick_standing.DAMAGED_RECORD), as the notes say it."""
        from .pick_standing import has_damaged_key

        return self.selection_stale and has_damaged_key(self.picked_key)

    @property
    def chosen(self) -> Take | None:
        """The director's select, else ``default_take``, among all the shot's takes. Where one take stands for the
        shot (the contact sheet, the animatic, printed boards, ``idcli deliver``) it is ``export.shown_take``, which
        also keeps to the shot list's takes and follows the picked image to the take holding it now."""
        return self.selected or default_take(self.takes)

    @property
    def all_flagged(self) -> bool:
        return bool(self.takes) and all(t.flags for t in self.takes)


@dataclass
class Run:
    root: Path
    shots: list[Shot]
    order: ShotOrder | None
    problems: list[str] = field(default_factory=list)

    @property
    def takes(self) -> list[Take]:
        return [take for shot in self.shots for take in shot.takes]

    @property
    def project(self) -> str:
        return self.order.project if self.order and self.order.project else self.root.name

    @property
    def render_command(self) -> str:
        """``idcli render SHOTS --out OUT`` for this folder, quoted for a shell: the render a note suggests is a command
        to run as it stands (``SHOTS.yaml`` when the folder does not know its shot list). Without its ``--out`` a
        shot list renders into ``renders/<project>``, another folder. Paths as typed from the current folder
        (``shots.yaml``, not the absolute path the manifest records) when that is shorter."""
        shots = shell_path(self.order.path) if self.order is not None and self.order.path is not None else \
            "SHOTS.yaml"
        return f"idcli render {shots} --out {shell_path(self.root)}"


def refuse_delivery_folder(root: Path) -> None:
    """Refuse a delivery folder (``idcli deliver``'s DEST, holding delivery.json) where a render's output folder is
    read: it holds copies of the picked takes, no renders, so review, select, export, evaluate and qa have nothing to
    read there. Told "no committed renders found; render a shot list into it", an editor given the delivery was sent
    to a render that refuses a delivery folder; and ``qa`` took the folder's lock first, leaving ``.idcli/lock`` among
    the files to send on. Checked before anything is written there."""

    from ..delivery_checks import refuse_read_as_output_folder

    refuse_read_as_output_folder(root, "; give the output folder the takes were delivered from (idcli verify "
                                 f"{shell_path(root)} checks the delivery itself)")


def load_run(out_dir: str | Path, shots_file: Path | None = None, *, require_renders: bool = True) -> Run:
    """Read an output folder; damaged sidecars become ``problems`` (the rest is still used)."""
    from ..results import scan_results
    from .pick_standing import PickStanding, pick_standing, takes_holding
    from .selects import read_selects

    root = Path(out_dir)
    check_out_dir_is_folder(root)
    refuse_delivery_folder(root)
    order = read_order(root, shots_file)
    scan = scan_results(root)
    problems = list(scan.problems)
    by_shot: dict[str, list[Take]] = {}
    for record in scan.records:
        try:
            take = take_from_record(record, root)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{record['sidecar']['path']}: unexpected content ({exc})")
            continue
        by_shot.setdefault(take.shot_id, []).append(take)
    if require_renders and not by_shot:
        more = f" ({len(problems)} damaged sidecar(s))" if problems else ""
        raise InputError(f"{root}: no committed renders found{more}" + (
            inside_output_folder(root) or "; render a shot list into it first (idcli render FILE --out DIR)"),
            file=root)
    ids = [s.id for s in order.shots] if order else []
    extra = sorted(set(by_shot) - set(ids))
    shots = []
    for shot_id in [*ids, *extra]:
        takes = sorted(by_shot.get(shot_id, []), key=lambda t: t.take)
        shots.append(Shot(shot_id, takes, order.get(shot_id) if order else None))
    try:
        selects = read_selects(root)
    except InputError as exc:  # a damaged selects.json costs the selection, not the page
        problems.append(f"{exc}; shown without selections")
        selects = {}
    live: set[tuple[str, int]] | None = None
    for shot in shots:
        pick = selects.get(shot.id)
        if pick is None:
            continue
        match = next((t for t in shot.takes if t.take == pick["take"]), None)
        if match is None:
            if live is None and order is not None:  # read once, only for a pick of a take not rendered
                from .export import standing_takes

                live = standing_takes(Run(root, shots, order))
            keys, cut = {t.take: t.job_key for t in shot.takes}, live if shot.entry is not None else None
            if takes_holding(shot.id, pick["take"], pick.get("job_key"), keys, cut):
                # Its image file deleted, while another take holds the image picked: select moves the pick there, and
                # until it runs every command shows that take as the select, said (as for a re-rendered take).
                shot.unrendered_pick, shot.picked_key = pick["take"], pick.get("job_key")
                continue
            problems.append(f"selects.json: {shot.id} take {pick['take']} is no longer rendered; selection ignored")
            continue
        shot.selected = match
        shot.picked_key = pick.get("job_key")
        shot.selection_stale = pick_standing(shot.id, match.take, shot.picked_key,
                                             match.job_key) is PickStanding.RE_RENDERED
    return Run(root, shots, order, problems)
