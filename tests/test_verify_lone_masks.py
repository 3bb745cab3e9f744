"""A file named as a take's mask (``SHOT/SHOT_tN.mask.png``) whose take is not there: idcli's own only beside its
take (docs/provenance.md, "What verify checks"). A ``--save-masks`` render killed after writing a take's mask, before
its image, leaves one; so does a plate or any picture copied to a mask's name: verify fails it in words that say
which, and the render run again mends the folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import idcli
from idcli.store import OutputStore
from idcli.verify import verify_folder

pytest.importorskip("insightface", exc_type=ImportError)

# Two dual-line takes (a character, the default method): --save-masks writes a_tN.mask.png beside each.
SHOTS = """\
version: 1
project: lone-masks
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
shots:
  - {id: a, prompt: "{mara} on a pier at dawn", seeds: [7, 8]}
"""
LONE_MASK = ("a take's mask whose take is not here (neither a/a_t2.png nor its sidecar a/a_t2.json is beside it): a "
             "render killed before the take's image? Run the render again (it moves the mask aside); else it was "
             "added or renamed outside idcli, and nothing checks where it came from.")


class _Killed(BaseException):
    """A kill -9 in the middle of a commit, as the kill tests stand one in (nothing after it runs)."""


def _render(shots: Path, out: Path, engine_factory: Any) -> idcli.RenderReport:
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1,
                          engine_factory=engine_factory, save_masks=True)
    assert report.exit_code == 0, report.error
    return report


def _problems(out: Path) -> dict[str, list[str]]:
    return {check.image["path"]: check.problems for check in verify_folder(out).images if not check.ok}


def test_a_mask_left_by_a_render_killed_before_its_image_fails_verify_until_the_render_runs_again(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: any file named SHOT_tN.mask.png was idcli's own by its name alone, so the mask of a take never committed
    # passed unseen ("1 image checked, 0 failed"), and so did anything copied to such a name.
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    write_at = OutputStore._write_at

    def killed_before_the_second_image(self: OutputStore, path: Path, data: bytes) -> Path:
        if path.name == "a_t2.png":
            raise _Killed
        return write_at(self, path, data)

    with monkeypatch.context() as patched:
        patched.setattr(OutputStore, "_write_at", killed_before_the_second_image)
        with pytest.raises(_Killed):
            _render(shots, out, engine_factory)
    assert sorted(p.name for p in (out / "a").iterdir()) == [
        "a_t1.json", "a_t1.mask.png", "a_t1.png", "a_t2.mask.png"]  # what the kill left
    assert _problems(out) == {"a/a_t2.mask.png": [LONE_MASK]}

    assert _render(shots, out, engine_factory).rendered == 1  # the render run again: take 2 committed, its mask new
    assert verify_folder(out).failed == 0


def test_a_picture_copied_to_the_mask_name_of_a_take_not_there_fails_verify(
        write_shotlist, tmp_path: Path, engine_factory) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    _render(shots, out, engine_factory)
    (out / "a" / "a_t2.png").unlink()  # the take gone: its sidecar alone still makes its mask idcli's own
    assert list(_problems(out)) == ["a/a_t2.png"]  # image missing
    (out / "a" / "a_t2.json").unlink()
    assert _problems(out) == {"a/a_t2.mask.png": [LONE_MASK]}
    shutil.copy(out / "a" / "a_t1.png", out / "a" / "a_t9.mask.png")  # take 9 was never rendered
    assert _problems(out)["a/a_t9.mask.png"][0].startswith(
        "a take's mask whose take is not here (neither a/a_t9.png nor its sidecar a/a_t9.json is beside it)")
