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
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}|{stat.st_ctime_ns}"
    assert (home / "file-hashes.json").read_bytes() == json.dumps({key: value}).encode("utf-8")  # same bytes


def test_an_earlier_idclis_home_temporaries_are_removed_when_their_writer_is_gone(
        tmp_path: Path, dead_pid: int, running_tag: str) -> None:
    """A home an earlier idcli wrote: its hash cache's ``.file-hashes.json.PID.tmp`` and the random image
    encoder's ``.image_encoder.partial-PID`` folder, left by a ``kill -9``, are removed (judged by the pid alone,
    as every earlier name is); a running writer's stay."""
    from idcli.engine.faceid_plus import write_random_image_encoder
    from idcli.safeio import remove_dead_temporaries

    running_pid = running_tag.split("-")[0]
    home = state_dir()
    home.mkdir(parents=True, exist_ok=True)
    for pid in (dead_pid, running_pid):
        (home / f".file-hashes.json.{pid}.tmp").write_bytes(b"{half written")
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"weights")
    sha256_file_cached(weights)
    assert sorted(p.name for p in home.iterdir() if p.name.endswith(".tmp")) == [
        f".file-hashes.json.{running_pid}.tmp"]
    encoders = home / "adapters" / "tiny-sd"
    for pid in (dead_pid, running_pid):
        (encoders / f".image_encoder.partial-{pid}").mkdir(parents=True)
        (encoders / f".image_encoder.partial-{pid}" / "config.json").write_text("{}", "utf-8")
    write_random_image_encoder(encoders / "image_encoder", {
        "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "image_size": 32, "patch_size": 16, "projection_dim": 8})
    assert sorted(p.name for p in encoders.iterdir()) == [f".image_encoder.partial-{running_pid}", "image_encoder"]
    # elsewhere (an editorial folder beside an .otio) such a name may be another program's: left alone
    (tmp_path / f".cut.otio.partial-{dead_pid}").write_bytes(b"not idcli's")
    remove_dead_temporaries(tmp_path)
    assert (tmp_path / f".cut.otio.partial-{dead_pid}").is_file()


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


def _old_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_an_earlier_idclis_temporary_with_this_processs_pid_is_a_leftover_and_other_names_stay(
        tmp_path: Path, dead_pid: int, running_tag: str) -> None:
    # Beside test_an_earlier_idclis_home_temporaries_are_removed_when_their_writer_is_gone: this version writes no
    # `.file-hashes.json.PID.tmp`, so one carrying this process's own pid (pid 1 in every container run) is a
    # previous process's, not a write in flight; names that are not the cache's stay.
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(bytes(range(256)) * 8)
    home = state_dir()
    home.mkdir(parents=True, exist_ok=True)
    live = running_tag.split("-")[0]
    for pid in (dead_pid, os.getpid(), live):  # killed, this process's own, running
        (home / f".file-hashes.json.{pid}.tmp").write_bytes(b"half written")
    running = [f".file-hashes.json.{live}.tmp"]
    strangers = [f".notes.json.{dead_pid}.tmp", f".file-hashes.json.{dead_pid}.tmp.keep"]  # not the cache's names
    for name in strangers:
        (home / name).write_bytes(b"someone else's")
    assert sha256_file_cached(weights) == sha256_file(weights)
    assert _old_temporaries(home) == sorted([*running, strangers[0]])
    assert (home / strangers[1]).is_file()
