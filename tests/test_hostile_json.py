"""JSON nested past Python's recursion limit wherever idcli reads JSON that may come from outside: an
identity pack's metadata, a committed sidecar read by ``idcli.read_results`` or by ``render
--retake-flagged``. Each is refused as damaged (or skipped), never an internal error; ``read_results``
also never blocks on a FIFO or reads through a link planted as a sidecar."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import idcli
from idcli.identity.pack import PackError, pack_bytes, parse_pack

DEEP = "[" * 100_000 + "]" * 100_000


def test_an_identity_pack_with_deeply_nested_metadata_is_damaged(tmp_path: Path) -> None:
    import numpy as np

    from idcli.identity.pack import REQUIRED_TENSORS

    tensors = {name: np.ones((1, 4), np.float32) for name in REQUIRED_TENSORS}
    good = pack_bytes({"name": "mara"}, {**tensors, "embedding": np.ones(512, np.float32)})
    size = int.from_bytes(good[:8], "little")
    header = json.loads(good[8:8 + size])
    header["__metadata__"]["meta"] = DEEP
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    pack = tmp_path / "deep.idpack"
    pack.write_bytes(len(raw).to_bytes(8, "little") + raw + good[8 + size:])
    with pytest.raises(PackError, match="metadata is damaged"):
        parse_pack(pack.read_bytes(), pack)


def _folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "sh010").mkdir(parents=True)
    (out / "sh010" / "sh010_t1.png").write_bytes(b"\x89PNG")
    (out / "sh010" / "sh010_t1.json").write_text(json.dumps(
        {"job_key": "idcli-job-v2:x", "shot_id": "sh010", "take": 1, "image": {"path": "sh010/sh010_t1.png"}}))
    return out


def test_read_results_skips_deep_linked_and_special_sidecars(tmp_path: Path) -> None:
    out = _folder(tmp_path)
    (out / "sh010" / "sh010_t2.json").write_text(DEEP, "utf-8")
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"job_key": "k", "shot_id": "sh010", "take": 3, "image": {"path": "x"}}))
    (out / "sh010" / "sh010_t3.json").symlink_to(outside)
    os.mkfifo(out / "sh010" / "sh010_t4.json")  # would block a plain read forever
    (out / "sh010" / "sh010_t5.json").symlink_to("/dev/zero")  # would read until memory runs out
    records = list(idcli.read_results(out))
    assert [r["take"] for r in records] == [1]


def test_read_results_skips_a_sidecar_whose_image_path_is_not_text(tmp_path: Path) -> None:
    """read_results adds ``image.abs_path`` from ``image.path``: a sidecar edited to have no path, or a number
    there, stopped the iteration with a KeyError or TypeError, hiding every sidecar after it."""
    out = _folder(tmp_path)
    (out / "sh010" / "sh010_t2.json").write_text(json.dumps(
        {"job_key": "k2", "shot_id": "sh010", "take": 2, "image": {}}))
    (out / "sh010" / "sh010_t3.json").write_text(json.dumps(
        {"job_key": "k3", "shot_id": "sh010", "take": 3, "image": {"path": 7}}))
    (out / "sh020").mkdir()
    (out / "sh020" / "sh020_t1.png").write_bytes(b"\x89PNG")
    (out / "sh020" / "sh020_t1.json").write_text(json.dumps(
        {"job_key": "k4", "shot_id": "sh020", "take": 1, "image": {"path": "sh020/sh020_t1.png"}}))
    assert [(r["shot_id"], r["take"]) for r in idcli.read_results(out)] == [("sh010", 1), ("sh020", 1)]


def test_retake_flagged_reads_a_deep_sidecar_as_not_flagged(tmp_path: Path) -> None:
    from idcli.review.retake import qa_flagged

    sidecar = tmp_path / "sh010_t1.json"
    sidecar.write_text(DEEP, "utf-8")
    assert qa_flagged(sidecar, "idcli-job-v2:x", 4 * 1024 * 1024) is None
