"""``idcli qa OUT``: identity QA recomputed for committed images, sidecars rewritten atomically.

For images rendered with ``--no-qa`` or before QA existed, or to judge a run again with other face
models or thresholds. Holds the output folder's lock (a render writing the folder is waited for or
refused, as for ``render``); an image whose bytes no longer match its sidecar is reported and left
alone; only the sidecar's ``qa`` changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..arguments import check_not_inside_output_folder, check_out_dir_is_folder, inside_output_folder
from ..errors import InputError
from .qa import IdentityQA, QAError, QAThresholds, checked_identities
from .qa_findings import findings
from .runs import refuse_delivery_folder


@dataclass
class RecheckResult:
    checked: int = 0
    flagged: int = 0
    without_cast: int = 0
    problems: list[str] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    # Per flagged image, who failed and why (qa_findings.py): {image, shot_id, take, flags, findings}.
    flagged_images: list[dict[str, Any]] = field(default_factory=list)


def recheck(out_dir: str | Path, *, face_models: str | os.PathLike[str] | None = None,
            thresholds: QAThresholds | None = None, wait: bool = False) -> RecheckResult:
    """Identity QA recomputed for every committed image of ``out_dir`` (``idcli qa``): ``face_models`` a folder (or
    None: the preset's), ``thresholds`` a ``QAThresholds`` (None: the defaults), ``wait`` for a run writing the folder.
    Arguments of the wrong type raise ``InputError`` before the folder is read (exit code 2)."""
    from ..arguments import check_bool, check_out_dir, check_path_or_none, check_qa_thresholds
    from ..hashing import sha256_bytes
    from ..identity.images import ImageError, load_take_rgb
    from ..results import scan_results
    from ..safeio import NotRegularFile, read_regular
    from ..store import MAX_IMAGE_BYTES, OutputStore

    # A number for thresholds (the command's --qa-low-identity 0.3) failed mid-folder, sidecars already rewritten.
    root = check_out_dir(out_dir)
    face_models = check_path_or_none("face_models", face_models)
    check_qa_thresholds(thresholds, "thresholds")
    check_bool("wait", wait)
    check_out_dir_is_folder(root)
    check_not_inside_output_folder(root)  # before the lock, which would be left in OUT/review
    refuse_delivery_folder(root)  # and among a delivery's files
    store = OutputStore(root)
    result = RecheckResult()
    checkers: dict[str, IdentityQA] = {}
    with store.session(wait=wait):
        scan = scan_results(root)
        result.problems += scan.problems
        if not scan.records:
            raise InputError(f"{root}: no committed renders to check{inside_output_folder(root)}", file=root)
        for record in scan.records:
            where = record["image"]["path"]
            entries = record.get("identity")
            # No identity conditions it (none named, or all text-only); damaged entries are for_record's to say.
            if not entries or (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)
                               and not checked_identities(entries)):
                result.without_cast += 1
                if record.get("qa") is not None:  # an older idcli checked it: its flags stand for nothing now
                    sidecar = _without_scan_fields(record)
                    sidecar.pop("qa")
                    _write_sidecar(store, record, sidecar, result.problems)
                continue
            preset = (record.get("model") or {}).get("preset") or "tiny-sd"
            try:
                if preset not in checkers:
                    checkers[preset] = IdentityQA.for_preset(preset, face_models, thresholds or QAThresholds(),
                                                             hint=())
                data = read_regular(root / where, MAX_IMAGE_BYTES, follow_links=False)
                if sha256_bytes(data) != record["image"].get("sha256"):
                    result.problems.append(f"{where}: the image does not match its sidecar; left alone")
                    continue
                qa = checkers[preset].for_record(record, load_take_rgb(root / where, data))
            except (QAError, ImageError, NotRegularFile) as exc:
                result.problems.append(f"{where}: {exc}")
                continue
            sidecar = _without_scan_fields(record)
            sidecar["qa"] = qa
            if not _write_sidecar(store, record, sidecar, result.problems):
                continue
            result.checked += 1
            flags = (qa or {}).get("flags") or []
            result.flagged += bool(flags)
            if flags:
                result.flagged_images.append({"image": where, "shot_id": record.get("shot_id"),
                                              "take": record.get("take"), "flags": list(flags),
                                              "findings": findings(qa or {})})
            for flag in flags:
                result.flags[flag] = result.flags.get(flag, 0) + 1
    return result


def _write_sidecar(store: Any, record: dict[str, Any], sidecar: dict[str, Any], problems: list[str]) -> bool:
    """The take's sidecar rewritten atomically (the store's own write), as the commit writes it; False, said in
    ``problems`` and the sidecar left as it was, when it holds a number JSON cannot write (``sidecar_bytes``): NaN, or
    1e999, which Python reads as Infinity, put in by hand."""
    from ..store import sidecar_bytes

    try:
        data = sidecar_bytes(sidecar)
    except ValueError:
        problems.append(f"{record['image']['path']}: its sidecar holds NaN or Infinity (1e999 reads as Infinity), "
                        "which is not JSON: idcli qa cannot write it back, so it is left alone (edited by hand?)")
        return False
    store.write(record["sidecar"]["path"], data)
    return True


def _without_scan_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The sidecar as committed: results.scan_results adds two fields for its readers."""
    sidecar = json.loads(json.dumps(record))
    sidecar.pop("sidecar", None)
    sidecar["image"].pop("abs_path", None)
    return sidecar
