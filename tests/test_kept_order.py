"""The order of the renders kept in ``.idcli/superseded`` survives copying the output folder.

"The most recently superseded" version decides what ``idcli restore OUT SHOT_tN`` puts back, the order
``restore --list`` shows, and which kept version ``render`` reuses or puts back first. It was each file's change
time, which no copy keeps (``cp -r``, ``cp -a``, ``rsync -a``, tar, zip, a sync client set it to the copy's time,
in whatever order the copy walks the folder): a team's copy of a show's folder put back the wrong version. The
journal, which travels with the folder, records every move aside in order (docs/file-formats.md).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kill_restore_after
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.superseded import SUPERSEDED, kept_renders, kept_versions_by_take, list_superseded

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

runner = CliRunner()

SHOTS = """\
version: 1
project: kept
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
shots:
"""


def _shots(*shots: str) -> str:
    """A shot list of ``id:seed:prompt`` shots, one take each."""
    lines = []
    for shot in shots:
        shot_id, seed, prompt = shot.split(":", 2)
        lines.append(f'  - {{id: {shot_id}, prompt: "{prompt}", seeds: [{seed}]}}\n')
    return SHOTS + "".join(lines)


def _render(shots: Path, out: Path, engine_factory: Any, **options: Any) -> idcli.RenderReport:
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1,
                          engine_factory=engine_factory, **options)
    assert report.exit_code == 0, report.error
    return report


def _copied(out: Path, copy: Path, newest_first: list[str]) -> Path:
    """``out`` copied to ``copy`` as a copy does it: every file's change time is when the copy wrote it. Copies walk
    the folder in the file system's order; here the worst one, the kept versions named in ``newest_first`` (their
    base names) written newest first, so their change times say the opposite of the order they were moved aside in.
    """
    shutil.copytree(out, copy)
    kept = copy / SUPERSEDED
    previous = 0
    for name in newest_first:
        for path in sorted(kept.glob(f"*/{name}.*")):
            if path.name[len(name):] not in (".png", ".json", ".mask.png"):
                continue  # another version whose name starts with this one's (a_t1.KEY.2 after a_t1.KEY)
            # chmod sets the change time (to the coarse clock's tick): set again until it is later than the last
            while path.stat().st_ctime_ns <= previous:
                os.chmod(path, path.stat().st_mode)
            previous = path.stat().st_ctime_ns
    return copy


def _restore_json(out: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["restore", str(out), *args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def _listed(out: Path, *take: str) -> list[dict[str, Any]]:
    """``restore --list --json``'s versions, without the absolute paths (which name the folder)."""
    versions = _restore_json(out, *take, "--list")["versions"]
    for version in versions:
        for file in ("image", "sidecar"):
            if version[file] is not None:
                version[file].pop("abs_path")
    return versions


def _journal(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / ".idcli" / "journal.jsonl").read_text().splitlines()]



def _three_prompts(write_shotlist, tmp_path: Path, engine_factory) -> tuple[Path, list[str]]:
    """Take a_t1 rendered with three prompts one after another: the output folder and the three job keys, oldest
    first (the first two kept in superseded/, the third at the final paths)."""
    shots, out = write_shotlist(_shots("a:7:a lighthouse in a storm")), tmp_path / "out"
    keys = []
    for prompt in ("a lighthouse in a storm", "a lighthouse at dawn", "a lighthouse at night"):
        shots.write_text(_shots(f"a:7:{prompt}"))
        _render(shots, out, engine_factory)
        keys.append(json.loads((out / "a" / "a_t1.json").read_text())["job_key"])
    return out, keys

def test_restore_puts_back_the_newest_kept_version_of_a_copied_folder(write_shotlist, tmp_path: Path,
                                                                        engine_factory) -> None:
    """A take rendered, its prompt edited and rendered (version 1 kept), edited again and rendered (version 2
    kept); the folder copied: ``restore`` puts back version 2, as it did before the copy, ``--list`` shows the same
    order and the same ``superseded_at`` (the journal's time of each move), and restoring again undoes it."""
    out, (first, second, third) = _three_prompts(write_shotlist, tmp_path, engine_factory)

    before = _listed(out, "a_t1")
    assert [v["job_key"] for v in before] == [first, second]  # oldest first
    moves = [e for e in _journal(out) if e["event"] == "supersede"]
    assert [v["name"] for v in before] == [e["as"] for e in moves]
    # superseded_at is when each was moved aside: its journal line's time
    assert [v["superseded_at"] for v in before] == [e["time"] for e in moves]

    copy = _copied(out, tmp_path / "copy", [v["name"] for v in reversed(before)])
    assert _listed(copy, "a_t1") == before
    assert [v for v in _listed(copy) if v["shot_id"] == "a"] == before
    assert [v.name for v in kept_renders(copy, "a_t1")] == [v["name"] for v in before]

    restored = _restore_json(copy, "a_t1")
    assert restored["job_key"] == second and restored["name"] == before[1]["name"]
    # the take it replaced is now the most recently moved aside: restoring again puts it back
    assert _listed(copy, "a_t1")[-1]["name"] == restored["moved_aside"]
    assert _restore_json(copy, "a_t1")["job_key"] == third
    assert json.loads((copy / "a" / "a_t1.json").read_text())["job_key"] == third


def test_render_reuses_the_newest_kept_version_of_a_copied_folder(write_shotlist, tmp_path: Path,
                                                                   engine_factory) -> None:
    """Seed 22 kept twice (a010's take moved aside, then b010's): after the copy, a new shot of that job is made
    of b010's, the newer, as in the folder copied (docs/file-formats.md, "Reused images")."""
    shots, out = write_shotlist(_shots("a010:22:a lighthouse", "b010:22:a lighthouse")), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(_shots("a010:33:a lighthouse", "b010:22:a lighthouse"))
    _render(shots, out, engine_factory)  # a010's seed 22 moved aside
    shots.write_text(_shots("a010:33:a lighthouse", "b010:44:a lighthouse"))
    _render(shots, out, engine_factory)  # then b010's
    names = [e["as"] for e in _journal(out) if e["event"] == "supersede"]
    assert [name.split("_t")[0] for name in names] == ["a010", "b010"]

    copy = _copied(out, tmp_path / "copy", names[::-1])
    shots.write_text(_shots("a010:33:a lighthouse", "b010:44:a lighthouse", "c010:22:a lighthouse"))
    report = _render(shots, copy, engine_factory)
    assert {j.shot_id: j.status for j in report.jobs}["c010"] == "reused"
    source = json.loads((copy / "c010" / "c010_t1.json").read_text())["reused"]["from"]["path"]
    assert source == f".idcli/superseded/b010/{names[1]}.png"


def test_render_puts_back_the_newest_of_a_takes_kept_versions_of_one_job(write_shotlist, tmp_path: Path,
                                                                          engine_factory) -> None:
    """One job's take kept three times (rendered again with --force twice, then its shot edited): the shot edited
    back puts back the one moved aside last, after a copy as before it."""
    shots, out = write_shotlist(_shots("a:22:a lighthouse")), tmp_path / "out"
    _render(shots, out, engine_factory)
    _render(shots, out, engine_factory, force=True)
    _render(shots, out, engine_factory, force=True)
    shots.write_text(_shots("a:33:a lighthouse"))
    _render(shots, out, engine_factory)
    names = [e["as"] for e in _journal(out) if e["event"] == "supersede"]
    assert len(names) == 3 and len({name.split(".")[1] for name in names}) == 1  # one job key, kept three times

    copy = _copied(out, tmp_path / "copy", names[::-1])
    shots.write_text(_shots("a:22:a lighthouse"))
    report = _render(shots, copy, engine_factory)
    assert [j.status for j in report.jobs] == ["restored"]
    put_back = [e for e in _journal(copy) if e["event"] == "restore"][-1]
    assert put_back["from"] == names[-1]


def test_a_render_reads_no_journal_to_list_kept_versions_no_two_of_one_job(write_shotlist, tmp_path: Path,
                                                                           engine_factory, monkeypatch) -> None:
    """What a render lists of superseded/ is ordered only to choose among versions of one job (the one put back or
    reused first): with no job kept twice, the journal (tens of MB for a film) is not read for it."""
    from idcli.store import OutputStore

    shots, out = write_shotlist(_shots("a:22:a lighthouse")), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(_shots("a:33:a lighthouse"))
    _render(shots, out, engine_factory)
    shots.write_text(_shots("a:44:a lighthouse"))
    _render(shots, out, engine_factory)
    reads: list[Path] = []
    real = OutputStore.journal_newest_first

    def counted(store: OutputStore, *args: Any, **kwargs: Any) -> Any:
        reads.append(store.root)
        return real(store, *args, **kwargs)

    monkeypatch.setattr(OutputStore, "journal_newest_first", counted)
    assert len(kept_versions_by_take(out)["a_t1"]) == 2 and reads == []
    assert len(list_superseded(out, "a_t1")) == 2 and len(reads) == 1  # a listing shows when each was moved aside


@pytest.mark.parametrize("journal", ["deleted", "cut to its last line", "damaged lines", "times past 9999 in UTC",
                                     "not a file"])
def test_versions_the_journal_does_not_name_are_ordered_by_their_files(write_shotlist, tmp_path: Path,
                                                                       engine_factory, journal: str) -> None:
    """A journal deleted, cut short or damaged (a received folder's may hold anything): the versions it does not
    name are ordered by their files' change times, as before; nothing fails."""
    shots, out = write_shotlist(_shots("a:7:a lighthouse in a storm")), tmp_path / "out"
    _render(shots, out, engine_factory)
    first = json.loads((out / "a" / "a_t1.json").read_text())["job_key"]
    for prompt in ("a lighthouse at dawn", "a lighthouse at night"):
        shots.write_text(_shots(f"a:7:{prompt}"))
        _render(shots, out, engine_factory)
    second = [v.job_key for v in list_superseded(out, "a_t1")][-1]
    path = out / ".idcli" / "journal.jsonl"
    lines = path.read_text().splitlines()
    if journal == "deleted":
        path.unlink()
    elif journal == "cut to its last line":
        path.write_text(lines[-1] + "\n")
    elif journal == "damaged lines":  # each version named, by a line whose time is no time; lines of no entry
        times = iter([[1], "yesterday"])
        damaged = [json.dumps({**entry, "time": next(times)}) if entry["event"] == "supersede" else json.dumps(entry)
                   for entry in map(json.loads, lines)]
        path.write_text("\n".join(["[]", "{", '{"event": "supersede", "shot_id": "a", "as": {"x": 1}}',
                                    '{"event": "restore", "shot_id": "a", "moved_aside": 5, "from": []}',
                                    *damaged, '{"event": "supersede", "shot_id": "a", "as": "a_t1.'])  + "\n")
    elif journal == "times past 9999 in UTC":  # ISO times Python reads, whose instant no datetime holds in UTC
        times = iter(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
        path.write_text("".join(json.dumps({**entry, "time": next(times)} if entry["event"] == "supersede" else entry)
                                + "\n" for entry in map(json.loads, lines)))
    else:
        path.unlink()
        path.mkdir()
    versions = _listed(out, "a_t1")
    assert [v["job_key"] for v in versions] == [first, second]
    assert _restore_json(out, "a_t1")["job_key"] == second


@pytest.mark.parametrize("times", [("2026-12-01T12:00:00+00:00", "2026-12-01T12:00:00+00:00"),
                                   ("2026-12-01T12:00:05+00:00", "2026-12-01T12:00:00+00:00")],
                         ids=["the same time", "a clock set back"])
def test_kept_versions_are_in_the_journals_order_whatever_its_times_say(write_shotlist, tmp_path: Path,
                                                                        engine_factory, times: tuple[str, str]) -> None:
    """Two moves aside whose journal lines have the same time (a coarse clock), or the newer an earlier one (a clock
    set back, two machines writing one shared folder): the line written last is the newer, as the journal says; the
    names (job keys' digits) or the times alone would put back the older."""
    out, (first, second, _third) = _three_prompts(write_shotlist, tmp_path, engine_factory)
    assert first.split(":")[1] > second.split(":")[1]  # by name alone, first would be the newer
    path = out / ".idcli" / "journal.jsonl"
    written = iter(times)
    path.write_text("".join(json.dumps({**entry, "time": next(written)} if entry["event"] == "supersede" else entry)
                            + "\n" for entry in _journal(out)))
    copy = _copied(out, tmp_path / "copy", [])

    assert [v["job_key"] for v in _listed(copy, "a_t1")] == [first, second]
    assert [v.job_key for v in kept_renders(copy)] == [first, second]
    assert _restore_json(copy, "a_t1")["job_key"] == second


@pytest.mark.parametrize("renames", [2, 3], ids=["current-take-aside", "kept-image-back"])
def test_a_take_a_killed_restore_moved_aside_keeps_its_place_after_a_render_and_a_copy(
        write_shotlist, tmp_path: Path, engine_factory, renames: int) -> None:
    """A restore killed after moving the current take aside (or after moving the kept image back, too), then the
    shot edited and rendered into the take, then edited again: every version is kept, whole, in the order it was
    moved aside, in a copy of the folder too, and `restore` puts back the newest. The take the killed restore moved
    aside was named by no `supersede` or `restore` line (render does not finish a restore), so after a copy it was
    ordered by its files' change time and `restore` put it back over the newer; after the 3rd rename the render split
    the half-restored version into a lone image (`.2`) and a lone sidecar."""
    out, (first, second, _third) = _three_prompts(write_shotlist, tmp_path, engine_factory)
    name = {key: f"a_t1.{key.split(':')[1][:12]}" for key in (first, second)}
    kill_restore_after(out, "a_t1", renames)  # putting back `second`, the take at the final paths moving aside
    shots = tmp_path / "shots.yaml"
    shots.write_text(_shots("a:7:a lighthouse in the fog"))
    _render(shots, out, engine_factory)  # into the take the killed restore left
    fog = json.loads((out / "a" / "a_t1.json").read_text())["job_key"]
    shots.write_text(_shots("a:7:a lighthouse at noon"))
    _render(shots, out, engine_factory)  # fog moved aside
    name[fog] = f"a_t1.{fog.split(':')[1][:12]}"
    third = next(v["job_key"] for v in _listed(out, "a_t1") if v["job_key"] not in (first, second, fog))
    name[third] = f"a_t1.{third.split(':')[1][:12]}"
    # Moved aside in this order: first and second (renders), third (the killed restore), fog (the last render); after
    # the 3rd rename second was half back at the final paths, moved aside again by the render into the take.
    order = [first, second, third, fog] if renames == 2 else [first, third, second, fog]
    listed = _listed(out, "a_t1")
    assert [v["name"] for v in listed] == [name[key] for key in order]  # nothing lost, in the order moved aside
    assert all(v["image"] and v["sidecar"] for v in listed), listed  # every version whole

    copy = _copied(out, tmp_path / "copy", [v["name"] for v in reversed(listed)])
    assert _listed(copy, "a_t1") == listed
    assert _restore_json(copy, "a_t1")["job_key"] == fog


@pytest.mark.parametrize("then", ["restore", "render"])
def test_a_retouched_version_half_put_back_by_a_killed_restore_is_rejoined_with_its_sidecar(
        write_shotlist, tmp_path: Path, engine_factory, then: str) -> None:
    """A take retouched by hand (its sidecar records the render's bytes, not the retouch's), kept by `render --force`,
    then `restore` of it killed after moving its image back, before its sidecar. The rerun of the restore exited 2
    (`only its sidecar was kept`) and a render moved the retouch aside as `NAME.2`, away from its sidecar: matched by
    the sidecar's sha256 only, which is the render's. The restore's `restore-begin` line recorded the retouch's bytes:
    the rerun puts the retouch back whole, and a render keeps it beside its sidecar."""
    from PIL import Image

    from idcli.hashing import sha256_file

    shots, out = write_shotlist(_shots("a:7:a lighthouse in a storm")), tmp_path / "out"
    _render(shots, out, engine_factory)
    image = out / "a" / "a_t1.png"
    with Image.open(image) as opened:
        retouch = opened.convert("RGB")
    retouch.putpixel((0, 0), (255, 0, 0))
    retouch.save(image)  # saved by an editor that keeps no PNG text: the image's record is gone
    retouched = sha256_file(image)
    _render(shots, out, engine_factory, force=True)  # the retouch kept aside, the take rendered again
    [kept] = _listed(out, "a_t1")
    kill_restore_after(out, "a_t1", 3)  # the retouch's image back at the final path, its sidecar still kept
    assert sha256_file(image) == retouched and not (out / "a" / "a_t1.json").exists()
    if then == "restore":
        assert _restore_json(out, "a_t1")["name"] == kept["name"]
        assert sha256_file(image) == retouched and (out / "a" / "a_t1.json").exists()
        assert kept["name"] not in [v["name"] for v in _listed(out, "a_t1")]
    else:
        _render(shots, out, engine_factory)
        listed = _listed(out, "a_t1")
        assert all(v["image"] and v["sidecar"] for v in listed), listed  # every version whole
        [again] = [v for v in listed if v["name"] == kept["name"]]
        assert sha256_file(out / again["image"]["path"]) == retouched


def test_a_version_half_put_back_by_a_killed_restore_gets_its_own_sidecar_back_when_its_shot_is_edited_back(
        write_shotlist, tmp_path: Path, engine_factory) -> None:
    """`restore` killed after moving the kept image back, before its sidecar; the artist then edits the shot back to
    that version and renders. The image at the final path is the job's, without a sidecar: the render rebuilt one
    from its PNG (`recovered`, the render's timing and batch gone) and left the version's own sidecar kept alone, a
    version with no image in `restore --list` for good. The render now moves that sidecar back beside its image, as
    the restore's rerun would, and journals the restore's line."""
    shots, out = write_shotlist(_shots("a:7:a lighthouse in a storm")), tmp_path / "out"
    _render(shots, out, engine_factory)
    storm = (out / "a" / "a_t1.json").read_bytes()
    shots.write_text(_shots("a:7:a lighthouse at dawn"))
    _render(shots, out, engine_factory)
    kill_restore_after(out, "a_t1", 3)  # storm's image back at the final path, its sidecar still kept
    shots.write_text(_shots("a:7:a lighthouse in a storm"))  # the shot edited back
    report = _render(shots, out, engine_factory)
    assert report.rendered == 0
    assert (out / "a" / "a_t1.json").read_bytes() == storm  # its own sidecar, not one rebuilt from the PNG
    listed = _listed(out, "a_t1")
    assert all(v["image"] and v["sidecar"] for v in listed), listed  # nothing kept in halves
    assert len(listed) == 1  # dawn, which the killed restore moved aside
    restore = [e for e in _journal(out) if e["event"] == "restore"]
    assert restore[-1]["from"] == f"a_t1.{json.loads(storm)['job_key'].split(':')[1][:12]}"
    assert restore[-1]["moved_aside"] == listed[0]["name"] and restore[-1]["finished"] is True
    assert _render(shots, out, engine_factory).count("skipped") == 1  # the take is done: its sidecar is its image's


def test_a_kept_sidecar_alone_with_no_restore_pending_is_not_taken_for_one(write_shotlist, tmp_path: Path,
                                                                           engine_factory) -> None:
    """A kept version whose PNG was deleted by hand leaves its sidecar alone; an image of the same job committed
    without its sidecar (a render killed between the two) is not that version put back: no restore of it is pending,
    so its sidecar is rebuilt from the PNG as before and no `restore` line is journalled for a restore that never
    ran (the previous test's case is a restore's)."""
    shots, out = write_shotlist(_shots("a:7:a lighthouse in a storm")), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(_shots("a:7:a lighthouse at dawn"))
    _render(shots, out, engine_factory)
    [storm] = _listed(out, "a_t1")
    (out / storm["image"]["path"]).unlink()  # the kept PNG deleted by hand: its sidecar kept alone
    shots.write_text(_shots("a:7:a lighthouse in a storm"))
    _render(shots, out, engine_factory)  # storm rendered again, the same bytes
    (out / "a" / "a_t1.json").unlink()  # as a render killed between its image and its sidecar leaves it
    _render(shots, out, engine_factory)
    assert json.loads((out / "a" / "a_t1.json").read_text())["recovered"] is True
    assert (out / storm["sidecar"]["path"]).exists()
    assert not [e for e in _journal(out) if e["event"] == "restore"]


MASK_SHOTS = """\
version: 1
project: kept-masks
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
shots:
"""


def _mask_shots(prompt: str) -> str:
    """Dual-line take a_t1 (a character, the default method): ``--save-masks`` writes ``a_t1.mask.png`` beside it."""
    return MASK_SHOTS + f'  - {{id: a, prompt: "{{mara}} {prompt}", seeds: [7]}}\n'


# restore's renames with masks: the current image, mask and sidecar aside (1-3), the kept image, mask and sidecar
# back (4-6)
_MASK_KILL_POINTS = {"current-image-aside": 1, "current-mask-aside": 2, "kept-image-back": 4, "kept-mask-back": 5}


@pytest.mark.parametrize("then", ["restore", "render"])
@pytest.mark.parametrize("renames", _MASK_KILL_POINTS.values(), ids=_MASK_KILL_POINTS.keys())
def test_a_killed_restore_of_a_dual_line_take_leaves_every_mask_beside_its_image(
        write_shotlist, tmp_path: Path, engine_factory, renames: int, then: str) -> None:
    """`restore` of a take rendered with `--save-masks` killed between two of its renames, then the same restore
    again, or a render of the shot edited back to the version being put back. Killed after the kept image moved back,
    before its mask, the rerun (and the render) moved the sidecar back beside the image and left the mask kept alone
    for good, a version with no image; killed after the current image moved aside, before its mask, the rerun left the
    displaced take's mask at the final path and moved the restored one's over it (lost). Each mask now follows its
    image, whichever rename the kill came after, and nothing is overwritten."""
    shots, out = write_shotlist(_mask_shots("on a pier at dawn")), tmp_path / "out"
    masks: dict[str, bytes] = {}
    for prompt in ("on a pier at dawn", "on a pier in a storm"):
        shots.write_text(_mask_shots(prompt))
        _render(shots, out, engine_factory, save_masks=True)
        key = json.loads((out / "a" / "a_t1.json").read_text())["job_key"]
        masks[key] = (out / "a" / "a_t1.mask.png").read_bytes()
    dawn, storm = masks
    assert masks[dawn] != masks[storm]
    kill_restore_after(out, "a_t1", renames)  # putting back dawn, storm moving aside
    if then == "restore":
        assert _restore_json(out, "a_t1")["job_key"] == dawn
    else:
        shots.write_text(_mask_shots("on a pier at dawn"))  # the shot edited back to the version being put back
        assert _render(shots, out, engine_factory, save_masks=True).rendered == 0
    assert json.loads((out / "a" / "a_t1.json").read_text())["job_key"] == dawn
    assert (out / "a" / "a_t1.mask.png").read_bytes() == masks[dawn]  # the take's own mask beside it
    kept = sorted(p.name for p in (out / SUPERSEDED / "a").iterdir())
    name = f"a_t1.{storm.split(':')[1][:12]}"
    assert kept == [f"{name}.json", f"{name}.mask.png", f"{name}.png"], kept  # storm whole, with its own mask
    assert (out / SUPERSEDED / "a" / f"{name}.mask.png").read_bytes() == masks[storm]


def test_a_render_killed_moving_a_dual_line_take_aside_keeps_its_mask_with_it(write_shotlist, tmp_path: Path,
                                                                             engine_factory) -> None:
    """`render --force --save-masks` of an unchanged dual-line take, twice: the first keeps the take as a_t1.KEY; the
    second, killed right after moving the image aside (as a_t1.KEY.2, a_t1.KEY being taken), left the sidecar and the
    mask at the final paths. Its rerun moved the sidecar to a_t1.KEY.2 (beside its image) but the mask to a_t1.KEY,
    renamed over that version's own mask: a_t1.KEY.2 kept no mask, and a file was overwritten. The mask now goes with
    its sidecar, and never over a file."""
    shots, out = write_shotlist(_mask_shots("on a pier at dawn")), tmp_path / "out"
    _render(shots, out, engine_factory, save_masks=True)
    _render(shots, out, engine_factory, save_masks=True, force=True)
    kept = out / SUPERSEDED / "a"
    [first] = {p.name.split(".png")[0] for p in kept.glob("*.png") if not p.name.endswith(".mask.png")}
    (kept / f"{first}.mask.png").write_bytes(b"first version's mask, retouched by hand")  # told apart from the next
    second_mask = (out / "a" / "a_t1.mask.png").read_bytes()
    os.rename(out / "a" / "a_t1.png", kept / f"{first}.2.png")  # the killed render's only rename
    _render(shots, out, engine_factory, save_masks=True, force=True)
    assert (kept / f"{first}.mask.png").read_bytes() == b"first version's mask, retouched by hand"
    assert sorted(p.name for p in kept.iterdir() if p.name.startswith(f"{first}.2.")) == [
        f"{first}.2.json", f"{first}.2.mask.png", f"{first}.2.png"]
    assert (kept / f"{first}.2.mask.png").read_bytes() == second_mask


class _Killed(BaseException):
    """The kill of a render, raised where a SIGKILL would have stopped it (no handler of idcli's catches it)."""


@pytest.mark.parametrize("then", ["restore", "render-edited-back", "render-without-masks"])
def test_a_render_killed_between_a_mask_and_its_image_leaves_no_mask_beside_another_take(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch, then: str) -> None:
    """Take a_t1 rendered without masks ("dawn"), then its prompt edited and rendered with `--save-masks` ("storm"),
    killed after writing storm's mask, before its image: dawn kept, only storm's mask at the final paths. The restore
    of dawn, the render of the shot edited back (which puts dawn back) and a render of storm without `--save-masks`
    left storm's mask beside an image it is not the mask of, kept nowhere. It is now moved aside first, kept under
    a name no version has (nothing is listed or restored for it), and no take gets a mask it was not rendered with."""
    from idcli.store import OutputStore

    shots, out = write_shotlist(_mask_shots("on a pier at dawn")), tmp_path / "out"
    _render(shots, out, engine_factory)
    dawn = json.loads((out / "a" / "a_t1.json").read_text())["job_key"]
    write_at = OutputStore._write_at

    def killed_before_the_image(self: OutputStore, path: Path, data: bytes) -> Path:
        if path.name == "a_t1.png":
            raise _Killed
        return write_at(self, path, data)

    shots.write_text(_mask_shots("on a pier in a storm"))
    with monkeypatch.context() as patched:
        patched.setattr(OutputStore, "_write_at", killed_before_the_image)
        with pytest.raises(_Killed):
            _render(shots, out, engine_factory, save_masks=True)
    assert sorted(p.name for p in (out / "a").iterdir()) == ["a_t1.mask.png"]  # what the kill left
    storm_mask = (out / "a" / "a_t1.mask.png").read_bytes()

    if then == "restore":
        assert _restore_json(out, "a_t1")["job_key"] == dawn
    elif then == "render-edited-back":
        shots.write_text(_mask_shots("on a pier at dawn"))
        assert _render(shots, out, engine_factory).rendered == 0  # dawn put back, not rendered again
    else:
        assert _render(shots, out, engine_factory).rendered == 1  # storm, without --save-masks
    final = sorted(p.name for p in (out / "a").iterdir())
    assert final == ["a_t1.json", "a_t1.png"], final  # no mask beside a take rendered without one
    expected = dawn if then != "render-without-masks" else None
    if expected is not None:
        assert json.loads((out / "a" / "a_t1.json").read_text())["job_key"] == expected
    kept = out / SUPERSEDED / "a"
    assert (kept / "a_t1.uncommitted.mask.png").read_bytes() == storm_mask  # kept, not lost
    assert all(v.name != "a_t1.uncommitted" for v in list_superseded(out))  # and no version of its own
