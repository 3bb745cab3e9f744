"""The director's selects: one chosen take per shot, kept in ``OUT/selects.json``.

``idcli select OUT SHOT=TAKE ...`` checks every pick against the committed takes before anything is
written, merges the picks into the file and writes it atomically (a lock file serialises two
``select`` commands; a render running on the folder is not disturbed). Each pick records the job key
of the take chosen, so the review can say when a take was re-rendered after it was picked.

``OUT/selects.json``::

    {"schema": 1, "selects": {"sc01_sh010": {"take": 2, "job_key": "idcli-job-v1:…", "selected": "…"}}}
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import InputError, OutputError
from ..lock_wait import lock_waiting
from ..option_words import Option
from ..shared_files import created_mode, make_folders, refused_to_write, share_created
from ..shell_words import shell_path

if TYPE_CHECKING:
    from .picks_file import PicksFile

SELECTS = "selects.json"
SELECTS_SCHEMA = 1
MAX_SELECTS_BYTES = 16 * 1024 * 1024
# A refusal lists this many of its picks' problems, then how many more: a picks.json of 200,000 unknown shots listed
# them all (14 MB on one line), each with a did-you-mean costing a scan of every shot (9 hours against 2,000 shots).
PROBLEMS_SHOWN = 20
_PICK = re.compile(r"(?P<shot>[^=]+)=(?P<take>t?\d{1,4}|none)", re.IGNORECASE)


class Selects(dict[str, dict[str, Any]]):
    """Every pick after a ``select`` (shot id -> pick), and ``notes``: what became of the picks already in
    selects.json that point at no committed take (dropped, or kept while their image is kept aside), or whose take
    was re-rendered since or left the shot list, one line each, so that a caller from Python sees what the command
    prints."""

    def __init__(self, picks: dict[str, dict[str, Any]] | None = None, notes: list[str] | None = None,
                 changed: list[str] | None = None) -> None:
        super().__init__(picks or {})
        self.notes = notes if notes is not None else []  # Selects() is an empty dict, as dict() is
        # What the picks given changed in selects.json, one entry per shot ("sh010=t2 (was t1)", "sh030 cleared
        # (was t1)"); picks given as they were already recorded are not in it.
        self.changed = changed if changed is not None else []


def read_selects(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Shot id -> pick; empty when there is no selects.json. A damaged file is an InputError."""
    from ..safeio import NotRegularFile, read_regular

    path = Path(out_dir) / SELECTS
    try:
        raw = read_regular(path, MAX_SELECTS_BYTES, follow_links=False)
    except NotRegularFile as exc:
        if exc.kind == "missing":
            return {}
        raise InputError(f"{path}: cannot read it ({exc.kind})", file=path) from None
    try:
        data = json.loads(raw.decode("utf-8"))
        picks = data["selects"]
        if not isinstance(picks, dict) or not all(
                isinstance(v, dict) and type(v.get("take")) is int for v in picks.values()):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):  # nesting past Python's stack
        raise InputError(f"{path}: damaged (expected {{\"schema\": 1, \"selects\": {{SHOT: {{\"take\": N}}}}}}); "
                         "fix or delete it and select again", file=path) from None
    return picks


def parse_pick(text: str) -> tuple[str, int | None]:
    """``SHOT=TAKE`` (TAKE: ``2``, ``t2``, or ``none`` to clear) -> (shot, take or None)."""
    match = _PICK.fullmatch(text.strip())
    if not match:
        raise InputError(f"'{text}': write SHOT=TAKE, e.g. sc01_sh010=2 (or SHOT=none to clear a pick)")
    take = match.group("take").lower()
    return match.group("shot"), None if take == "none" else int(take.lstrip("t"))


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    state = out_dir / ".idcli"
    if state.is_symlink():
        raise InputError(f"{state} is a symbolic link; idcli never writes through links in the output folder")
    try:
        make_folders(state)
        # Every select opens it read-write: group-writable in a folder a team shares (shared_files.py).
        fd = os.open(state / "selects.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, created_mode(state))
        share_created(fd, state)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW refused a link planted there: as the folder's lock says it
            raise OutputError(f"{state / 'selects.lock'} is a symbolic link; refusing to use it",
                              file=state / "selects.lock") from None
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        from ..store import not_writable

        # A lock another user made and this one may not open: whose it is and what to fix, as for the folder's lock.
        raise (refused_to_write(state / "selects.lock", exc, out_dir, "idcli select's lock")
               or not_writable(out_dir, exc, then=f": the picks go into {out_dir / 'selects.json'}")) from None
    try:
        lock_waiting(fd, f"another idcli select on {out_dir} to finish")
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _orphan_problem(shot: str, take: int, live: set[tuple[str, int]]) -> str:
    """Why an orphan take cannot be picked, and how to pick it after all."""
    kept = sorted(t for s, t in live if s == shot)
    if not kept:
        return (f"{shot}={take}: an orphan: shot {shot} is no longer in the shot list this folder was last "
                f"rendered from (its images are kept); put the shot back in the shot list and render (its done "
                "takes are found, not rendered again) to pick it")
    return (f"{shot}={take}: take {take} is an orphan: beyond the shot's takes in the shot list this folder was "
            f"last rendered from (takes of {shot} there: {', '.join(map(str, kept))}); pick one of those, or "
            f"raise the shot's takes: to {take} and render (the take is found done, not rendered again)")


def _carry_forward(root: Path, current: dict[str, dict[str, Any]], committed: dict[str, dict[int, str]],
                   notes: list[str], live: set[tuple[str, int]] | None = None) -> dict[str, dict[str, Any]]:
    """The picks already in selects.json worth writing again, saying in ``notes`` what is dropped or kept and why.

    A pick whose take no longer holds the image picked (re-rendered, beyond the shot's takes, or not rendered)
    while another take of the shot holds it (the same job key: the shot's takes shifted when a seed was inserted, and
    render reused the image there) moves to that take, the first of several alike (pick_standing.followed_take, the
    take every command shows as the select), its key and time kept, and a note says so: the director picked those
    pixels. A pick of a committed take is kept; when that take was re-rendered since it was
    picked, or is an orphan (its shot renamed or removed from the shot list ``live`` holds, or the take beyond its
    takes), a note says so: a pick made yesterday must not pass for one of today's images. One of a take not
    rendered now (a hand edit, a deleted image, a re-render that failed after moving the picked image aside) is kept
    while the picked image is kept in ``.idcli/superseded`` (``idcli restore`` puts it back) and dropped otherwise:
    review could only ignore it."""

    from ..errors import printable
    from ..kept_files import key_label
    from ..kept_versions import kept_render_of
    from .pick_standing import followed_take, held_words, takes_holding

    carried = {}
    live_shots = {s for s, _take in live} if live is not None else set()  # once, not per pick: a film has thousands
    for shot, pick in current.items():
        take, job_key, named = pick["take"], pick.get("job_key"), printable(shot)  # a hand edit's key, one line
        keys = committed.get(shot, {})
        stands = keys.get(take) == job_key and (live is None or (shot, take) in live)
        holding = [] if stands else takes_holding(shot, take, job_key, keys, live)
        if (followed := followed_take(holding)) is not None:  # the picked image, at another take: the pick follows it
            carried[shot] = {**pick, "take": followed}
            notes.append(f"selects.json: {named}=t{take} moved to t{followed}: {held_words(take, holding)}"
                         + (f" (idcli select {shell_path(root)} {named}=N picks another of them)"
                            if len(holding) > 1 else ""))
            continue
        if take in committed.get(shot, {}):
            carried[shot] = pick
            said = _standing_note(root, shot, named, take, job_key, committed[shot][take], live, live_shots)
            if said:
                notes.append(said)
            continue
        aside = kept_render_of(root, f"{shot}_t{take}", job_key) if isinstance(job_key, str) else None
        if aside is None:
            notes.append(f"selects.json: dropped {named}=t{take}: no take {take} of {named} is rendered, none kept "
                         "aside")
            continue
        carried[shot] = pick
        notes.append(f"selects.json: kept {named}=t{take}, not rendered now: the picked image is kept aside; idcli "
                     f"restore {shell_path(root)} {named}_t{take} --key {key_label(job_key)} puts it back")
    return carried


def _standing_note(root: Path, shot: str, named: str, take: int, picked_key: Any, now_key: str,
                   live: set[tuple[str, int]] | None, live_shots: set[str]) -> str | None:
    """What the artist should know of a pick kept in selects.json whose take is rendered: it belongs to a shot no
    longer in the shot list (or a take beyond its takes), or the take was re-rendered since it was picked (or its
    recorded key is damaged); None when the pick stands as made (pick_standing.py decides). A pick whose image
    another take holds has moved there (_carry_forward): it is none of these."""

    from .pick_standing import DAMAGED_RECORD, PickStanding, has_damaged_key, pick_standing

    folder = shell_path(root)
    standing = pick_standing(shot, take, picked_key, now_key, listed=shot in live_shots if live is not None else None,
                             live=live)  # an orphan: said so; _pick_problem refuses to pick one
    if standing is PickStanding.SHOT_GONE:
        return (f"selects.json: {named}=t{take} is of a shot no longer in the shot list (renamed or removed); "
                f"kept, but review, export and deliver leave the shot out (idcli select {folder} {named}=none "
                "clears it)")
    if standing is PickStanding.BEYOND_TAKES:
        return (f"selects.json: {named}=t{take} is beyond the shot's takes in the shot list now; pick one of its "
                f"takes (idcli select {folder} {named}=N)")
    if standing is PickStanding.RE_RENDERED and has_damaged_key(picked_key):
        return (f"selects.json: {named}=t{take}: {DAMAGED_RECORD}: review and export show take {take} as rendered "
                f"now; look again and pick (idcli select {folder} {named}=N)")
    if standing is PickStanding.RE_RENDERED:
        return (f"selects.json: {named}=t{take} was re-rendered since it was picked (its prompt, settings or a "
                f"character's selfies changed): review and export show take {take} as rendered now; look again and "
                f"pick (idcli select {folder} {named}=N)")
    return None


def select(out_dir: str | Path, picks: Sequence[str] | str | None = None, notes: list[str] | None = None, *,
           from_file: str | Path | None = None, force: bool = False) -> Selects:
    """Record picks (validated against the committed takes, all or nothing); returns every pick, with ``.notes``.

    ``picks``: ``"SHOT=TAKE"`` lines, or one such string (one pick, not its letters).

    ``notes``: when given, a list that also gets what became of the picks already in the file that point at no
    committed take, and which of them were re-rendered since they were picked or are orphans (see
    ``_carry_forward``), one line each: the returned picks' ``.notes``.

    ``from_file``: a ``picks.json`` the storyboard page exported (idcli/review/picks_file.py), checked like
    ``picks`` and besides: a pick whose job key is not the committed take's (the take was re-rendered since
    the director looked at it) is refused unless ``force``; one whose render seen another take of the shot holds
    now (the shot's takes shifted) is recorded at that take, the first of several alike, said in the notes
    (``_followed``). Picks given in
    ``picks`` win over the file's.
    ``force`` without ``from_file`` is an InputError: it would change nothing."""
    from ..arguments import check_out_dir, check_out_dir_is_folder, inside_output_folder, shown
    from ..provenance import now
    from ..results import live_takes, scan_results

    root = check_out_dir(out_dir)
    # Type checks first, as every public function: a wrong type is an InputError naming the argument, never an
    # AttributeError from deep inside (notes="x" had no .extend).
    if notes is not None and not isinstance(notes, list):
        raise InputError(f"notes={shown(notes)}: give a list the notes are added to, or None", field="notes")
    if from_file is not None and not (isinstance(from_file, (str, os.PathLike)) and os.fspath(from_file)):
        raise InputError(f"from_file={shown(from_file)}: give the picks file as a str or pathlib.Path",
                         field="from_file")
    if not isinstance(force, bool):
        raise InputError(f"force={shown(force)}: give True or False", field="force")
    if force and from_file is None:  # a pick in ``picks`` is of the take as rendered now: force would change nothing
        raise InputError("force=True: it records from_file picks of takes re-rendered since the page was exported, "
                         "or of another project's page; give from_file, or leave force out", field="force")
    check_out_dir_is_folder(root)
    from .runs import refuse_delivery_folder

    refuse_delivery_folder(root)
    if isinstance(picks, str):
        picks = [picks]
    if picks is not None and not (isinstance(picks, (list, tuple)) and all(isinstance(p, str) for p in picks)):
        raise InputError(f"picks={picks!r:.60}: give 'SHOT=TAKE' strings, e.g. ['sc01_sh010=2']", field="picks")
    parsed = [_Pick(*parse_pick(p), None, "") for p in picks or []]
    if from_file is not None:
        from .picks_file import read_picks_file

        exported = read_picks_file(from_file)
        _check_project(root, exported, force)
        given = {pick.shot for pick in parsed}  # a command-line pick wins: the file's pick of its shot is not used
        parsed = [_Pick(p.shot, p.take, p.key, f"{exported.name}: ") for p in exported.picks
                  if p.shot not in given] + parsed
    if not parsed:
        raise InputError("give at least one SHOT=TAKE",
                         *((" or ", Option("from_file", "picks.json", flag="--from")) if from_file is None else ()))
    committed: dict[str, dict[int, str]] = {}
    for record in scan_results(root).records:
        committed.setdefault(record["shot_id"], {})[record["take"]] = record["job_key"]
    if not committed:
        raise InputError(f"{root}: no committed renders to select from{inside_output_folder(root)}", file=root)
    # The shot list the folder was last rendered from (its manifest; None before idcli kept one): a take of a
    # shot it no longer has, or beyond the shot's takes, is an orphan: kept on disk, no part of the shot list.
    live = live_takes(root, None)
    followed: list[str] = []  # the file's picks recorded at the take showing the render the director saw
    parsed = [_followed(pick, committed, live, followed) for pick in parsed]
    problems: dict[_Pick, tuple[Any, ...]] = {}  # each problem's message parts (option_words.py)
    for pick in parsed:  # a did-you-mean (a scan of every shot) for the problems shown only
        if problem := _pick_problem(root, pick, committed, live, force, suggest=len(problems) < PROBLEMS_SHOWN):
            problems[pick] = problem if isinstance(problem, tuple) else (problem,)
    if problems:
        rest = _the_rest(root, parsed, problems) if from_file is not None else ""
        listed = list(problems.values())
        listed_parts = [part for n, parts in enumerate(listed[:PROBLEMS_SHOWN])
                        for part in (("; ",) if n else ()) + parts]
        more = [f"; and {len(listed) - PROBLEMS_SHOWN} more"] if len(listed) > PROBLEMS_SHOWN else []
        raise InputError(*listed_parts, *more, "; nothing was changed" + rest)
    with _locked(root):
        from ..safeio import remove_dead_temporaries

        remove_dead_temporaries(root)  # a select killed mid-write left .selects.json.PID-START.HEX.idcli-tmp here
        picked_now = {pick.shot for pick in parsed}
        before = read_selects(root)
        earlier = {shot: pick for shot, pick in before.items() if shot not in picked_now}
        said: list[str] = list(followed)
        current = _carry_forward(root, earlier, committed, said, live)
        for pick in parsed:
            if pick.take is None:
                current.pop(pick.shot, None)
                continue
            job_key = committed[pick.shot][pick.take]
            kept = before.get(pick.shot)
            if kept and kept.get("take") == pick.take and kept.get("job_key") == job_key:
                current[pick.shot] = kept  # picked again as it was (an exported page's unchanged picks): when it was
            else:
                current[pick.shot] = {"take": pick.take, "job_key": job_key, "selected": now().isoformat()}
        changed = _changes(before, current, [pick.shot for pick in parsed])
        data = {"schema": SELECTS_SCHEMA, "selects": dict(sorted(current.items()))}
        target = root / SELECTS
        if target.is_symlink():
            raise InputError(f"{target} is a symbolic link; idcli never writes through links in the output folder")
        from ..store import atomic_write

        atomic_write(target, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    if notes is not None:
        notes.extend(said)
    return Selects(current, said, changed)


def _changes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], shots: list[str]) -> list[str]:
    """What the picks of ``shots`` changed from ``before`` to ``after``, one line per shot changed, in the order
    given: a new pick, another take, the same take as rendered now, a select cleared."""
    from ..errors import printable

    lines = []
    for shot in dict.fromkeys(shots):  # each shot once, in the order given
        old, new, named = before.get(shot), after.get(shot), printable(shot)
        if old == new:
            continue
        if new is None:
            lines.append(f"{named} cleared (was t{old['take']})" if old else f"{named} cleared")
        elif old is None:
            lines.append(f"{named}=t{new['take']} (new)")
        elif old.get("take") == new["take"]:
            lines.append(f"{named}=t{new['take']} (the take as rendered now)")
        else:
            lines.append(f"{named}=t{new['take']} (was t{old['take']})")
    return lines


class _Pick(NamedTuple):
    shot: str
    take: int | None  # None clears the shot's select
    seen: str | None  # from a picks file: the take's key as the director saw it (picks_file.seen_key)
    source: str  # what a problem starts with: '' for the command line, 'picks.json: ' for a file


def _pick_problem(root: Path, pick: _Pick, committed: dict[str, dict[int, str]], live: set[tuple[str, int]] | None,
                  force: bool, *, suggest: bool = True) -> str | tuple[Any, ...] | None:
    """Why ``pick`` cannot be recorded (a message, or its parts where it names an argument), or None (``suggest``:
    with a did-you-mean for an unknown shot)."""
    from ..errors import printable
    from ..kept_files import key_label
    from ..suggest import did_you_mean
    from .picks_file import seen_key

    shot, take, named = pick.shot, pick.take, printable(pick.shot)
    if shot not in committed:
        hint = did_you_mean(shot, committed) if suggest else ""
        return f"{pick.source}{named}: no rendered shot of that id in {root}" + (f" ({hint})" if hint else "")
    if take is None:
        return None
    if take not in committed[shot]:
        have = ", ".join(str(t) for t in sorted(committed[shot]))
        return f"{pick.source}{named}={take}: no take {take} is rendered (rendered takes: {have})"
    if live is not None and (shot, take) not in live:
        return pick.source + _orphan_problem(shot, take, live)
    now_key = committed[shot][take]
    if pick.seen is not None and pick.seen != seen_key(now_key) and not force:
        return (f"{pick.source}{named}={take}: take {take} was re-rendered since the picks were made (picked as "
                f"{pick.seen[:12]}, rendered now {key_label(now_key)}): have it looked at again on the rewritten "
                "page (idcli review), or ", Option("force", True), " to pick the take as rendered now")
    return None


def _followed(pick: _Pick, committed: dict[str, dict[int, str]], live: set[tuple[str, int]] | None,
              notes: list[str]) -> _Pick:
    """A picks file's pick whose take no longer shows the render the director saw (re-rendered, beyond the shot's
    takes, not rendered) while another take of the shot shows it: the pick of that take, the first of several alike
    (pick_standing.followed_take, as _carry_forward moves a recorded pick), said in ``notes`` (the shot's takes
    shifted when a seed was inserted, and render reused the image there: the director picked those pixels, whatever
    ``force``). Else the pick as given, checked as ever."""
    from ..errors import printable
    from .pick_standing import followed_take, held_words, takes_holding
    from .picks_file import seen_key

    keys = committed.get(pick.shot)
    if pick.seen is None or pick.take is None or keys is None:
        return pick
    shown = pick.take in keys and seen_key(keys[pick.take]) == pick.seen
    if shown and (live is None or (pick.shot, pick.take) in live):
        return pick  # the take shows what the director saw
    holding = takes_holding(pick.shot, pick.take, pick.seen, {take: seen_key(key) for take, key in keys.items()}, live)
    if (followed := followed_take(holding)) is None:
        return pick
    named = printable(pick.shot)
    notes.append(f"{pick.source}{named}={pick.take} recorded as {named}={followed}: "
                 f"{held_words(pick.take, holding)}")
    return pick._replace(take=followed)


def _the_rest(root: Path, parsed: list[_Pick], refused: dict[_Pick, tuple[Any, ...]]) -> str:
    """How to record a refused picks file's picks that check out, alone: the director's other picks need not wait
    for the shot the artist re-rendered or took out of the shot list meanwhile (nor the JSON edited by hand)."""
    import shlex

    bad = {pick.shot for pick in refused}
    rest = {pick.shot: pick.take for pick in parsed if pick.shot not in bad}  # a later pick of a shot wins
    if not rest:
        return ""
    words = [f"{shot}={'none' if take is None else take}" for shot, take in rest.items()]
    return (f"; its other {len(rest)} pick{'s' if len(rest) > 1 else ''} check{'' if len(rest) > 1 else 's'} out: "
            f"record them alone with idcli select {shell_path(root)} {shlex.join(words)}")


def _check_project(root: Path, exported: PicksFile, force: bool) -> None:
    """A picks file exported from another project's page is refused (unless forced): its shot ids and takes may
    well exist here too, and would be recorded for the wrong film. The folder's projects as render and plan read
    them (``folder_projects``: the manifest, else the sidecars), so a folder whose manifest was lost is checked
    too."""
    from ..errors import printable
    from ..folder_projects import folder_projects
    from ..store import OutputStore

    project = exported.project
    if force or project is None:
        return
    here = folder_projects(OutputStore(root))
    if not here or project in here:
        return
    raise InputError(f"{exported.shown}: picks of project '{printable(project):.80}', but {root} holds renders of "
                     f"project '{printable(sorted(here)[0]):.80}'; give this project's picks (or ",
                     Option("force", True), ")",
                     file=exported.path, field="project")
