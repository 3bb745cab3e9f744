"""A render whose engine refuses the model as it loads (a weight file cut after the plan checked it) ends its journal
with a line saying why, in a new output folder and in one that already held files, and deletes nothing
(docs/models.md, "A weight file damaged after the plan")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray_engines import CutsItsWeightsFirst

import idcli
from idcli.engine.build import build_tiny_pipeline
from idcli.errors import ModelUnavailableError


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("refusal-model") / "model"
    build_tiny_pipeline("tiny-sd").save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.mark.parametrize("folder", ["new", "existing"])
def test_a_model_refused_as_the_engine_loads_ends_the_journal_with_why(saved_model: Path, tmp_path: Path,
                                                                       folder: str) -> None:
    """Before, the refusal left ``.idcli/journal.jsonl`` ending in its ``run-start`` line, which the morning after
    (``idcli verify``, ``status``) reads as a render killed mid-run. The folder is kept as it is: a run that created it
    does not remove it (its lock file may be waited on by another run), and one that held files keeps every one."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(saved_model, model)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    shots = tmp_path / "shots.yaml"
    shots.write_text(f"version: 1\nproject: refusal\nmodel: {{preset: sd15, id: {json.dumps(str(model))}}}\n"
                     "defaults: {size: 64x64, steps: 2}\nshots:\n  - {id: a, prompt: x}\n  - {id: b, prompt: y}\n",
                     "utf-8")
    out = tmp_path / "out"
    if folder == "existing":
        out.mkdir()
        (out / "notes.txt").write_text("the director's notes\n", "utf-8")
    with pytest.raises(ModelUnavailableError) as refused:
        idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1,
                     engine_factory=CutsItsWeightsFirst(str(weights), str(tmp_path / "cut")))
    assert refused.value.exit_code == 4 and f"the weight file '{weights}' is damaged" in str(refused.value)
    lines = [json.loads(line) for line in (out / ".idcli" / "journal.jsonl").read_text("utf-8").splitlines()]
    assert [line["event"] for line in lines][-2:] == ["run-start", "run-end"], lines
    assert lines[-1]["error"] == str(refused.value) and lines[-1]["not_rendered"] == 2, lines[-1]
    assert lines[-1]["rendered"] == 0 and lines[-1]["failed"] == 0, lines[-1]
    assert not list(out.glob("*/*.png"))
    if folder == "existing":
        assert (out / "notes.txt").read_text("utf-8") == "the director's notes\n"
