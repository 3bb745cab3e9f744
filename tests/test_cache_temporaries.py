"""Temporaries in idcli's home (``IDCLI_HOME``): every cache writer names its temporaries as ``atomic_write``
does and, when it writes a folder, removes those of writers no longer running — a ``kill -9`` mid-write no
longer leaves them there for good — while a running writer's temporary (a write in flight) is kept, and what
the cache holds stays the same bytes under the same names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from cli_helpers import plan_on_cpu

from idcli import safeio
from idcli.hashing import sha256_file, sha256_file_cached
from idcli.paths import state_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has ended (its temporaries are leftovers)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


@pytest.fixture
def running_tag() -> Iterator[str]:
    """``PID-START`` (``PID`` without /proc) of a process running for the whole test: a write in flight."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        start = safeio.process_start(live.pid)
        yield str(live.pid) if start is None else f"{live.pid}-{start}"
    finally:
        live.kill()
        live.wait()


def _plant(folder: Path, name: str, dead_pid: int, running_tag: str, *, as_folder: bool = False) -> tuple[Path, Path]:
    """A killed writer's temporary and a running writer's, for ``name`` in ``folder``; the dead one also with
    this process's pid but an earlier start where /proc tells starts (the pid reused, as pid 1 in containers)."""
    folder.mkdir(parents=True, exist_ok=True)
    dead = folder / f".{name}.{dead_pid}-12345.0123abcd{safeio.TMP_SUFFIX}"
    running = folder / f".{name}.{running_tag}.89abcdef{safeio.TMP_SUFFIX}"
    planted = [dead, running]
    start = safeio.process_start(os.getpid())
    if start:
        planted.append(folder / f".{name}.{os.getpid()}-{start - 1}.4567abcd{safeio.TMP_SUFFIX}")
    for path in planted:
        if as_folder:
            path.mkdir()
            (path / "config.json").write_text("{}", "utf-8")
        else:
            path.write_bytes(b"half written")
    return dead, running


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(safeio.TMP_SUFFIX))


def test_the_hash_cache_removes_dead_writers_temporaries_and_keeps_a_running_ones(
        tmp_path: Path, dead_pid: int, running_tag: str) -> None:
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(bytes(range(256)) * 16)
    home = state_dir()
    _dead, running = _plant(home, "file-hashes.json", dead_pid, running_tag)
    # Before: ``.file-hashes.json.PID.tmp``, named by the pid alone and never cleaned.
    value = sha256_file_cached(weights)
    assert value == sha256_file(weights)
    assert _temporaries(home) == [running.name]
    stat = weights.resolve().stat()
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    assert (home / "file-hashes.json").read_bytes() == json.dumps({key: value}).encode("utf-8")  # same bytes


def test_converting_a_pickled_adapter_removes_dead_writers_temporaries(
        tmp_path: Path, dead_pid: int, running_tag: str) -> None:
    from idcli.model_setup import CONVERTED_RECORD, convert_pickled_adapter

    source = tmp_path / "ip-adapter-faceid_sd15.bin"
    torch.save({"image_proj": {"proj.weight": torch.ones(4, 2)}, "ip_adapter": {"1.to_k_ip.weight": torch.zeros(3)}},
               source)
    target = state_dir() / "converted" / "ip-adapter-faceid_sd15.safetensors"
    _dead, running = _plant(target.parent, target.name, dead_pid, running_tag)
    entry = convert_pickled_adapter(source, target)
    assert _temporaries(target.parent) == [running.name]
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.startswith(".")) == [
        CONVERTED_RECORD, target.name]
    assert entry["sha256"] == sha256_file(target)


def test_a_plate_plusv2_plan_removes_dead_writers_temporaries_in_every_cache_it_writes(
        write_shotlist, tmp_path: Path, dead_pid: int, running_tag: str) -> None:
    """One plan writes the identity cache (packs, CLIP features), the plate-face cache and the random image
    encoder's folder (a folder built whole, then renamed: its temporary is a folder)."""
    pytest.importorskip("insightface", exc_type=ImportError)
    shutil.copy(ROOT / "recipes" / "plates" / "two_people.png", tmp_path / "plate.png")
    shots = write_shotlist("""\
        version: 1
        project: cache-temporaries
        model: {preset: tiny-sd, adapter: {variant: faceid-plusv2}}
        defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
        characters:
          mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
          theo: {selfies: [selfies/theo_1.jpg], description: a young man}
        shots:
          - {id: both, prompt: "{mara} and {theo} before a window", plate: plate.png}
        """)
    home = state_dir()
    folders = {"identities": "x.idpack", "plate-faces": "x.json"}
    running = {name: _plant(home / name, file, dead_pid, running_tag)[1] for name, file in folders.items()}
    encoders = home / "adapters" / "tiny-sd"
    running["encoder"] = _plant(encoders, "image_encoder", dead_pid, running_tag, as_folder=True)[1]
    plan = plan_on_cpu(shots)
    assert len(plan.jobs) == 1
    for name in folders:
        assert _temporaries(home / name) == [running[name].name], name
        assert any(not p.name.startswith(".") for p in (home / name).iterdir()), name  # the cache was written
    assert _temporaries(encoders) == [running["encoder"].name]
    assert (running["encoder"] / "config.json").is_file()  # a folder in flight is left whole
    encoder = next(p for p in encoders.iterdir() if not p.name.startswith("."))
    assert sorted(p.name for p in encoder.iterdir()) == ["config.json", "model.safetensors"]


def test_a_dead_writers_folder_temporary_is_removed_without_following_links(tmp_path: Path, dead_pid: int) -> None:
    """A folder temporary's links are removed, not followed; a link named like a temporary is left alone."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not idcli's", "utf-8")
    folder = tmp_path / "cache"
    folder.mkdir()
    built = folder / f".enc.{dead_pid}-1.0123abcd{safeio.TMP_SUFFIX}"
    built.mkdir()
    (built / "into").symlink_to(outside, target_is_directory=True)
    linked = folder / f".other.{dead_pid}-1.0123abcd{safeio.TMP_SUFFIX}"
    linked.symlink_to(outside, target_is_directory=True)
    assert safeio.remove_dead_temporaries(folder) == [built]
    assert not built.exists() and linked.is_symlink() and (outside / "keep.txt").is_file()


def _plant_old(folder: Path, name: str, dead_pid: int, running_tag: str, *, as_folder: bool = False) -> list[str]:
    """Temporaries earlier versions named by the pid alone: a killed writer's, this process's pid's (a previous
    process that had it: this version writes no such names) and a running writer's. Returns the running one's."""
    live = running_tag.split("-")[0]
    form = ".{}.partial-{}" if as_folder else ".{}.{}.tmp"
    for pid in (dead_pid, os.getpid(), live):
        path = folder / form.format(name, pid)
        if as_folder:
            path.mkdir(parents=True)
            (path / "config.json").write_text("{}", "utf-8")
        else:
            path.write_bytes(b"half written")
    return [form.format(name, live)]


def _old_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or ".partial-" in p.name)


def test_the_hash_cache_removes_a_dead_writers_temporary_of_the_old_format(
        tmp_path: Path, dead_pid: int, running_tag: str) -> None:
    # `.file-hashes.json.PID.tmp` (before temporaries were named as atomic_write's) stayed until removed by hand.
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(bytes(range(256)) * 8)
    home = state_dir()
    home.mkdir(parents=True, exist_ok=True)
    running = _plant_old(home, "file-hashes.json", dead_pid, running_tag)
    strangers = [f".notes.json.{dead_pid}.tmp", f".file-hashes.json.{dead_pid}.tmp.keep"]  # not the cache's names
    for name in strangers:
        (home / name).write_bytes(b"someone else's")
    assert sha256_file_cached(weights) == sha256_file(weights)
    assert _old_temporaries(home) == sorted([*running, strangers[0]])
    assert (home / strangers[1]).is_file()


def test_the_random_image_encoder_removes_a_dead_writers_partial_folder_of_the_old_format(
        tmp_path: Path, dead_pid: int, running_tag: str) -> None:
    # `.image_encoder.partial-PID`: the folder a first use killed mid-save left, before atomic_write's names.
    from idcli.engine.faceid_plus import write_random_image_encoder
    from idcli.presets import RANDOM_IMAGE_ENCODERS

    folder = tmp_path / "adapters" / "tiny-sd" / "image_encoder"
    folder.parent.mkdir(parents=True)
    running = _plant_old(folder.parent, folder.name, dead_pid, running_tag, as_folder=True)
    write_random_image_encoder(folder, RANDOM_IMAGE_ENCODERS["tiny-sd"])
    assert _old_temporaries(folder.parent) == running
    assert (folder.parent / running[0] / "config.json").is_file()  # a writer still running keeps its folder
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
