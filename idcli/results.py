"""Reading what a render wrote: the committed sidecars of an output folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .paths import absolute

if TYPE_CHECKING:
    import os

    from .shotlist import LoadedShotList

MAX_SIDECAR_BYTES = 4 * 1024 * 1024  # as store.py: a sidecar is a few kB


def read_results(out_dir: str | Path, *, include_orphans: bool = False,
                 shotlist: LoadedShotList | str | os.PathLike[str] | None = None
                 ) -> Iterator[dict[str, Any]]:
    """Every committed job's sidecar in ``out_dir`` (sorted by path); one whose image is missing is no
    committed job (a run killed while moving a take aside leaves it until the next render).

    Each record is the sidecar as written, plus the output-folder paths in the contract's one form
    (docs/file-formats.md): ``image.abs_path`` beside the sidecar's relative ``image.path``, and
    ``sidecar: {"path", "abs_path"}``; and ``orphan``: whether its shot or take is no longer in the
    shot list. The shot list is ``shotlist`` (a path or ``idcli.load_shotlist(...)``) when given, else
    the one the folder was last rendered from (its ``.idcli/shotlist.jsonl``); a folder rendered
    before idcli kept that record has no orphans. Orphans are left out unless ``include_orphans``.
    """
    from .arguments import as_loaded_shotlist, check_bool, check_out_dir, check_out_dir_is_folder

    root = absolute(check_out_dir(out_dir))
    check_bool("include_orphans", include_orphans)
    # Checked now, not at the first next(): a generator would report a wrong folder only when iterated.
    check_out_dir_is_folder(Path(out_dir))
    _check_output_folder(root, out_dir)
    live = live_takes(root, None if shotlist is None else as_loaded_shotlist(shotlist, "shotlist"))
    return _records(root, live, include_orphans)


def _check_output_folder(root: Path, given: str | Path) -> None:
    """A delivery folder, or a folder idcli never rendered into, is an InputError: reading either as no takes
    made a pipeline script go on as if nothing had been rendered. An output folder holds ``.idcli/`` from its
    first render; one without it is still read when it holds sidecars (takes copied by hand)."""
    from .delivery import DELIVERY_FILE
    from .delivery_checks import refuse_read_as_output_folder
    from .errors import InputError
    from .store import STATE

    refuse_read_as_output_folder(root, f": {DELIVERY_FILE} lists what was delivered and SHOT_takeN.json beside each "
                                 "copy is its record (docs/delivery.md); read_results() reads the output folder the "
                                 "takes were delivered from", given)
    if not (root / STATE).is_dir() and next(_records(root, None, True), None) is None:
        from .option_words import Option

        raise InputError(f"{given}: not an idcli output folder (no {STATE} folder, no committed take); give the "
                         "folder a render wrote (its ", Option("out_dir", flag="--out"),
                         "; idcli render's default is renders/PROJECT)", file=given)


def live_takes(root: Path, loaded: LoadedShotList | None) -> set[tuple[str, int]] | None:
    """The (shot, take) pairs a shot list still asks for: ``loaded``'s (with the takes added since, per
    ``.idcli/``) when given, else the run manifest's; None when the folder has no manifest to say (then no
    take is an orphan). Shared by read_results, the review page, ``idcli select`` and ``idcli deliver``."""
    from .orphans import shotlist_takes
    from .store import OutputStore

    if loaded is not None:
        from .added_takes import added_takes

        return set(shotlist_takes(loaded, added_takes(root, loaded)))
    manifest = OutputStore(root).read_manifest()
    takes = manifest.get("takes") if manifest else None
    if not isinstance(takes, list):
        return None
    return {(t[0], t[1]) for t in takes if isinstance(t, list) and len(t) == 2  # an edited manifest: odd entries
            and isinstance(t[0], str) and type(t[1]) is int}


def _records(root: Path, live: set[tuple[str, int]] | None, include_orphans: bool) -> Iterator[dict[str, Any]]:
    from .safeio import NotRegularFile

    for sidecar in sorted(root.glob("[!.]*/*.json")):
        if sidecar.parent.is_symlink():  # as scan_results: no take is read through a linked shot folder
            continue
        try:
            record = _load(sidecar)
        except (NotRegularFile, ValueError, RecursionError):
            continue
        if not isinstance(record, dict) or "job_key" not in record:
            continue
        image = record.get("image")
        if not (isinstance(image, dict) and isinstance(image.get("path"), str)):
            continue
        if not (root / image["path"]).is_file():
            continue  # a sidecar a killed run left without its image (moved aside first) commits no take
        record["orphan"] = live is not None and (record.get("shot_id"), record.get("take")) not in live
        if record["orphan"] and not include_orphans:
            continue
        yield _with_paths(record, root, sidecar)


def _load(sidecar: Path) -> Any:
    """A sidecar's JSON: read bounded, never through a link, never blocking on a FIFO (NotRegularFile), or
    ValueError/RecursionError for what does not parse."""
    from .safeio import read_regular

    return json.loads(read_regular(sidecar, MAX_SIDECAR_BYTES, follow_links=False).decode("utf-8"))


def _with_paths(record: dict[str, Any], root: Path, sidecar: Path) -> dict[str, Any]:
    """The record with the output-folder paths in the contract's one form (``sidecar``, ``image.abs_path``)."""
    record["sidecar"] = {"path": sidecar.relative_to(root).as_posix(), "abs_path": str(sidecar)}
    record["image"]["abs_path"] = str(root / record["image"]["path"])
    return record


@dataclass
class Scan:
    """The sidecars of an output folder: those that can be used, and why each other one cannot."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "path: reason", one per skipped sidecar


def scan_results(out_dir: str | Path) -> Scan:
    """Read every ``OUT/<shot>/*.json`` sidecar (bounded, regular files only, no links followed).

    A sidecar is used when it parses, names a job, a shot and a take, and its image is a file inside
    the output folder; anything else is a problem reported by path, never an exception: one damaged
    file must not hide the rest of a run. Records carry the paths ``read_results`` adds.
    """
    from .errors import printable
    from .safeio import NotRegularFile

    root = absolute(out_dir)
    scan = Scan()
    for sidecar in sorted(root.glob("*/*.json")):
        if sidecar.name.startswith(".") or sidecar.parent.name.startswith("."):
            continue
        where = printable(sidecar.relative_to(root).as_posix())  # a received folder's names reach a terminal
        if not _names_a_shot(sidecar.parent.name):  # render names shot folders by shot ids (shotlist.SAFE_ID) only
            scan.problems.append(f"{where}: its folder name is not a shot id, so idcli never wrote a take there "
                                 "(a shot id is 1-64 ASCII letters, digits, '_', '-', '.')")
            continue
        if sidecar.parent.is_symlink():  # a shot folder linked elsewhere: render refuses it, so no take is there
            scan.problems.append(f"{where}: its folder {sidecar.parent.name} is a symbolic link; idcli reads no "
                                 "take through one")
            continue
        try:
            record = _load(sidecar)
        except NotRegularFile as exc:
            scan.problems.append(f"{where}: not a readable sidecar ({exc.kind})")
            continue
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            scan.problems.append(f"{where}: not valid JSON ({str(exc)[:80]})")
            continue
        reason = _unusable(record, root, sidecar)
        if reason:
            scan.problems.append(f"{where}: {reason}")
            continue
        scan.records.append(_with_paths(record, root, sidecar))
    return scan


def _names_a_shot(name: str) -> bool:
    """Whether a folder name is a shot id a shot list can give: only such a name reaches an EDL, a terminal or a
    delivered file name (a folder named with a newline and an EDL event became an event of the exported EDL)."""
    from .shotlist import check_safe_id

    try:
        check_safe_id(name)
    except ValueError:
        return False
    return True


def _unusable(record: Any, root: Path, sidecar: Path) -> str:
    """Why a parsed sidecar cannot be used, or ''."""
    from .errors import printable

    if not isinstance(record, dict) or not isinstance(record.get("job_key"), str):
        return "not an idcli sidecar (no job_key)"
    if not isinstance(record.get("shot_id"), str) or record["shot_id"] != sidecar.parent.name:
        return "its shot_id does not name its folder"
    take = record.get("take")
    if type(take) is not int or take < 1:
        return "no valid take number"
    if sidecar.name != f"{record['shot_id']}_t{take}.json":  # a commit names it so; an edited copy
        return f"its take number {take} does not name its file (a commit writes {record['shot_id']}_t{take}.json)"
    image = record.get("image")
    path = image.get("path") if isinstance(image, dict) else None
    if not isinstance(path, str):
        return "no image path"
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or len(relative.parts) != 2:
        return f"image path '{printable(path)}' is not inside the output folder"
    own = f"{record['shot_id']}/{record['shot_id']}_t{take}.png"
    if path != own:  # any other file of the folder: its name, any text, reached the EDL's FROM CLIP line
        return f"its image path '{printable(path)}' is not its take's own (a commit names it {own})"
    target = root / relative
    if target.is_symlink() or not target.is_file():
        return f"its image {path} is missing"
    return ""
