"""Reading what a render wrote: the committed sidecars of an output folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_results(out_dir: str | Path, *, include_orphans: bool = False, shotlist: Any = None
                 ) -> Iterator[dict[str, Any]]:
    """Every committed job's sidecar in ``out_dir`` (sorted by path).

    Each record is the sidecar as written, plus the output-folder paths in the contract's one form
    (docs/file-formats.md): ``image.abs_path`` beside the sidecar's relative ``image.path``, and
    ``sidecar: {"path", "abs_path"}``; and ``orphan``: whether its shot or take is no longer in the
    shot list. The shot list is ``shotlist`` (a path or ``idcli.load_shotlist(...)``) when given, else
    the one the folder was last rendered from (its ``.idcli/shotlist.jsonl``); a folder rendered
    before idcli kept that record has no orphans. Orphans are left out unless ``include_orphans``.
    """
    from .arguments import as_loaded_shotlist, check_bool, check_out_dir
    from .errors import InputError

    root = check_out_dir(out_dir).absolute()
    check_bool("include_orphans", include_orphans)
    # Checked now, not at the first next(): a generator would report a wrong folder only when iterated.
    if not root.is_dir():
        raise InputError(f"{out_dir}: no such output folder" if not root.exists()
                         else f"{out_dir}: not a folder")
    live = _live_takes(root, None if shotlist is None else as_loaded_shotlist(shotlist, "shotlist"))
    return _records(root, live, include_orphans)


def _live_takes(root: Path, loaded: Any) -> set[tuple[str, int]] | None:
    from .orphans import shotlist_takes
    from .store import OutputStore

    if loaded is not None:
        return set(shotlist_takes(loaded))
    manifest = OutputStore(root).read_manifest()
    takes = manifest.get("takes") if manifest else None
    if not isinstance(takes, list):
        return None
    return {(t[0], t[1]) for t in takes if isinstance(t, list) and len(t) == 2}


def _records(root: Path, live: set[tuple[str, int]] | None, include_orphans: bool) -> Iterator[dict[str, Any]]:
    for sidecar in sorted(root.glob("[!.]*/*.json")):
        try:
            record = json.loads(sidecar.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or "job_key" not in record or not isinstance(record.get("image"), dict):
            continue
        record["orphan"] = live is not None and (record.get("shot_id"), record.get("take")) not in live
        if record["orphan"] and not include_orphans:
            continue
        record["sidecar"] = {"path": sidecar.relative_to(root).as_posix(), "abs_path": str(sidecar)}
        record["image"]["abs_path"] = str(root / record["image"]["path"])
        yield record
