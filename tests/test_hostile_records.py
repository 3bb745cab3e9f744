"""``idcli reproduce`` given a sidecar tampered with after the render: every field it re-renders from is
checked first, so a wrong type, NaN or an oversized value is one error naming the file and the field
(exit 2), never an internal error, a huge allocation or a render of 10^9 steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import render_on_cpu
from typer.testing import CliRunner

from idcli.cli import app

SHOTS = """\
version: 1
project: hostile-records
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - {id: mara, prompt: "{mara} on a wet street"}
"""

DEL = object()
CASES = {  # dotted field -> tampered value, and what the message must name
    "tool-text": ("tool", "x", "tool"),
    "sampler-missing": ("sampler", DEL, "sampler"),
    "sampler-text": ("sampler", "x", "sampler"),
    "steps-huge": ("sampler.steps", 10**9, "sampler.steps"),
    "steps-text": ("sampler.steps", "two", "sampler.steps"),
    "guidance-nan": ("sampler.guidance", float("nan"), "sampler.guidance"),
    "sampler-unknown": ("sampler.name", "evil", "sampler.name"),
    "size-text": ("size", "64x64", "size"),
    "width-huge": ("size.width", 10**6, "size.width"),
    "width-negative": ("size.width", -64, "size.width"),
    "seed-text": ("seed", "abc", "seed"),
    "seed-huge": ("seed", 2**70, "seed"),
    "method-text": ("method", "dual", "method"),
    "params-text": ("method.params.fusion_start", "x", "method.params.fusion_start"),
    "params-nan": ("method.params.fusion_start", float("nan"), "method.params.fusion_start"),
    "spans-bad": ("method.subject_spans", [[1, 2, 3, 4]], "method.subject_spans"),
    "identity-text": ("identity", "x", "identity"),
    "identity-item-text": ("identity", ["x"], "identity[0]"),
    "model-text": ("model", "x", "model"),
    "c2pa-text": ("c2pa", "x", "c2pa"),
    "timing-text": ("timing", "x", "timing"),
    "batch-size-huge": ("batch.size", 10**9, "batch.size"),
    "batch-index-outside": ("batch.index", 5, "batch.index"),
    "job-key-object": ("job_key", {"a": 1}, "job_key"),
    "prompt-list": ("prompt", ["a"], "prompt"),
    "semantic-number": ("method.semantic_prompt", 5, "method.semantic_prompt"),
    "adapter-text": ("identity.0.adapter", "xy", "identity[0].adapter"),
    "adapter-source-number": ("identity.0.adapter.source", 5, "identity[0].adapter.source"),
    "adapter-weight-number": ("identity.0.adapter.weight_name", 5, "identity[0].adapter.weight_name"),
    "selfie-files-text": ("identity.0.selfie_files", "x", "identity[0].selfie_files"),
    "selfie-files-items": ("identity.0.selfie_files", ["x", 5], "identity[0].selfie_files"),
    "face-models-text": ("identity.0.face_models", "x", "identity[0].face_models"),
}


@pytest.fixture(scope="module")
def sidecar_text(tmp_path_factory: pytest.TempPathFactory, synthetic_face_models: Path) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("hostile-records")
    (folder / "selfies").mkdir()
    root = Path(__file__).resolve().parents[1]
    (folder / "selfies" / "mara_1.jpg").write_bytes((root / "recipes" / "selfies" / "mara_1.jpg").read_bytes())
    shots = folder / "shots.yaml"
    shots.write_text(SHOTS, "utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDCLI_HOME", str(folder / "home"))
        patch.setenv("IDCLI_FACE_MODELS", str(synthetic_face_models))
        patch.setenv("HF_HUB_OFFLINE", "1")
        report = render_on_cpu(shots, folder / "out", None)
    assert report.rendered == 2
    sidecar = folder / "out" / "mara" / "mara_t1.json"
    return sidecar, sidecar.read_text("utf-8")


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_record_is_one_clear_error(sidecar_text, monkeypatch, case: str) -> None:
    sidecar, text = sidecar_text
    monkeypatch.setenv("IDCLI_HOME", str(sidecar.parents[2] / "home"))
    dotted, value, named = CASES[case]
    record = json.loads(text)
    *parents, last = dotted.split(".")
    target = record
    for key in parents:
        target = target[int(key) if key.isdigit() else key]
    if value is DEL:
        del target[last]
    else:
        target[last] = value
    try:
        sidecar.write_text(json.dumps(record), "utf-8")
        result = CliRunner().invoke(app, ["reproduce", str(sidecar)])
    finally:
        sidecar.write_text(text, "utf-8")
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert str(sidecar) in result.stderr and f"'{named}'" in result.stderr, result.stderr


def test_the_untampered_record_still_reproduces(sidecar_text, monkeypatch) -> None:
    sidecar, _ = sidecar_text
    monkeypatch.setenv("IDCLI_HOME", str(sidecar.parents[2] / "home"))
    result = CliRunner().invoke(app, ["reproduce", str(sidecar)])
    assert result.exit_code == 0 and "identical" in result.output, result.output


@pytest.mark.parametrize("c2pa", ["x", [1], 5])
def test_verify_fails_a_sidecar_whose_c2pa_block_is_not_an_object(sidecar_text, monkeypatch, c2pa) -> None:
    sidecar, text = sidecar_text
    record = json.loads(text)
    record["c2pa"] = c2pa
    try:
        sidecar.write_text(json.dumps(record), "utf-8")
        result = CliRunner().invoke(app, ["verify", str(sidecar.parents[1])])
    finally:
        sidecar.write_text(text, "utf-8")
    assert result.exit_code == 6 and "internal error" not in result.output, result.output
    assert "FAILED mara/mara_t1.png" in result.output and "c2pa block is damaged" in result.output
    assert "ok     mara/mara_t2.png" in result.output
