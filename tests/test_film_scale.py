"""A feature film's shot list at full size: what a command does per shot must not grow with the film.

Each test counts operations (entries scanned, sidecars read), never wall-clock time: a cost that grows
with the number of shots *per shot* is quadratic over the film and shows as a count far above a small
multiple of the shots. The folder is rendered once per module with an engine that returns flat images
(the commit path, sidecars and manifest are the real ones; docs/performance.md, "At film scale").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import idcli

SHOTS = 150  # enough that a per-shot scan of every shot (~11,000 steps) stands far above the bound


class FlatEngine:
    """Renders every request as a flat grey image: the commit path is what these tests look at."""

    adapter_record = None

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        return [RenderResult(np.full((r.height, r.width, 3), 0.5, dtype=np.float32)) for r in requests]

    def suggest_batch_size(self, request) -> int:
        return 16


def _count_kept_entries_listed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, every directory entry kept_files.py lists is counted in the one-item list returned."""
    from idcli import kept_files

    scanned = [0]
    real_scandir = kept_files.os.scandir

    def counting_scandir(path):
        entries = list(real_scandir(path))
        scanned[0] += len(entries)
        return iter(entries)

    monkeypatch.setattr(kept_files.os, "scandir", counting_scandir)
    return scanned


def flat_engine_factory(identity, runtime, adapter=None) -> FlatEngine:
    return FlatEngine()


def film_text(shots: int, prompt: str = "a lighthouse at dusk, shot {i}") -> str:
    lines = ["version: 1", "project: film", "model: {preset: tiny-sd}",
             "defaults: {size: 64x64, steps: 1, guidance: 1.0}", "shots:"]
    lines += [f'  - {{id: sc{i // 20 + 1:03d}_sh{i % 20 * 10 + 10:04d}, prompt: "{prompt.format(i=i)}"}}'
              for i in range(shots)]
    return "\n".join(lines) + "\n"


def render_film(folder: Path, takes: int = 1) -> tuple[Path, Path]:
    """(shot list, output folder) of a film of SHOTS shots of ``takes`` takes each rendered in ``folder``."""
    shots = folder / "film.yaml"
    shots.write_text(film_text(SHOTS).replace("guidance: 1.0}", f"guidance: 1.0, takes: {takes}}}"), "utf-8")
    out = folder / "out"
    report = idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False)
    assert report.rendered == SHOTS * takes
    return shots, out


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> tuple[Path, Path]:
    """(shot list, output folder) of a rendered film of SHOTS one-take shots."""
    return render_film(tmp_path_factory.mktemp("film"))


class CountingShots(tuple):
    """The shot order's entries, counting how many are stepped through."""

    steps = 0

    def __iter__(self):
        for entry in super().__iter__():
            CountingShots.steps += 1
            yield entry


def test_review_reads_the_shot_order_once_not_once_per_shot(film, monkeypatch) -> None:
    from dataclasses import replace

    from idcli.review import runs
    from idcli.review.order import read_order

    _shots, out = film

    def counting_order(root, shots_file=None):
        order = read_order(root, shots_file)
        return replace(order, shots=CountingShots(order.shots))

    monkeypatch.setattr(runs, "read_order", counting_order)
    CountingShots.steps = 0
    run = runs.load_run(out)
    assert [s.entry and s.entry.id for s in run.shots] == [s.id for s in run.shots] and len(run.shots) == SHOTS
    # Looking each shot up by scanning the order is SHOTS²/2 steps (11,250 here); an index is a few passes.
    assert CountingShots.steps <= 4 * SHOTS, CountingShots.steps


def test_a_resume_scans_the_kept_takes_once_not_once_per_job(tmp_path, monkeypatch) -> None:

    shots, out = tmp_path / "film.yaml", tmp_path / "out"
    count = 80
    for prompt in ("a lighthouse at dusk, shot {i}", "a lighthouse at dawn, shot {i}"):
        shots.write_text(film_text(count, prompt), "utf-8")
        idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False)
    # The edit undone: every take is the dusk render kept in .idcli/superseded, so each is put back.
    shots.write_text(film_text(count), "utf-8")
    scanned = _count_kept_entries_listed(monkeypatch)
    report = idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False)
    assert report.count("restored") == count and report.rendered == 0
    # A scan of every kept file per job is count * 3 * count entries (19,200 here); once per run is ~3 * count.
    assert scanned[0] <= 10 * count, scanned


def test_images_without_sidecars_moved_aside_scan_only_their_own_shots_kept_versions(tmp_path, monkeypatch) -> None:
    """A folder whose sidecars were lost (the PNGs copied alone), its shot list edited and rendered: every take's
    image, without its sidecar, moves aside. A commit moving such an image aside looks for its sidecar kept alone (a
    restore killed between the two, interrupted_restore.py: kept_sidecar_of), and listed every shot's kept versions
    for it: a scan of the whole of .idcli/superseded per take, quadratic over a film."""

    shots, out = tmp_path / "film.yaml", tmp_path / "out"
    count = 80
    for prompt in ("a lighthouse at dusk, shot {i}", "a lighthouse at dawn, shot {i}"):
        shots.write_text(film_text(count, prompt), "utf-8")
        idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False)
    for sidecar in out.glob("sc*/*.json"):
        sidecar.unlink()
    shots.write_text(film_text(count, "a lighthouse at noon, shot {i}"), "utf-8")
    scanned = _count_kept_entries_listed(monkeypatch)
    report = idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False)
    assert report.rendered == count and len(report.superseded) == count
    # A scan of every kept file per take is count * 2 * count entries and more (12,800 here); of its own shot's ~4.
    assert scanned[0] <= 10 * count, scanned


def test_a_films_contact_sheet_is_cut_into_sheets_a_viewer_can_open(tmp_path) -> None:
    from PIL import Image

    from idcli.review.contact_sheet import contact_sheet_pngs
    from idcli.review.runs import Run, Shot

    # 2,000 shots made one PNG 1064 x 152,008 pixels: Pillow calls it a decompression bomb, a browser shows it
    # as a sliver. However many shots, each sheet stays a picture one opens and reads.
    shots = [Shot(f"sc{i // 20 + 1:03d}_sh{i % 20 * 10 + 10:04d}", [], None) for i in range(400)]
    sheets = contact_sheet_pngs(Run(tmp_path, shots, None), {})
    assert len(sheets) == 4
    for png in sheets:
        with Image.open(__import__("io").BytesIO(png)) as sheet:
            assert sheet.height <= 16_384 and sheet.width * sheet.height <= 20_000_000, sheet.size


def test_review_writes_every_sheet_links_them_and_removes_stale_ones(film) -> None:
    from idcli.review.page import write_review
    from idcli.review.runs import load_run

    _shots, out = film
    stale = out / "review" / "contact-sheet-3.png"  # from an earlier review of a longer cut
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"old")
    result = write_review(load_run(out))
    names = [p.name for p in result.contact_sheets]
    assert names == ["contact-sheet.png", "contact-sheet-2.png"] and result.contact_sheet == result.contact_sheets[0]
    assert all(p.is_file() for p in result.contact_sheets) and not stale.exists()
    page = result.index.read_text("utf-8")
    assert 'href="contact-sheet.png"' in page and 'href="contact-sheet-2.png"' in page


class CountingId(str):
    """A shot id that counts how often it is compared."""

    comparisons = 0

    def __eq__(self, other):
        CountingId.comparisons += 1
        return str.__eq__(self, other)

    def __ne__(self, other):
        CountingId.comparisons += 1
        return str.__ne__(self, other)

    __hash__ = str.__hash__


def test_orphans_are_found_without_comparing_each_with_every_take(film) -> None:
    from idcli.orphans import find_orphans, images_in

    _shots, out = film
    taken = images_in(out)
    # A film cut in half: the second half's takes are orphans of the first half's shot list.
    live = [(CountingId(shot), take) for shot, take, _image in taken[: SHOTS // 2]]
    CountingId.comparisons = 0
    orphans = find_orphans(out, live)
    assert len(orphans) == SHOTS - SHOTS // 2
    assert {o["reason"] for o in orphans} == {"the shot is no longer in the shot list"}
    # Each orphan's shot looked for among every live take is (SHOTS / 2)² comparisons (5,625 here).
    assert CountingId.comparisons <= 2 * SHOTS, CountingId.comparisons


class CountingShotList(list):
    """A run's shots, counting how many are stepped through."""

    steps = 0

    def __iter__(self):
        for shot in super().__iter__():
            CountingShotList.steps += 1
            yield shot


def test_deliver_finds_the_shots_asked_for_without_a_scan_per_shot(film, tmp_path, monkeypatch) -> None:
    from idcli.delivery import deliver
    from idcli.review import runs

    _shots, out = film
    real_load_run = runs.load_run

    def counting_load_run(*args, **kwargs):
        run = real_load_run(*args, **kwargs)
        run.shots = CountingShotList(run.shots)
        return run

    monkeypatch.setattr(runs, "load_run", counting_load_run)
    wanted = [shot for shot, _take, _image in __import__("idcli.orphans").orphans.images_in(out)][SHOTS // 2:]
    CountingShotList.steps = 0
    report = deliver(out, tmp_path / "delivery", shots=",".join(wanted))
    assert sorted(item.shot_id for item in report.images) == sorted(wanted)
    # Looking each asked-for shot up by scanning the run is (SHOTS / 2) * SHOTS / 2 steps and more; an index
    # is a few passes.
    assert CountingShotList.steps <= 4 * SHOTS, CountingShotList.steps
