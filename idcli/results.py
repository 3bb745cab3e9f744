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
    root = Path(out_dir).absolute()
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
