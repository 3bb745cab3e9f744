"""Regression tests for problems found in review: links in the state folder, unchecked placeholders,
keys that moved without pixels moving, damaged pack metadata, the synthetic face-model shortcut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.errors import OutputError
from idcli.store import OutputStore

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SHOTS = """\
version: 1
project: hardening
defaults: {size: 64x64, steps: 2, guidance: 4.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: a, prompt: "{mara} in the rain"}
"""


@pytest.mark.parametrize("planted", ["lock", "journal.jsonl"])
def test_links_inside_the_state_folder_are_never_written_through(tmp_path: Path, planted: str) -> None:
    outside = tmp_path / "important.txt"
    outside.write_text("precious data\n")
    out = tmp_path / "out"
    (out / ".idcli").mkdir(parents=True)
    (out / ".idcli" / planted).symlink_to(outside)
    store = OutputStore(out)
    if planted == "lock":
        with pytest.raises(OutputError, match="symbolic link"), store.session():
            pass
    else:
        with store.session():
            store.journal({"event": "test"})
    assert outside.read_text() == "precious data\n"


def test_a_linked_state_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".idcli").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link"), OutputStore(out).session():
        pass
    assert not list(elsewhere.iterdir())


@pytest.mark.parametrize("negative,message", [
    ("blurry {bob}", "names no character"),
    ("{mara:>300000000}", "is not a character placeholder"),
    ("{mara.__class__}", "is not a character placeholder"),
])
def test_default_negative_prompt_placeholders_are_validated(write_shotlist, negative: str, message: str) -> None:
    path = write_shotlist(SHOTS.replace("guidance: 4.0}", f"guidance: 4.0, negative_prompt: '{negative}'}}"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "defaults.negative_prompt" in result.stderr and message in result.stderr


def test_prompts_substitute_names_only(write_shotlist) -> None:
    loaded = idcli.load_shotlist(write_shotlist(SHOTS.replace('"{mara} in the rain"', '"{mara} {{literal}} rain"')))
    from idcli.shot_prompts import resolve_prompt

    assert resolve_prompt(loaded.shotlist.shots[0].prompt, loaded) == "mara {literal} rain"


def test_without_guidance_the_negative_prompt_does_not_change_keys(write_shotlist) -> None:
    def keys(text: str) -> list[str]:
        plan, _ = idcli.plan_shotlist(idcli.load_shotlist(write_shotlist(text)), device="cpu")
        return [j.key for j in plan.jobs]

    off = SHOTS.replace("guidance: 4.0", "guidance: 1.0")
    assert keys(off) == keys(off.replace("guidance: 1.0}", "guidance: 0.5, negative_prompt: blurry}"))
    assert keys(SHOTS) != keys(SHOTS.replace("guidance: 4.0}", "guidance: 4.0, negative_prompt: blurry}"))


def test_pack_with_damaged_metadata_is_a_clear_error(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save

    from idcli.identity import PackError, read_pack
    from idcli.identity.pack import PACK_FORMAT, REQUIRED_TENSORS

    tensors = {name: np.zeros((1, 4), dtype=np.float32) for name in REQUIRED_TENSORS}
    tensors["embedding"] = np.ones(512, dtype=np.float32) / np.sqrt(512)
    path = tmp_path / "list.idpack"
    path.write_bytes(save(tensors, metadata={"format": PACK_FORMAT, "schema": "1", "meta": json.dumps([1, 2])}))
    with pytest.raises(PackError, match="metadata is damaged"):
        read_pack(path)


def test_encode_identity_with_the_synthetic_face_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("insightface", exc_type=ImportError)
    monkeypatch.delenv("IDCLI_FACE_MODELS")
    out = tmp_path / "mara.idpack"
    result = runner.invoke(app, ["encode-identity", str(ROOT / "recipes" / "selfies" / "mara_1.jpg"), "--name",
                                 "mara", "-o", str(out), "--face-models", "synthetic"])
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.stderr and out.is_file()


def test_unexpected_file_system_errors_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    pytest.importorskip("insightface", exc_type=ImportError)
    result = runner.invoke(app, ["encode-identity", str(ROOT / "recipes" / "selfies" / "mara_1.jpg"), "--name",
                                 "mara", "-o", str(blocker / "mara.idpack")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- shared file helpers, the store's write path and crash recovery --------------------------------------

TEXT_SHOTS = """\
version: 1
project: hardening-text
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0}
shots:
  - {id: a, prompt: "a lighthouse in fog"}
"""

DUAL_SHOTS = """\
version: 1
project: hardening-dual
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: m_dual, prompt: "{mara} walks along a wet street at night"}
"""


def _png_with_record(width: int, height: int, record: dict) -> bytes:
    """A PNG written by hand: IHDR declaring any size, the idcli iTXt chunk, then a few bytes of IDAT."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    itxt = b"idcli\x00\x00\x00\x00\x00" + json.dumps(record).encode()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"iTXt", itxt) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_safe_readers_refuse_what_is_not_a_regular_file(tmp_path: Path) -> None:
    import os

    from hang_watchdog import no_hang

    from idcli.safeio import NotRegularFile, read_regular

    fifo, link, big = tmp_path / "fifo", tmp_path / "link", tmp_path / "big"
    os.mkfifo(fifo)
    (tmp_path / "real").write_bytes(b"data")
    link.symlink_to(tmp_path / "real")
    with big.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse
    cases = [(fifo, True, "special"), (Path("/dev/zero"), True, "special"), (tmp_path, True, "folder"),
             (link, False, "link"), (tmp_path / "missing", True, "missing"), (big, True, "too-large")]
    for path, follow, kind in cases:
        with no_hang(), pytest.raises(NotRegularFile) as info:
            read_regular(path, 1024, follow_links=follow)
        assert info.value.kind == kind, (path, info.value.kind)
    assert read_regular(link, 1024) == b"data"  # links are followed unless refused


def test_atomic_write_leaves_nothing_behind_when_the_rename_fails(tmp_path: Path) -> None:
    from idcli.safeio import atomic_write

    (tmp_path / "target").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path / "target", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


def test_store_write_wraps_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("not a folder")
    store = OutputStore(out)
    with pytest.raises(RuntimeError, match="outside a store session"):
        store.write("a/a_t1.mask.png", b"png")
    with store.session():
        with pytest.raises(OutputError, match="exists and is not a folder"):
            store.write("a/a_t1.mask.png", b"png")
        assert store.write("b/b_t1.mask.png", b"png").read_bytes() == b"png"
    assert (out / "a").read_text() == "not a folder"


def test_save_masks_with_a_file_where_the_shot_folder_should_be(write_shotlist, tmp_path: Path,
                                                                engine_factory) -> None:
    pytest.importorskip("insightface", exc_type=ImportError)
    out = tmp_path / "out"
    out.mkdir()
    (out / "m_dual").write_text("a file, not the shot folder")
    report = idcli.render(idcli.load_shotlist(write_shotlist(DUAL_SHOTS)), out, device="cpu",
                          engine_factory=engine_factory, save_masks=True)
    # The strip is written first: its folder cannot be made, and that stops the run as an output error.
    assert report.error and "m_dual" in report.error and "exists and is not a folder" in report.error
    # Not committed because the folder stopped the run, as for a full disk: `not_rendered` (`failed` until 2026-12-02)
    assert [o.status for o in report.jobs] == ["not_rendered"]
    assert (out / "m_dual").read_text() == "a file, not the shot folder"


def test_recovery_uses_the_hash_read_with_the_record(write_shotlist, tmp_path: Path, engine_factory) -> None:
    from idcli.hashing import sha256_file

    loaded = idcli.load_shotlist(write_shotlist(TEXT_SHOTS))
    out = tmp_path / "out"
    first = idcli.render(loaded, out, device="cpu", engine_factory=engine_factory)
    job_image, job_sidecar = Path(first.jobs[0].image), Path(first.jobs[0].sidecar)
    rendered = json.loads(job_sidecar.read_text())
    job_sidecar.unlink()  # as if killed between the image's rename and the sidecar's
    plan, _ = idcli.plan_shotlist(loaded, device="cpu")
    state = OutputStore(out).state(plan.jobs[0])
    assert state.status == "recoverable" and state.image_sha256 == sha256_file(job_image)
    again = idcli.render(loaded, out, device="cpu", engine_factory=engine_factory)
    assert [o.status for o in again.jobs] == ["recovered"]
    recovered = json.loads(job_sidecar.read_text())
    assert recovered["image"]["sha256"] == rendered["image"]["sha256"] == state.image_sha256
    assert recovered["recovered"] is True


@pytest.mark.parametrize("size", [(64, 64), (10_000, 10_000), (100_000, 100_000)])
def test_a_png_record_is_read_from_the_headers_without_decoding(size: tuple[int, int]) -> None:
    import tracemalloc
    import warnings

    from idcli.provenance import read_png_record

    record = {"job_key": "k", "image": {"width": size[0], "height": size[1]}}
    data = _png_with_record(*size, record)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no DecompressionBombWarning: nothing is decoded
            assert read_png_record(data) == record
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024
    # A record that describes another size of image is not this image's record.
    assert read_png_record(_png_with_record(size[0], size[1] + 1, record)) is None
    assert read_png_record(_png_with_record(*size, {"job_key": "k"})) is None


def test_a_planted_bomb_carrying_the_jobs_record_is_not_recovered(write_shotlist, tmp_path: Path) -> None:
    plan, _ = idcli.plan_shotlist(idcli.load_shotlist(write_shotlist(TEXT_SHOTS)), device="cpu")
    job = plan.jobs[0]
    out = tmp_path / "out"
    (out / job.shot_id).mkdir(parents=True)
    record = {"job_key": job.key, "image": {"width": 64, "height": 64}}
    (out / job.image_relpath).write_bytes(_png_with_record(60_000, 60_000, record))
    assert OutputStore(out).state(job).status == "stale"
    (out / job.image_relpath).write_bytes(_png_with_record(64, 64, record))  # header and record agree
    state = OutputStore(out).state(job)
    assert state.status == "recoverable" and state.record == record and state.image_sha256
