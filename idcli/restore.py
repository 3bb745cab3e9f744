"""``idcli restore``: a kept version of a take put back at its final paths, what was there moved aside in its place so
that restoring again undoes it (superseded.py tells the whole protocol); ``restore --list`` (``kept_renders``); and
the job key the last render left at a take, which a restore's put-back does not change. A restore killed part-way is
finished by its rerun (interrupted_restore.py). Split from superseded.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import safeio
from .arguments import check_not_inside_output_folder, check_out_dir_is_folder
from .errors import InputError
from .interrupted_restore import begun_restore, finish_interrupted_restore, is_put_back
from .kept_files import SUPERSEDED, move_file, read_sidecar_file, scan_kept
from .kept_versions import SupersededVersion, by_take, each_alone, list_superseded
from .moving_aside import aside_name, move_aside
from .option_words import Option
from .paths import absolute


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
    move_file(root / version.image, root / image_rel)
    if version.mask:
        move_file(root / version.mask, root / mask_rel)
    if version.sidecar:
        move_file(root / version.sidecar, root / sidecar_rel)
    store.journal({"event": "restore", "job_key": version.job_key, "shot_id": shot, "take": version.take,
                   "from": version.name, "moved_aside": moved})
    return moved


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
        finished = finish_interrupted_restore(root, shot, stem)
        begun = begun_restore(store, shot, take)
        begun_name = begun.name if begun is not None else None
        # The name the killed run moved the displaced take aside under (its restore-begin line's), once it is
        # there: the take's image moved aside alone (rejoined above) or with its sidecar. The name was free when
        # that line was written, and nothing but this take's restore moves files to it while no line followed.
        displaced = finished[1] if finished is not None and finished[0] == "aside" else (
            begun.aside if begun is not None and begun.aside is not None
            and any(name == begun.aside for _, name in scan_kept(root, stem)) else None)
        # The version the killed run put back: its image rejoined by its sidecar above, or the whole take, moved
        # back by all its renames (killed before its restore line, the version is no longer kept: a rerun choosing
        # anew put back the take it had displaced).
        back = finished[1] if finished is not None and finished[0] == "back" else (
            begun.name if begun is not None and is_put_back(root, shot, stem, begun) else None)
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
