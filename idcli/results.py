"""Reading what a render wrote: the committed sidecars of an output folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_results(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every committed job's sidecar in ``out_dir`` (sorted by path).

    Each record is the sidecar as written, plus the output-folder paths in the contract's one form
    (docs/file-formats.md): ``image.abs_path`` beside the sidecar's relative ``image.path``, and
    ``sidecar: {"path", "abs_path"}``.
    """
    from .arguments import check_out_dir
    from .errors import InputError

    root = check_out_dir(out_dir).absolute()
    # Checked now, not at the first next(): a generator would report a wrong folder only when iterated.
    if not root.is_dir():
        raise InputError(f"{out_dir}: no such output folder" if not root.exists()
                         else f"{out_dir}: not a folder")
    return _records(root)


def _records(root: Path) -> Iterator[dict[str, Any]]:
    for sidecar in sorted(root.glob("*/*.json")):
        try:
            record = json.loads(sidecar.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or "job_key" not in record:
            continue
        record["sidecar"] = {"path": sidecar.relative_to(root).as_posix(), "abs_path": str(sidecar)}
        record["image"]["abs_path"] = str(root / record["image"]["path"])
        yield record
