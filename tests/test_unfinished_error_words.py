"""The morning-after note's words for what stopped the last render (idcli/unfinished.py): a journal's error is shortened
to 300 characters, a received journal's text. Cut at 300, a damaged weight file's refusal under a long model path
ended mid-word ("To fix: copy it again from where it cam"): the fix it names is kept whole, the cut made between
words and marked with "…" (hostile-read-30, 2026-12-02)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idcli.unfinished import unfinished_takes
from idcli.weight_file_damage import damaged_weights_words

FIX = "To fix: copy it again from where it came, or download or save the model again"


def _ended_with(tmp_path: Path, error: str) -> Path:
    """An output folder whose render of two takes committed nothing and ended, its run-end saying ``error``."""
    (tmp_path / "shots.yaml").write_text("version: 1\n")
    out = tmp_path / "out"
    (out / ".idcli").mkdir(parents=True)
    (out / ".idcli" / "shotlist.jsonl").write_text(json.dumps(
        {"project": "p", "file": str(tmp_path / "shots.yaml"), "file_relpath": "../shots.yaml",
         "takes": [["a", 1], ["b", 1]]}) + "\n")
    (out / ".idcli" / "journal.jsonl").write_text(
        json.dumps({"event": "run-start", "jobs": 2}) + "\n"
        + json.dumps({"event": "run-end", "rendered": 0, "failed": 0, "error": error, "not_rendered": 2}) + "\n")
    return out


@pytest.mark.parametrize("depth", [3, 6, 12])
def test_a_long_refusal_keeps_its_fix_whole_and_is_cut_between_words(tmp_path: Path, depth: int) -> None:
    folder = Path("/srv/models", *(f"studio-checkpoints-{n}" for n in range(depth)), "sd15-previs")
    error = damaged_weights_words(folder, folder / "unet" / "diffusion_pytorch_model.safetensors",
                                  "the file is 1,048,576 bytes, its header names 3,438,167,536")
    assert len(error) > 300
    left = unfinished_takes(_ended_with(tmp_path, error))
    assert left is not None and left.error is not None
    assert len(left.error) <= 300 and left.error.endswith(FIX), left.error
    shown, _, _ = left.error.partition(FIX)
    assert shown.endswith("… "), left.error
    assert error.startswith(shown[:-2]) and error[len(shown) - 2] in " /", left.error  # between words
    assert FIX in left.note()


def test_a_long_error_without_a_fix_is_cut_between_words(tmp_path: Path) -> None:
    error = "the disk filled while writing " + "/".join(f"folder-{n}" for n in range(60)) + " and more words"
    left = unfinished_takes(_ended_with(tmp_path, error))
    assert left is not None and left.error is not None
    assert len(left.error) <= 300 and left.error.endswith("…"), left.error
    assert error.startswith(left.error[:-1]) and error[len(left.error) - 1] in " /", left.error


def test_a_short_error_is_kept_as_it_is(tmp_path: Path) -> None:
    error = "the disk filled while writing /out/a/a_t1.png"
    left = unfinished_takes(_ended_with(tmp_path, error))
    assert left is not None and left.error == error



def test_a_refusal_holding_a_semicolon_keeps_its_fix_in_the_note(tmp_path: Path) -> None:
    """A local model folder with pickle weights alone, refused as the engine loads it (idcli/engine/build.py's
    words). The note's "N not rendered: …" kept what came before the first ";" (for "disk full while writing PATH;
    nothing partial was kept"), which dropped the refusal's advice and its fix."""
    fix = ("To fix: the folder '/srv/m' is not a complete diffusers model (model_index.json, unet/, vae/, "
           "text_encoder/ ... with .safetensors weights)")
    error = ("cannot load model '/srv/m' for preset 'sd15': Could not find the necessary `safetensors` weights in "
             "{'unet/diffusion_pytorch_model.bin'} (variant=None); only .safetensors weights are loaded by default — "
             f"set model.allow_pickle: true to load pickle checkpoints (weights only). {fix}")
    note = unfinished_takes(_ended_with(tmp_path, error))
    assert note is not None and "2 not rendered: cannot load model '/srv/m'" in note.note()
    assert f"… {fix}); to finish: idcli render " in note.note(), note.note()
