"""Resume re-hashes only the images whose file changed since they were last hashed (idcli/image_stamps.py).

Every resume hashed every done image: 2,000 images of a film cost seconds each time (docs/performance.md, "At film
scale: resume, restore, sign"). The promise stays: an image changed on disk since it was committed, even with its
size and mtime put back, is hashed again and rendered again (or kept as modified).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import plan_jobs, render_on_cpu

from idcli import image_stamps
from idcli.image_stamps import STAMPS, ImageStamps
from idcli.store import STATE, OutputStore

SHOTS = """\
version: 1
project: stamps
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 1}
shots:
  - {id: sh010, prompt: "an empty street at night, rain", seeds: [42]}
  - {id: sh020, prompt: "a harbour at dawn", seeds: [7]}
  - {id: sh030, prompt: "a desert road", seeds: [3]}
"""


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the images hashed for resume (a file's stamps are kept at once: the settle time is a test's 0)."""
    counted: list[int] = []
    real = image_stamps.sha256_fd

    def counting(fd: int) -> str:
        counted.append(fd)
        return real(fd)

    monkeypatch.setattr(image_stamps, "sha256_fd", counting)
    monkeypatch.setattr(image_stamps, "SETTLED_NS", 0)
    return counted


def test_a_second_resume_hashes_no_unchanged_image(write_shotlist, tmp_path: Path, engine_factory,
                                                   hashes: list[int]) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    assert render_on_cpu(shots, out, engine_factory, qa=False).rendered == 3
    hashes.clear()
    first = render_on_cpu(shots, out, engine_factory, qa=False)
    assert [o.status for o in first.jobs] == ["skipped"] * 3 and len(hashes) == 3  # hashed once, stamped
    again = render_on_cpu(shots, out, engine_factory, qa=False)
    assert [o.status for o in again.jobs] == ["skipped"] * 3 and len(hashes) == 3, "no image hashed again"
    lines = (out / STATE / STAMPS).read_text().splitlines()
    assert json.loads(lines[0]) == {"schema": 1}
    assert [json.loads(line)[0] for line in lines[1:]] == [
        "sh010/sh010_t1.png", "sh020/sh020_t1.png", "sh030/sh030_t1.png"]


def test_an_image_changed_with_its_size_and_mtime_put_back_is_hashed_again(write_shotlist, tmp_path: Path,
                                                                           engine_factory, hashes: list[int]) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, qa=False)
    render_on_cpu(shots, out, engine_factory, qa=False)  # stamps every image
    image = out / "sh020" / "sh020_t1.png"
    before, data = image.stat(), bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of the pixel data: same size, a damaged image
    with open(image, "r+b") as handle:  # in place: same inode
        handle.write(bytes(data))
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert image.stat().st_size == before.st_size and image.stat().st_mtime_ns == before.st_mtime_ns
    hashes.clear()
    report = render_on_cpu(shots, out, engine_factory, qa=False)
    assert len(hashes) == 1, "only the changed image is hashed"
    assert [(o.shot_id, o.status, o.state) for o in report.jobs] == [
        ("sh010", "skipped", "done"), ("sh020", "rendered", "stale"), ("sh030", "skipped", "done")]


def test_a_stamp_is_kept_only_once_the_file_has_settled(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG not really")
    stamps = ImageStamps(tmp_path)
    digest = stamps.sha256("a.png", image)  # written a moment ago: a write in the same tick could hide
    assert digest is not None and stamps._load() == {}
    stamps.save()
    assert not (tmp_path / STAMPS).exists()
    assert ImageStamps(tmp_path).sha256("missing.png", tmp_path / "missing.png") is None


@pytest.mark.parametrize("content", ["{garbage", '{"schema": 99}\n', "[1, 2]", "",
                                     '{"schema": 1}\n["sh010/sh010_t1.png", "x", 1, 2, 3, 4]\n',
                                     '{"schema": 1}\n{"sh010/sh010_t1.png": "no"}\n[[[[\n'])
def test_a_damaged_stamps_file_costs_only_hashing(content: str, write_shotlist, tmp_path: Path, engine_factory,
                                                  hashes: list[int]) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, qa=False)
    (out / STATE / STAMPS).write_text(content)
    hashes.clear()
    report = render_on_cpu(shots, out, engine_factory, qa=False)
    assert [o.status for o in report.jobs] == ["skipped"] * 3 and len(hashes) == 3
    assert [json.loads(line)[0] for line in (out / STATE / STAMPS).read_text().splitlines()[1:]] == [
        "sh010/sh010_t1.png", "sh020/sh020_t1.png", "sh030/sh030_t1.png"]


def test_reading_states_outside_a_run_writes_nothing(write_shotlist, tmp_path: Path, engine_factory,
                                                     hashes: list[int]) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, qa=False)
    store = OutputStore(out)
    assert [store.state(job).status for job in plan_jobs(shots)] == ["done"] * 3  # as idcli plan does
    assert not (out / STATE / STAMPS).exists()


def test_saving_drops_the_stamps_of_images_no_longer_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_stamps, "SETTLED_NS", 0)
    (tmp_path / STATE).mkdir()  # the stamps live in OUT/.idcli, their paths relative to OUT
    for name in ("kept.png", "gone.png", "seen.png"):
        (tmp_path / name).write_bytes(b"\x89PNG " + name.encode())
    first = ImageStamps(tmp_path / STATE)
    for name in ("kept.png", "gone.png"):
        assert first.sha256(name, tmp_path / name) is not None
    first.save()
    (tmp_path / "gone.png").unlink()  # deleted by hand, with its shot
    run = ImageStamps(tmp_path / STATE)
    assert run.sha256("seen.png", tmp_path / "seen.png") is not None  # a new stamp: this run saves
    run.save()
    lines = (tmp_path / STATE / STAMPS).read_text().splitlines()
    assert [json.loads(line)[0] for line in lines[1:]] == ["kept.png", "seen.png"]


def test_a_run_after_a_shot_was_deleted_forgets_its_image_stamps(write_shotlist, tmp_path: Path, engine_factory,
                                                                 hashes: list[int]) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, qa=False)
    render_on_cpu(shots, out, engine_factory, qa=False)  # stamps every image
    for path in (out / "sh030").iterdir():  # the shot deleted from the shot list and its take from the folder
        path.unlink()
    shots.write_text(SHOTS.replace('  - {id: sh030, prompt: "a desert road", seeds: [3]}\n', ""))
    os.utime(out / "sh010" / "sh010_t1.png")  # its ctime changes: hashed again, so this run saves its stamps
    report = render_on_cpu(shots, out, engine_factory, qa=False)
    assert [o.status for o in report.jobs] == ["skipped"] * 2
    assert [json.loads(line)[0] for line in (out / STATE / STAMPS).read_text().splitlines()[1:]] == [
        "sh010/sh010_t1.png", "sh020/sh020_t1.png"]
