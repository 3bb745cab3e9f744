"""Reading what a render wrote: the committed sidecars of an output folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_results(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every committed job's sidecar in ``out_dir`` (sorted by path), with ``image.path`` made absolute."""
    root = Path(out_dir)
    for sidecar in sorted(root.glob("*/*.json")):
        try:
            record = json.loads(sidecar.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or "job_key" not in record:
            continue
        record["sidecar_path"] = str(sidecar)
        record["image"]["abs_path"] = str(root / record["image"]["path"])
        yield record
