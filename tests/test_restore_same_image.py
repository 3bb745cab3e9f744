"""``idcli restore OUT SHOT_tN`` puts back an image that differs from the current take.

``render --force`` of an unchanged shot keeps the take it replaces, and renders the same bytes again (the same job
key, the same sha256): the most recently replaced version was a copy of the current take, so the default restore put
back the same pixels, and restoring again alternated between identical copies, while the director wanted the earlier
prompt's take (found only with ``--key``). The default passes over kept versions of the current take's bytes and says
so (``passed_over``); ``--key`` still chooses any, and ``same_image`` says when what was put back is the same image.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import idcli
from idcli.cli import app

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

runner = CliRunner()

SHOTS = """\
version: 1
project: same-image
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1, guidance: 1.0}
shots:
  - {id: a, prompt: "a lighthouse", seeds: [22]}
"""


def _render(shots: Path, out: Path, engine_factory: Any, **options: Any) -> None:
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1,
                          engine_factory=engine_factory, **options)
    assert report.exit_code == 0, report.error


def _label(out: Path) -> str:
    """The current take's key label (the first 12 hex digits of its job key)."""
    return str(json.loads((out / "a" / "a_t1.json").read_text())["job_key"].split(":")[1][:12])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _restore(out: Path, *args: str, as_json: bool = True) -> Any:
    done = runner.invoke(app, ["restore", str(out), "a_t1", *args, *(["--json"] if as_json else [])])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout) if as_json else done


def test_restore_passes_over_a_kept_copy_of_the_current_take(write_shotlist, tmp_path: Path,
                                                             engine_factory) -> None:
    """Liked take, prompt edited, rendered again, then ``render --force``: the default restore puts back the liked
    take, not the forced render's byte-identical predecessor, and names the one it passed over; restoring again
    undoes it."""
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    _render(shots, out, engine_factory)
    liked = _label(out)
    shots.write_text(SHOTS.replace("a lighthouse", "a red lighthouse"))
    _render(shots, out, engine_factory)
    current, current_sha = _label(out), _sha(out / "a" / "a_t1.png")
    _render(shots, out, engine_factory, force=True)
    kept = out / ".idcli" / "superseded" / "a"
    assert _sha(kept / f"a_t1.{current}.png") == current_sha == _sha(out / "a" / "a_t1.png")  # the premise

    result = _restore(out)
    assert result["name"] == f"a_t1.{liked}" and _label(out) == liked
    assert result["passed_over"] == [f"a_t1.{current}"] and result["same_image"] is False
    assert result["moved_aside"] == f"a_t1.{current}.2"
    undone = _restore(out)  # restoring again undoes it: the take it replaced is the newest, and differs
    assert undone["name"] == f"a_t1.{current}.2" and undone["passed_over"] == [] and _label(out) == current


def test_restore_says_which_kept_copy_it_passed_over(write_shotlist, tmp_path: Path, engine_factory) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    _render(shots, out, engine_factory)
    liked = _label(out)
    shots.write_text(SHOTS.replace("a lighthouse", "a red lighthouse"))
    _render(shots, out, engine_factory)
    current = _label(out)
    _render(shots, out, engine_factory, force=True)
    said = _restore(out, as_json=False).stdout
    assert said.splitlines() == [
        f"restored a/a_t1.png from a_t1.{liked}; the take it replaced is kept as a_t1.{current}.2",
        f"passed over a_t1.{current}: the same image as the take it replaced"], said


def test_restore_with_only_copies_kept_puts_back_the_newest_and_says_it_is_the_same_image(
        write_shotlist, tmp_path: Path, engine_factory) -> None:
    """Nothing kept differs from the current take (only ``render --force`` replaced it): the newest is put back as
    before (exit 0), and the output says it is the same image; ``--key`` chooses a copy as before."""
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    _render(shots, out, engine_factory)
    key = _label(out)
    _render(shots, out, engine_factory, force=True)
    result = _restore(out)
    assert result["name"] == f"a_t1.{key}" and result["passed_over"] == [] and result["same_image"] is True
    said = _restore(out, "--key", key, as_json=False).stdout
    assert said.splitlines()[-1] == "the image put back is the same as the take it replaced", said
