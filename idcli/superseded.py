"""Renders that a newer render replaced are kept, never lost: moved aside, listed, restorable.

Before a job's new image is committed, whatever idcli image and sidecar sit at its final paths (the
take the director liked, before a prompt edit; an image retouched by hand and re-rendered with
``--force``; another project's take of the same shot id) are moved to::

    OUT/.idcli/superseded/<shot_id>/<shot_id>_t<take>.<key>.png   (and .json, .mask.png)

where ``<key>`` is the first 12 hex digits of the old job key (``unkeyed`` when the image carried
none). Each move is one ``rename`` in the same file system, the image before its sidecar, so a run
killed at any instant leaves every old file either at its final path or in ``superseded/``: the next
commit moves a sidecar left behind to the same name as its image, and an image a killed restore moved back without
its sidecar back to its sidecar's name. ``idcli restore`` moves a version
back (the current take moving aside in its place, so a restore can be undone the same way), by renames too, after a
``restore-begin`` journal line naming it: a restore killed at any instant, even after its last rename (its ``restore``
line not written), is finished by its rerun: a take split between two renames is rejoined (a sidecar and a mask moved
to their image, matched by sha256), the version the line names is put back unless it is back already, and the
``restore`` line is journalled.

Their order, "the most recently superseded", is the journal's: every move aside is a line (``supersede``'s ``as``,
``restore``'s ``moved_aside``, and for a restore killed before that line its ``restore-begin``'s ``aside``) and the
journal travels with the folder, where no copy keeps a file's change time
(``cp -a``, ``rsync -a``, tar, a sync client set it to the copy's). A version the journal does not name (a journal
deleted, cut short or damaged) is ordered by its files' change time, as before.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import safeio
from .arguments import check_not_inside_output_folder, check_out_dir_is_folder
from .errors import InputError, OutputError
from .option_words import Option
from .paths import absolute
from .shared_files import make_folders, refused_to_move

SUPERSEDED = Path(".idcli") / "superseded"
MAX_SIDECAR_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"^(?P<stem>(?P<shot>.+)_t(?P<take>\d+))\.(?P<key>[0-9a-f]{12}|unkeyed)(?:\.(?P<n>\d+))?"
                   r"(?P<ext>\.mask\.png|\.png|\.json)$")


def key_label(job_key: str | None) -> str:
    """The file-name form of a job key: its first 12 hex digits."""
    if not job_key or ":" not in job_key:
        return "unkeyed"
    digest = job_key.split(":", 1)[1][:12]
    return digest if re.fullmatch(r"[0-9a-f]{12}", digest) else "unkeyed"


def read_sidecar_file(path: Path) -> dict[str, Any] | None:
    """A sidecar's JSON (bounded read, never through a link), or None."""
    try:
        raw = safeio.read_regular(path, MAX_SIDECAR_BYTES, follow_links=False)
        data = json.loads(raw.decode("utf-8"))
    except (safeio.NotRegularFile, ValueError, RecursionError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _png_key(path: Path) -> str | None:
    from .store import png_record_of_fd

    try:
        fd = safeio.open_regular(path, follow_links=False)
    except safeio.NotRegularFile:
        return None
    try:
        if os.fstat(fd).st_size > 256 * 1024 * 1024:
            return None
        record = png_record_of_fd(fd)  # a damaged file is simply not keyed (None)
    finally:
        os.close(fd)
    key = record.get("job_key") if record else None
    return key if isinstance(key, str) else None


def is_whole_image(path: Path) -> bool:
    """Whether ``path`` is a regular file holding a complete image (decoded within a pixel budget).

    Tells an image edited by hand (whole: kept unless forced) from one damaged or cut short (rendered
    again). Only images whose bytes differ from their sidecar are ever asked about.
    """
    from .identity.images import ImageError, load_take_rgb, read_image_file

    try:
        fd = safeio.open_regular(path, follow_links=False)  # never a link, a FIFO or a device
        os.close(fd)
        load_take_rgb(path, read_image_file(path))
    except (safeio.NotRegularFile, ImageError, OSError):
        return False
    return True


def _is_regular(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink()
    except OSError:
        return False


def _free_name(folder: Path, base: str, exts: tuple[str, ...]) -> str:
    """``base`` unless one of its files exists already, then ``base.2``, ``base.3``, ..."""
    candidate, n = base, 1
    while any((folder / f"{candidate}{ext}").exists() for ext in exts):
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def _move(source: Path, target: Path) -> None:
    try:
        make_folders(target.parent)
        os.rename(source, target)
        safeio.fsync_dir(target.parent)
    except OSError as exc:
        raise (refused_to_move(source, target, exc)
               or OutputError(f"cannot move {source} aside to {target}: {exc.strerror or exc}")) from None


def _aside_names(root: Path, shot_id: str, stem: str, image_rel: str,
                 sidecar_rel: str) -> tuple[str, str] | None:
    """The base names ``move_aside`` gives the files at a job's final paths now: (the image's and mask's, the
    sidecar's), the same but for a lone sidecar whose name is taken; None when nothing would move."""
    image, sidecar = root / image_rel, root / sidecar_rel
    has_image, has_sidecar = _is_regular(image), _is_regular(sidecar)
    if not (has_image or has_sidecar):
        return None
    folder = root / SUPERSEDED / shot_id
    base = f"{stem}.{key_label(_take_key(image, sidecar))}"
    if has_image:
        # An image whose sidecar is kept without it (a restore killed between moving them back) goes back beside it.
        rejoined = None if has_sidecar else _kept_sidecar_of(root, shot_id, stem, image)
        base = rejoined or _free_name(folder, base, (".png", ".json", ".mask.png"))
    # A lone sidecar (a kill between two moves) joins its image kept under the same base name, unless taken; with
    # the take's mask when that is left too (killed right after the image moved), to a name free for both: the mask
    # went to ``base``, renamed over the mask of a version kept under it.
    with_mask = not has_image and _is_regular(root / shot_id / f"{stem}.mask.png")
    exts = (".json", ".mask.png") if with_mask else (".json",)
    sidecar_base = _free_name(folder, base, exts) if has_sidecar else base
    return base, sidecar_base


def _kept_sidecar_of(root: Path, shot_id: str, stem: str, image: Path) -> str | None:
    """The name of the version of take ``stem`` kept as a sidecar alone whose image is ``image``: where a restore
    killed after moving that version's image back, before its sidecar, left it; else None. A commit moving such an
    image aside made it ``NAME.2``, away from its sidecar: two halves, neither restorable nor reused. Matched by the
    image sha256 the sidecar records, else by the one the pending restore's ``restore-begin`` line recorded: a version
    retouched by hand (kept by ``render --force``) has other bytes than its sidecar records, the render's."""
    lone = [(name, item) for (_folder, name), item in _scan_kept(root, stem, shot_id).items()
            if ".json" in item and ".png" not in item]
    have = safeio.sha256_regular(image) if lone else None
    if have is None:
        return None
    for name, item in lone:
        if _recorded_image_sha256(Path(root) / item[".json"]) == have:
            return name
    from .store import OutputStore

    take = stem[len(shot_id) + 2:]  # stem is SHOT_tN
    begun = _begun_restore(OutputStore(root), shot_id, int(take)) if take.isdigit() else None
    if begun is not None and begun.sha256 == have and any(name == begun.name for name, _item in lone):
        return begun.name
    return None


def _take_key(image: Path, sidecar: Path) -> str | None:
    """The job key a take's files carry, whose label names them when moved aside: the sidecar's, else the PNG's."""
    record = read_sidecar_file(sidecar) if _is_regular(sidecar) else None
    key = record.get("job_key") if record else None
    if not isinstance(key, str):
        key = _png_key(image) if _is_regular(image) else None
    return key if isinstance(key, str) else None


def aside_name(root: Path, shot_id: str, stem: str, image_rel: str, sidecar_rel: str) -> str | None:
    """The name ``move_aside`` would keep the files at a job's final paths under now (what it returns), or None
    when nothing would move: known before any rename, so a command killed part-way can have named it already."""
    names = _aside_names(root, shot_id, stem, image_rel, sidecar_rel)
    return names[1] if names is not None else None


def move_aside(root: Path, shot_id: str, stem: str, image_rel: str, sidecar_rel: str, mask_rel: str) -> str | None:
    """Move the files at a job's final paths into ``superseded/``; the base name used (``aside_name``'s), or None
    if nothing moved.

    Only regular files move: a link or a special file planted there is left for the commit to refuse
    or replace, as before.
    """
    names = _aside_names(root, shot_id, stem, image_rel, sidecar_rel)
    if names is None:
        _move_stray_mask(root, shot_id, stem, root / mask_rel)
        return None
    base, sidecar_base = names
    image, sidecar, mask = root / image_rel, root / sidecar_rel, root / mask_rel
    folder = root / SUPERSEDED / shot_id
    # Image first, then its mask, then the sidecar (the commit marker, last as when committing): a kill
    # between two moves leaves a lone sidecar, moved under the same base name by the next commit.
    has_image = _is_regular(image)
    if has_image:
        _move(image, folder / f"{base}.png")
    if _is_regular(mask):  # beside the image moved, else with the sidecar left alone (_aside_names)
        _move(mask, folder / f"{base if has_image else sidecar_base}.mask.png")
    if _is_regular(sidecar):
        _move(sidecar, folder / f"{sidecar_base}.json")
    return sidecar_base


def _move_stray_mask(root: Path, shot_id: str, stem: str, mask: Path) -> None:
    """Move a mask found at a take's final path with neither its image nor its sidecar there out of the way, to
    ``superseded/<shot_id>/<stem>.uncommitted[.N].mask.png``.

    Only a commit killed after writing its ``--save-masks`` mask, before its image, leaves one: ``move_aside`` and
    ``put_back`` move an image before its mask, and a lone sidecar stays with a mask left. Left there, the take that
    next went to those paths (a restored version, a render without ``--save-masks``) kept a mask of an image never
    committed beside it. It is kept, not deleted (nothing idcli finds is deleted), under a name no kept version can
    have: no version is listed, restored or reused for it."""
    if not _is_regular(mask):
        return
    folder = root / SUPERSEDED / shot_id
    _move(mask, folder / f"{_free_name(folder, f'{stem}.uncommitted', ('.mask.png',))}.mask.png")


@dataclass(frozen=True)
class SupersededVersion:
    """One earlier version of a take, kept in ``.idcli/superseded``."""

    shot_id: str
    take: int
    name: str  # the base name, <stem>.<key>[.n]
    job_key: str | None
    image: str | None  # paths relative to the output folder
    sidecar: str | None
    mask: str | None
    superseded_at: float  # when it was moved aside: its journal line's time, else its files' change time

    @property
    def stem(self) -> str:
        return f"{self.shot_id}_t{self.take}"

    def as_dict(self, root: Path) -> dict[str, Any]:
        from datetime import datetime, timezone

        def file(rel: str | None) -> dict[str, str] | None:
            return None if rel is None else {"path": rel, "abs_path": str(absolute(root) / rel)}

        return {"shot_id": self.shot_id, "take": self.take, "name": self.name, "job_key": self.job_key,
                "key": self.name.split(".", 1)[1] if "." in self.name else None,
                "superseded_at": datetime.fromtimestamp(self.superseded_at, timezone.utc).isoformat(),  # noqa: UP017
                "image": file(self.image), "sidecar": file(self.sidecar)}


def by_job(version: SupersededVersion) -> Hashable:
    """``list_superseded``'s ``order_among`` for a render: of one job's versions it puts back or reuses the newest."""
    return version.job_key or (version.shot_id, version.name)


def by_take(version: SupersededVersion) -> Hashable:
    """``list_superseded``'s ``order_among`` for ``restore``: by default it puts back the take's newest version."""
    return version.stem


def each_alone(version: SupersededVersion) -> Hashable:
    """``list_superseded``'s ``order_among`` for a caller that looks versions up by name: no order is needed."""
    return version.shot_id, version.name


def list_superseded(root: Path, stem: str | None = None, *,
                    order_among: Callable[[SupersededVersion], Hashable] | None = None) -> list[SupersededVersion]:
    """Every kept version in the output folder (of one take when ``stem`` is given), oldest first: in the order the
    journal moved them aside (``superseded_at``: its lines' times), a version it does not name by its files' change
    time, then by name.

    ``order_among`` (``by_job``, ``by_take``, ``each_alone``): the journal is read only for versions that share its
    value with another, those a caller chooses among; the others keep their files' change time (a render lists the
    kept versions every run, and a film's journal is tens of MB). Default: for every version (what a listing shows).
    """
    versions = []
    for (_folder, name), item in _scan_kept(root, stem).items():
        sidecar = item.get(".json")
        record = read_sidecar_file(Path(root) / sidecar) if sidecar else None
        key = record.get("job_key") if record else None
        versions.append(SupersededVersion(item["shot"], item["take"], name, key if isinstance(key, str) else None,
                                          item.get(".png"), sidecar, item.get(".mask.png"), item["time"]))
    if order_among is not None:
        shared = Counter(order_among(v) for v in versions)
        wanted = {(v.shot_id, v.name) for v in versions if shared[order_among(v)] > 1}
    else:
        wanted = {(v.shot_id, v.name) for v in versions}
    if wanted:
        moves = _journal_moves(Path(root), wanted)
        versions = [replace(v, superseded_at=moved) if (moved := moves.get((v.shot_id, v.name))) is not None else v
                    for v in versions]
    return sorted(versions, key=lambda v: (v.superseded_at, v.name))


def _journal_moves(root: Path, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], float | None]:
    """When each kept version in ``wanted`` (shot id, name) was moved aside: the time of the journal's newest line
    that moved a file aside under its name (``supersede``'s ``as``, ``restore``'s ``moved_aside``, ``restore-begin``'s
    ``aside``; never later than a version's moved aside by a later line: the lines' order is the moves'), or None when
    that line has no time idcli writes, or when a restore took
    that name out of superseded/ since (the file there now was moved aside by a line the journal lost). Versions the
    journal does not name are left out.

    One pass from the journal's end, skipping unparsed the lines of other events, of other shots and of shots whose
    versions are all found, stopping once all are: a film's journal is tens of MB (docs/performance.md, "Kept
    versions' order")."""
    from .store import OutputStore

    found: dict[tuple[str, str], float | None] = {}
    newer: float | None = None  # the time given to the last version found, moved aside after this line's
    waiting = Counter(shot for shot, _name in wanted)
    only = next(iter(waiting)) if len(waiting) == 1 else None
    for entry in OutputStore(root).journal_newest_first(mentioning=only, shots=waiting,
                                                        events=("supersede", "restore", "restore-begin")):
        shot, event = entry.get("shot_id"), entry.get("event")
        if not isinstance(shot, str):
            continue
        if event == "supersede":
            named = [(entry.get("as"), True)]
        elif event == "restore":
            named = [(entry.get("moved_aside"), True), (entry.get("from"), False)]
        elif event == "restore-begin":
            # The name it moves the take at the final paths aside under, written before its renames: a restore killed
            # after them (its `restore` line never written, and a render, which does not finish it, committed into the
            # take since) has no other line naming it. A finished restore's `restore` line, newer, names it first.
            named = [(entry.get("aside"), True)]
        else:
            continue
        for name, moved in named:
            if not isinstance(name, str) or (shot, name) not in wanted or (shot, name) in found:
                continue
            moment = _journal_time(entry.get("time")) if moved else None
            if moment is not None and newer is not None and moment >= newer:
                # the line written later is the newer move, whatever the clocks said (one set back, two machines
                # on one shared folder, a coarse one giving both the same time): just before it
                moment = math.nextafter(newer, -math.inf)
            found[shot, name] = moment
            newer = moment if moment is not None else newer
            waiting[shot] -= 1
            if not waiting[shot]:
                del waiting[shot]  # journal_newest_first skips its lines from here on
        if not waiting:
            break
    return found


def _journal_time(value: Any) -> float | None:
    """A journal line's ``time`` (ISO 8601, as ``OutputStore.journal`` writes it) as a POSIX time; None if it is not
    one (a received folder's journal may hold anything), or if its instant is no date in UTC, where ``as_dict`` shows
    it (9999-12-31T23:59:59-05:00 is in the year 10000 there)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(timezone.utc).timestamp() if moment.tzinfo is not None else None  # noqa: UP017
    except (ValueError, OverflowError, OSError):
        return None


def count_superseded(root: Path) -> int:
    """How many versions the output folder keeps (``list_superseded``'s length, and ``restore --list``'s), with no
    sidecar read: what a render says it keeps in all after a run (a film's folder keeps thousands)."""
    return len(_scan_kept(root, None))


def _scan_kept(root: Path, stem: str | None, shot: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The kept versions' files, by (shot folder, version name): shot, take, the newest ctime and each file's path
    by its extension (``.png``, ``.json``, ``.mask.png``). ``shot``: only that shot's folder is listed (a commit asks
    of one take: a scan of every shot's per take was quadratic over a film)."""
    base = Path(root) / SUPERSEDED
    found: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        if shot is None:
            folders = [e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
        else:  # a folder, never a link to one, as the scan's entries
            folders = [shot] if stat.S_ISDIR(os.lstat(base / shot).st_mode) else []
    except OSError:
        return {}
    for folder in folders:
        try:
            entries = list(os.scandir(base / folder))
        except OSError:
            continue
        for entry in entries:
            match = _NAME.match(entry.name)
            if not match or not entry.is_file(follow_symlinks=False):
                continue
            if stem is not None and match["stem"] != stem:
                continue
            name = entry.name[: -len(match["ext"])]
            item = found.setdefault((folder, name), {"shot": match["shot"], "take": int(match["take"]),
                                                           "time": 0.0})
            rel = (SUPERSEDED / folder / entry.name).as_posix()
            item[match["ext"]] = rel
            with contextlib.suppress(OSError):
                item["time"] = max(item["time"], entry.stat(follow_symlinks=False).st_ctime)
    return found


def put_back(store: Any, version: SupersededVersion, aside: str | None = None) -> str | None:
    """Move ``version`` back to its final paths (the store's lock held); what was there moves aside first.

    Returns the name the displaced take was kept under, or None when the final paths were empty. ``aside``: that
    name when a restore killed part-way moved the take aside already (its journal line, which orders the kept
    versions, never written): the ``restore`` line names it. When a take is at the final paths, the name it moves
    aside under (``aside_name``'s) is used and returned instead.
    """
    root, shot, stem = store.root, version.shot_id, version.stem
    image_rel, sidecar_rel, mask_rel = f"{shot}/{stem}.png", f"{shot}/{stem}.json", f"{shot}/{stem}.mask.png"
    for rel in (image_rel, sidecar_rel, mask_rel):
        store.path(rel)  # refuses links and paths leading outside the folder
    if version.image is None:
        raise InputError(f"{version.name}: only its sidecar was kept; there is no image to restore")
    moved = move_aside(root, shot, stem, image_rel, sidecar_rel, mask_rel) or aside
    # Image, mask, then sidecar: the sidecar is the commit marker, as in a commit.
    _move(root / version.image, root / image_rel)
    if version.mask:
        _move(root / version.mask, root / mask_rel)
    if version.sidecar:
        _move(root / version.sidecar, root / sidecar_rel)
    store.journal({"event": "restore", "job_key": version.job_key, "shot_id": shot, "take": version.take,
                   "from": version.name, "moved_aside": moved})
    return moved


def kept_versions_by_take(root: Path) -> dict[str, list[SupersededVersion]]:
    """Every kept version by take (``SHOT_tN``, as ``list_superseded``'s ``stem``), oldest first.

    One scan of ``superseded/`` for a whole run: a scan per job was quadratic in a film's takes. Ordered as a render
    chooses among them (``by_job``): the journal is read only when one job's image is kept more than once.
    """
    by_take: dict[str, list[SupersededVersion]] = {}
    for version in list_superseded(root, order_among=by_job):
        match = _NAME.match(f"{version.name}.png")
        if match:
            by_take.setdefault(match["stem"], []).append(version)
    return by_take


def kept_render_of(root: Path, stem: str, job_key: str,
                   versions: list[SupersededVersion] | None = None) -> SupersededVersion | None:
    """A kept version of take ``stem`` made by exactly this job (same key), its image intact; else None.

    A shot edited and then edited back has the key of a take kept here: render puts that take back
    instead of rendering it again (``restored``). ``versions``: the take's kept versions, oldest first,
    when the caller listed them already (``kept_versions_by_take``); else they are listed here.
    """
    for version in reversed(list_superseded(root, stem, order_among=by_job) if versions is None else versions):
        if version.job_key != job_key or version.image is None or version.sidecar is None:
            continue
        expected = _recorded_image_sha256(Path(root) / version.sidecar)
        if expected and safeio.sha256_regular(Path(root) / version.image) == expected:
            return version
    return None


def _recorded_image_sha256(sidecar: Path) -> str | None:
    """The image sha256 a sidecar records; None when it cannot be read or records none."""
    record = (read_sidecar_file(sidecar) or {}).get("image")
    sha256 = record.get("sha256") if isinstance(record, dict) else None
    return sha256 if isinstance(sha256, str) and sha256 else None


def _finish_interrupted_restore(root: Path, shot: str, stem: str) -> tuple[str, str] | None:
    """Rejoin a take a restore killed between two renames left split (its lock held), before choosing anew.

    ``("aside", name)``: the take being moved aside had its image moved, not its sidecar: the sidecar joins it, and
    its mask when left too. ``("back", name)``: the version being restored had its image moved back, not its sidecar:
    the sidecar follows, and its mask when still kept (``_kept_sidecar_of``: a version retouched by hand by the sha256
    its ``restore-begin`` line recorded).
    Pairs are matched by the image's sha256 in the sidecar; None when nothing was split.
    """
    image, sidecar, kept = root / shot / f"{stem}.png", root / shot / f"{stem}.json", root / SUPERSEDED / shot
    mask = root / shot / f"{stem}.mask.png"
    has_image, has_sidecar = _is_regular(image), _is_regular(sidecar)
    if has_image == has_sidecar:
        return None
    versions = list_superseded(root, stem, order_among=each_alone)
    if has_sidecar:  # an image kept without its sidecar, whose bytes the sidecar at the final path describes
        want = _recorded_image_sha256(sidecar)
        for v in versions:
            if want and v.image and not v.sidecar and safeio.sha256_regular(root / v.image) == want:
                _mask_follows(mask, kept / f"{v.name}.mask.png")  # killed before the mask: left, it was overwritten
                _move(sidecar, kept / f"{v.name}.json")
                return "aside", v.name
        return None
    back = _kept_sidecar_of(root, shot, stem, image)  # by its sidecar's sha256, or a retouch's by the restore's line
    if back is not None:
        _mask_follows(kept / f"{back}.mask.png", mask)  # killed before the mask: it stayed kept alone for good
        _move(kept / f"{back}.json", sidecar)
        return "back", back
    return None


def _mask_follows(source: Path, target: Path) -> None:
    """Move a dual-line take's ``.mask.png`` to ``target`` beside its image, when a command killed between moving the
    image and the mask left it behind (``source``); never over a file already there (nothing is overwritten)."""
    if _is_regular(source) and not os.path.lexists(target):
        _move(source, target)


def rejoin_put_back(store: Any, shot: str, take: int) -> str | None:
    """Finish a restore killed after moving a kept version's image back, before its sidecar, for a render that finds
    that image at the final path as its job's (the shot edited back to that version: ``recoverable``): the version's
    own sidecar, kept alone (with its mask, when the kill came before that), moved back beside it and the restore's
    ``restore`` line journalled, as the restore's rerun does (``_finish_interrupted_restore``); the version's name,
    or None when no kept sidecar is that image's or no restore of it is pending (the journal's ``restore-begin`` line,
    not followed by another of the take). Rebuilt from the PNG instead, the sidecar lost the render's facts (timing,
    batch, QA) and the kept one stayed alone for good, a version with no image."""
    root, stem = Path(store.root), f"{shot}_t{take}"
    image, sidecar = root / shot / f"{stem}.png", root / shot / f"{stem}.json"
    if _is_regular(sidecar) or not _is_regular(image):
        return None
    name = _kept_sidecar_of(root, shot, stem, image)
    begun = _begun_restore(store, shot, take) if name is not None else None
    if name is None or begun is None or begun.name != name:
        return None  # no restore of that version pending (its kept files' PNGs deleted by hand, say): rebuilt
    displaced = begun.aside if begun.aside is not None and any(
        kept == begun.aside for _, kept in _scan_kept(root, stem, shot)) else None
    _mask_follows(root / SUPERSEDED / shot / f"{name}.mask.png", root / shot / f"{stem}.mask.png")
    _move(root / SUPERSEDED / shot / f"{name}.json", sidecar)
    store.journal({"event": "restore", "shot_id": shot, "take": take, "from": name, "moved_aside": displaced,
                   "finished": True})
    return name


def _restore_target(root: Path, stem: str) -> tuple[Path, re.Match[str]]:
    """The output folder and take ``restore`` and ``restore --list`` work on, or the InputError (exit 2) of a name
    that is no take or a folder that is not there."""
    match = re.fullmatch(r"(?P<shot>.+)_t(?P<take>[1-9]\d*)", stem or "")
    if not match:
        raise InputError(f"'{stem}': name a take as SHOT_tN (for example sc01_sh010_t2)")
    root = Path(root)
    check_out_dir_is_folder(root)
    check_not_inside_output_folder(root)  # before restore takes the lock, which would be left in OUT/review
    return root, match


def kept_versions_of(root: Path, stem: str) -> list[SupersededVersion]:
    """``restore --list``: the kept versions of take ``stem``, oldest first, after restore's own checks (a missing
    folder listed no version and exited 0, where restoring from it exits 2)."""
    root, _match = _restore_target(root, stem)
    return list_superseded(root, stem)


def kept_renders(out_dir: str | Path, take: str | None = None) -> list[SupersededVersion]:
    """``restore OUT --list``: the renders kept in ``out_dir``'s ``.idcli/superseded`` that a newer render replaced,
    of take ``take`` (``SHOT_tN``) oldest first, or with no take of every take (shot, take, then oldest first).
    Reads only; a missing folder or a take not named as ``SHOT_tN`` raises ``InputError``. ``version.as_dict(out)``
    is the ``--json`` entry."""
    from .arguments import check_optional_str, check_out_dir

    root = check_out_dir(out_dir)
    take = check_optional_str("take", take)
    if take is not None:
        return kept_versions_of(root, take)
    check_out_dir_is_folder(root)  # as restore's own check: a missing folder is no empty list
    check_not_inside_output_folder(root)  # OUT/review keeps nothing: "none kept" would be untrue of OUT
    return sorted(list_superseded(root), key=lambda v: (v.shot_id, v.take, v.superseded_at, v.name))


def restore(root: Path, stem: str, key: str | None = None, *, wait: bool = False) -> dict[str, Any]:
    """Put a kept version of take ``stem`` (``SHOT_tN``) back at its final paths.

    ``key``: a prefix of the version's job key (or of its name's key part); default: the most recently
    superseded version (by the journal: ``list_superseded``) whose image is not the current take's bytes (a kept
    copy, from ``render --force`` of an unchanged shot, is passed over). What is at the final paths now moves aside
    first, so a restore is undone by restoring again. Returns the restored take (``shot_id``, ``take``, ``job_key``,
    ``name``, ``image``, ``sidecar``), ``moved_aside``: the name the displaced take is kept under, or None,
    ``passed_over``: the copies passed over (newest first) and ``same_image``: whether the image put back is the
    displaced take's bytes.
    """
    from .store import OutputStore

    root, match = _restore_target(root, stem)
    passed_over: list[str] = []
    with OutputStore(root).session(wait=wait) as store:
        # A restore killed between its renames, or after its last: the rerun of the same command finishes what it
        # began.
        shot, take = match["shot"], int(match["take"])
        finished = _finish_interrupted_restore(root, shot, stem)
        begun = _begun_restore(store, shot, take)
        begun_name = begun.name if begun is not None else None
        # The name the killed run moved the displaced take aside under (its restore-begin line's), once it is
        # there: the take's image moved aside alone (rejoined above) or with its sidecar. The name was free when
        # that line was written, and nothing but this take's restore moves files to it while no line followed.
        displaced = finished[1] if finished is not None and finished[0] == "aside" else (
            begun.aside if begun is not None and begun.aside is not None
            and any(name == begun.aside for _, name in _scan_kept(root, stem)) else None)
        # The version the killed run put back: its image rejoined by its sidecar above, or the whole take, moved
        # back by all its renames (killed before its restore line, the version is no longer kept: a rerun choosing
        # anew put back the take it had displaced).
        back = finished[1] if finished is not None and finished[0] == "back" else (
            begun.name if begun is not None and _is_put_back(root, shot, stem, begun) else None)
        if back is not None:  # its line names the displaced take, which it orders
            store.journal({"event": "restore", "shot_id": shot, "take": take, "from": back,
                           "moved_aside": displaced, "finished": True})
            back_key = (read_sidecar_file(root / shot / f"{stem}.json") or {}).get("job_key")
            if not key or _has_key(back_key if isinstance(back_key, str) else None, back, key):
                return _restored(root, shot, take, back, displaced)  # the version asked for is back
            displaced = begun_name = None  # another was asked for: the take just put back moves aside in its place
        versions = list_superseded(root, stem, order_among=by_take)
        if not versions:
            raise InputError(f"{root}: no superseded version of {stem} is kept ({_kept_takes_hint(root, stem)})",
                             file=root)
        if key:
            chosen = [v for v in versions if _has_key(v.job_key, v.name, key)]
            if not chosen:
                kept = ", ".join(v.name for v in versions)
                raise InputError(Option("key", key), f": no kept version of {stem} has that key (kept: {kept})",
                                 field="key")
            if len(chosen) > 1:
                raise InputError(Option("key", key), f" matches {len(chosen)} versions of {stem}; give more digits",
                                 field="key")
            version = chosen[0]
        else:  # the one a restore killed part-way was putting back, else the most recently replaced that differs
            unfinished = next((v for v in versions if v.name == begun_name), None)
            version, passed_over = ((unfinished, []) if unfinished is not None
                                    else _newest_differing(root, f"{shot}/{stem}.png", versions))
        if version.image is None:
            raise InputError(f"{version.name}: only its sidecar was kept; there is no image to restore")
        # Named before any rename: a run killed part-way leaves the displaced take's name to the one finishing it.
        aside = aside_name(root, shot, stem, f"{shot}/{stem}.png", f"{shot}/{stem}.json") or (
            displaced if displaced != version.name else None)
        store.journal({"event": "restore-begin", "shot_id": shot, "take": take, "name": version.name,
                       "aside": aside, "sha256": safeio.sha256_regular(root / version.image)})
        moved = put_back(store, version, aside)
    return _restored(root, shot, take, version.name, moved, passed_over)


def _newest_differing(root: Path, image_rel: str,
                      versions: list[SupersededVersion]) -> tuple[SupersededVersion, list[str]]:
    """``restore``'s default among a take's kept ``versions`` (oldest first): the most recently replaced whose image
    is not the bytes at ``image_rel`` (``render --force`` of an unchanged shot keeps a copy of the take it renders
    again), and the names of the newer ones passed over, newest first; the newest, passing none over, when every
    one is a copy (or no image is at ``image_rel``)."""
    current = safeio.sha256_regular(root / image_rel)
    passed: list[str] = []
    if current is not None:
        for version in reversed(versions):
            if version.image is None or safeio.sha256_regular(root / version.image) != current:
                return version, passed
            passed.append(version.name)
    return versions[-1], []


def _has_key(job_key: str | None, name: str, key: str) -> bool:
    """Whether ``restore``'s ``key`` (a prefix of a job key, ``sha256:`` or not) names the version ``name`` of this
    job key (or the key part of its name)."""
    wanted = key.split(":", 1)[-1].lower()
    return (job_key or "").split(":", 1)[-1].startswith(wanted) or name.split(".", 1)[1].startswith(wanted)


def _kept_takes_hint(root: Path, stem: str) -> str:
    """For a take with nothing kept (a typo, often): the nearest take that has kept versions, else them all."""
    from .suggest import did_you_mean

    kept = sorted({version.stem for version in list_superseded(root, order_among=each_alone)})
    if not kept:
        return "nothing is kept in this folder"
    return did_you_mean(stem, kept) or "takes with kept versions: " + ", ".join(kept[:10]) + (
        f", … ({len(kept) - 10} more)" if len(kept) > 10 else "")


@dataclass(frozen=True)
class _BegunRestore:
    """A restore of a take that journalled its ``restore-begin`` line and never its ``restore`` line (killed)."""

    name: str  # the kept version it was putting back
    aside: str | None  # the name it was moving the take at the final paths aside under; None when none was there
    sha256: str | None  # the sha256 of the image it was putting back


def _begun_restore(store: Any, shot: str, take: int) -> _BegunRestore | None:
    """The restore of this take begun and never finished, from the journal's ``restore-begin`` line; None when none
    is pending. A line before 2026-12-01 named no ``aside`` and no ``sha256`` (None).

    Any later line of the take by another command overtakes it: what that command put at the final paths or moved
    aside is the take now, and the rerun restores as a fresh restore does. A render's ``reuse-begin`` counts once its
    image is at the final path (its ``sha256``): a render killed after it, before its ``commit`` line, left the reused
    take there, and the rerun finished the old restore over it; killed before the image, it wrote nothing there."""
    image = Path(store.root) / shot / f"{shot}_t{take}.png"
    for entry in store.journal_newest_first(mentioning=shot):
        if entry.get("shot_id") == shot and entry.get("take") == take and entry.get("event") in (
                "restore-begin", "restore", "commit", "supersede", "reuse", "reuse-begin"):
            if entry["event"] == "reuse-begin" and not (
                    isinstance(entry.get("sha256"), str) and safeio.sha256_regular(image) == entry["sha256"]):
                continue  # a render killed before its image: the take is as the restore left it
            name, aside, sha256 = entry.get("name"), entry.get("aside"), entry.get("sha256")
            if entry["event"] != "restore-begin" or not isinstance(name, str):
                return None
            return _BegunRestore(name, aside if isinstance(aside, str) else None,
                                 sha256 if isinstance(sha256, str) else None)
    return None


def _is_put_back(root: Path, shot: str, stem: str, begun: _BegunRestore) -> bool:
    """Whether the take at the final paths is the version ``begun`` was putting back, all its files moved back (a kill
    after its last rename): nothing is kept under its name any more, the take's files carry the key its name was
    given (the sidecar's, else the PNG's: ``_take_key``) and its image has the bytes the line recorded (a line before
    2026-12-01 recorded none). A later command that moved the take or put another back wrote its own line after it,
    so ``begun`` would not be pending."""
    match = _NAME.match(f"{begun.name}.png")
    image, sidecar = root / shot / f"{stem}.png", root / shot / f"{stem}.json"
    if match is None or match["stem"] != stem or not _is_regular(image):
        return False
    if any(name == begun.name for _, name in _scan_kept(root, stem)):
        return False  # still kept (in part): the killed run had not moved it all back
    if key_label(_take_key(image, sidecar)) != match["key"]:
        return False
    return begun.sha256 is None or safeio.sha256_regular(image) == begun.sha256


def last_rendered_key(out_dir: str | Path, shot: str, take: int) -> str | None:
    """The job key the last render left at this take (rendered, recovered, reused, or put back as its shot was
    edited back), from the journal's newest entries back; None when the journal names none. A restore that puts
    it back undoes an earlier restore (README: "restoring again undoes it"): nothing about that take is of an
    earlier shot list. The restore command's own puts-back are passed over: each follows its ``restore-begin``."""
    from .store import OutputStore

    pending: dict[str, Any] | None = None  # a put-back seen: the restore command's, or a render's
    for entry in OutputStore(Path(out_dir)).journal_newest_first(mentioning=shot):
        event = entry.get("event")
        if entry.get("shot_id") != shot or entry.get("take") != take or event not in (
                "commit", "reuse", "restore", "restore-begin"):
            continue  # a take moved aside ("supersede") says nothing of what went to its place
        if event == "restore-begin":
            pending = None  # the put-back after it was the restore command's
            continue
        if pending is None and event == "restore" and not entry.get("finished"):
            pending = entry
            continue
        if pending is not None or event in ("commit", "reuse"):
            key = (pending or entry).get("job_key")
            return key if isinstance(key, str) else None
    key = pending.get("job_key") if pending is not None else None
    return key if isinstance(key, str) else None


def _restored(root: Path, shot: str, take: int, name: str, moved: str | None,
              passed_over: list[str] | None = None) -> dict[str, Any]:
    """``restore``'s answer for the take now at its final paths (put back from the kept version ``name``; the kept
    copies of the take it replaced passed over for it, ``passed_over``)."""
    image_rel, sidecar_rel = f"{shot}/{shot}_t{take}.png", f"{shot}/{shot}_t{take}.json"
    record = read_sidecar_file(root / sidecar_rel) or {}
    back = safeio.sha256_regular(root / image_rel)
    same_image = moved is not None and back is not None and back == safeio.sha256_regular(
        root / SUPERSEDED / shot / f"{moved}.png")

    def file(rel: str) -> dict[str, str]:
        return {"path": rel, "abs_path": str(absolute(root) / rel)}

    key = record.get("job_key")
    return {"shot_id": shot, "take": take, "job_key": key if isinstance(key, str) else None,
            "name": name, "image": file(image_rel),
            "sidecar": file(sidecar_rel) if (root / sidecar_rel).is_file() else None, "moved_aside": moved,
            "passed_over": list(passed_over or []), "same_image": same_image}
