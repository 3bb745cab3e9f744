"""Which ``atomic_write`` temporaries a clean-up removes: those whose writer is gone, judged by the writer's
pid *and* start time, so a pid reused by a later process (pid 1 in every container, a busy host) does not
keep a killed run's temporary alive for good, and a write in flight of a running process is never removed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from idcli import safeio
from idcli.store import OutputStore

HAS_PROC = safeio.process_start(os.getpid()) is not None
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="process start times come from /proc (Linux)")


def _shot_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "out" / "sh010"
    folder.mkdir(parents=True)
    return folder


@needs_proc
def test_a_temporary_named_with_this_pid_but_an_earlier_start_is_removed(tmp_path: Path) -> None:
    """A container's idcli is pid 1 on every run: the temporary of a killed earlier run carries the same pid
    as the live process cleaning up, but not its start time — it is a leftover, removed by the next command."""
    folder = _shot_folder(tmp_path)
    start = safeio.process_start(os.getpid())
    assert start is not None
    leftover = folder / f".sh010_t1.png.{os.getpid()}-{max(start - 1, 0)}.0123abcd.idcli-tmp"
    leftover.write_bytes(b"half a png of a killed run")
    with OutputStore(tmp_path / "out").session():
        pass
    assert not leftover.exists()
    leftover.write_bytes(b"half a png of a killed run")
    assert safeio.remove_dead_temporaries(folder) == [leftover] and not leftover.exists()


@needs_proc
def test_a_write_in_flight_of_this_process_survives_every_clean_up(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads of one process (two renders writing one identity cache) share a pid and a start time:
    a clean-up running while the other thread's write is between fsync and rename leaves it alone."""
    folder = _shot_folder(tmp_path)
    final = folder / "sh010_t1.png"
    real_fsync = os.fsync
    seen: dict[str, Any] = {}  # the temporary's name; what the other thread's clean-up removed

    def clean_up_mid_write(fd: int) -> None:
        real_fsync(fd)
        if "name" in seen:
            return  # the folder's fsync after the rename
        (tmp,) = folder.glob(f"*{safeio.TMP_SUFFIX}")
        seen["name"] = tmp.name
        done = threading.Event()

        def other_thread() -> None:
            with OutputStore(tmp_path / "out").session():
                pass
            seen["removed"] = safeio.remove_dead_temporaries(folder)
            done.set()

        threading.Thread(target=other_thread).start()
        assert done.wait(30)

    monkeypatch.setattr(safeio.os, "fsync", clean_up_mid_write)
    safeio.atomic_write(final, b"a whole png")
    monkeypatch.undo()
    assert seen["name"].startswith(f".sh010_t1.png.{os.getpid()}-{safeio.process_start(os.getpid())}.")
    assert seen["removed"] == [] and final.read_bytes() == b"a whole png"
    assert list(folder.glob(f"*{safeio.TMP_SUFFIX}")) == []


def test_old_format_names_are_judged_by_the_pid_alone(tmp_path: Path) -> None:
    """Temporaries named ``.NAME.PID.HEX.idcli-tmp`` (earlier versions, systems without /proc) are handled
    as before: a dead writer's removed, a live other process's kept, this process's removed only under
    the output folder's lock."""
    folder = _shot_folder(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        of_dead = folder / f".a.png.{int(dead.stdout)}.0123abcd.idcli-tmp"
        of_live = folder / f".b.png.{live.pid}.0123abcd.idcli-tmp"
        of_mine = folder / f".c.png.{os.getpid()}.0123abcd.idcli-tmp"
        for path in (of_dead, of_live, of_mine):
            path.write_bytes(b"partial")
        assert safeio.remove_dead_temporaries(folder) == [of_dead]
        with OutputStore(tmp_path / "out").session():
            pass
        assert sorted(p.name for p in folder.iterdir()) == [of_live.name]
    finally:
        live.kill()
        live.wait()


@needs_proc
def test_a_live_other_process_is_judged_by_its_start_time(tmp_path: Path) -> None:
    """Another running process's temporary is kept when its start time matches, removed when it does not
    (that pid now belongs to a later process)."""
    folder = _shot_folder(tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = safeio.process_start(live.pid)
        assert start is not None
        in_flight = folder / f".a.png.{live.pid}-{start}.0123abcd.idcli-tmp"
        reused = folder / f".b.png.{live.pid}-{start + 100}.0123abcd.idcli-tmp"
        in_flight.write_bytes(b"being written")
        reused.write_bytes(b"left by a killed run")
        with OutputStore(tmp_path / "out").session():
            pass
        assert sorted(p.name for p in folder.iterdir()) == [in_flight.name]
    finally:
        live.kill()
        live.wait()


def test_without_proc_names_and_checks_stay_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no start time can be read (no /proc), the temporary is named ``.NAME.PID.HEX.idcli-tmp`` and a
    running pid keeps its temporary, whatever start time a name claims."""
    monkeypatch.setattr(safeio, "process_start", lambda pid: None)
    monkeypatch.setattr(safeio, "writer_tags", {})  # this process's tag as a system without /proc reads it
    folder = _shot_folder(tmp_path)
    names: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        real_fsync(fd)
        names.extend(p.name for p in folder.glob(f"*{safeio.TMP_SUFFIX}"))

    monkeypatch.setattr(safeio.os, "fsync", record)
    safeio.atomic_write(folder / "x.png", b"whole")
    monkeypatch.setattr(safeio.os, "fsync", real_fsync)
    assert names == [n for n in names if n.startswith(f".x.png.{os.getpid()}.")] and len(names) == 1
    claimed = folder / f".y.png.{os.getpid()}-1.0123abcd.idcli-tmp"
    claimed.write_bytes(b"partial")
    assert safeio.remove_dead_temporaries(folder) == [] and claimed.exists()
