"""The hash cache of model and adapter weights (``hashing.sha256_file_cached``, IDCLI_HOME/file-hashes.json) is a
shortcut, never an answer about other bytes. It was keyed by path, size and modification time only, so a weight file
replaced by another of the same size whose mtime was kept (``cp -p``, ``rsync -t``, ``tar`` or a container layer with
normalised timestamps; a fine-tune of the same architecture has the same size to the byte) kept the old file's
sha256: job keys unchanged (the new weights' renders skipped as done), sidecars recording a hash of bytes that were
not rendered with, and a kept engine (idcli/kept_engine.py) used for a model or adapter file that had changed. The
stamp is now git's index's, as the images' (idcli/image_stamps.py): also the inode and the ctime, which no tool sets
back."""

from __future__ import annotations

import os
import time
from pathlib import Path

from idcli.hashing import sha256_file, sha256_file_cached

SIZE = 4096


def _keep_mtime_and_wait_for_a_new_ctime(path: Path, before: os.stat_result) -> None:
    """Set the mtime back, as ``cp -p`` does, and wait until the change shows in the ctime (the kernel stamps it at a
    clock tick's resolution: two writes in one tick can share one)."""
    while True:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        now = path.stat()
        if now.st_ctime_ns != before.st_ctime_ns or now.st_ino != before.st_ino:
            return
        time.sleep(0.005)


def test_a_weight_file_replaced_by_another_of_its_size_and_mtime_is_hashed_again(tmp_path: Path) -> None:
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"\x01" * SIZE)
    first = sha256_file_cached(weights)
    before = weights.stat()
    replacement = tmp_path / "fine-tune.safetensors"
    replacement.write_bytes(b"\x02" * SIZE)
    os.replace(replacement, weights)  # a download or an unpacked layer put in its place
    _keep_mtime_and_wait_for_a_new_ctime(weights, before)
    assert weights.stat().st_size == before.st_size and weights.stat().st_mtime_ns == before.st_mtime_ns
    assert sha256_file_cached(weights) == sha256_file(weights) != first


def test_a_weight_file_rewritten_in_place_with_its_mtime_kept_is_hashed_again(tmp_path: Path) -> None:
    weights = tmp_path / "ip-adapter-faceid_sd15.bin"
    weights.write_bytes(b"\x01" * SIZE)
    first = sha256_file_cached(weights)
    before = weights.stat()
    with weights.open("r+b") as handle:  # same inode, same size
        handle.write(b"\x03" * SIZE)
    _keep_mtime_and_wait_for_a_new_ctime(weights, before)
    assert weights.stat().st_ino == before.st_ino and weights.stat().st_mtime_ns == before.st_mtime_ns
    assert sha256_file_cached(weights) == sha256_file(weights) != first


def test_an_unchanged_file_is_read_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x04" * SIZE)
    value = sha256_file_cached(weights)
    monkeypatch.setattr("idcli.hashing.sha256_file", lambda path: "not read again")
    assert sha256_file_cached(weights) == value
