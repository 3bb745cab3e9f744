"""A component config.json asking for hundreds of layers a block made plan build it on the meta device for seconds
(the tiny UNet with ``layers_per_block: 300``: 6-9 s, then a refusal of 28,704 missing weights that named no cause);
plan now refuses it at once, naming the file, the field, its value, the published values and its bound
(idcli/model_config_bounds.py), and never refuses the published SD1.5, SD2 or SDXL configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.engine.build import build_tiny_pipeline
from idcli.model_config_bounds import oversized_field

SHOTS = """\
version: 1
project: big
model: {{preset: sd15, id: "{model}"}}
defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}}
shots:
  - {{id: s1, prompt: "a wet street at night"}}
"""
ARCH = Path(__file__).parent.parent / "idcli" / "data" / "arch"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("config-bounds")
    build_tiny_pipeline("tiny-sd").save_pretrained(root / "sd", safe_serialization=True)
    return root


@pytest.mark.parametrize(("component", "field", "value", "says"), [
    ("unet", "layers_per_block", 300, "layers_per_block is 300, where the published models have 2 (the SD1.5, SD2 "
     "and SDXL UNets and VAEs); plan builds at most 3"),
    ("unet", "transformer_layers_per_block", [1, [2, 400]], "transformer_layers_per_block is 400, where the "
     "published models have 1 to 10"),
    ("vae", "block_out_channels", [32] * 40, "block_out_channels lists 40 blocks, where the published models have 3 "
     "or 4"),
    ("text_encoder", "num_hidden_layers", 500, "num_hidden_layers is 500, where the published models have 12 to 32"),
])
def test_a_config_asking_for_hundreds_of_layers_is_refused_by_plan_at_once(write_shotlist, saved: Path,
                                                                            tmp_path: Path, component: str,
                                                                            field: str, value: Any,
                                                                            says: str) -> None:
    model = tmp_path / "model"
    shutil.copytree(saved / "sd", model)
    config_path = model / component / "config.json"
    config = json.loads(config_path.read_text("utf-8"))
    config[field] = value
    config_path.write_text(json.dumps(config), "utf-8")
    result = CliRunner().invoke(app, ["plan", str(write_shotlist(SHOTS.format(model=model)))])
    said = " ".join(result.output.split())
    assert result.exit_code == 4, said
    assert f"its '{config_path}' asks for more layers than any SD1.5 or SDXL model has: {says}" in said, said
    assert "To fix: use the config.json the model was published with" in said and "Traceback" not in said, said


# Published configs not shipped in idcli/data/arch (their layer fields, from the models' config.json files).
PUBLISHED: dict[str, dict[str, Any]] = {
    "SDXL refiner UNet": {"layers_per_block": 2, "transformer_layers_per_block": 4,
                          "block_out_channels": [384, 768, 1536, 1536],
                          "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "DownBlock2D"]},
    "SD2.1 text encoder": {"num_hidden_layers": 23},
}


@pytest.mark.parametrize("config", [f"{arch.stem}:{component}" for arch in sorted(ARCH.glob("*.json"))
                                    for component in ("unet", "vae", "text_encoder", "text_encoder_2")
                                    if component in json.loads(arch.read_text("utf-8"))] + list(PUBLISHED))
def test_no_published_config_is_refused(config: str) -> None:
    if config in PUBLISHED:
        assert oversized_field(PUBLISHED[config]) is None
        return
    arch, component = config.split(":")
    assert oversized_field(json.loads((ARCH / f"{arch}.json").read_text("utf-8"))[component]) is None


def test_the_tiny_presets_and_a_whole_folder_are_still_planned(write_shotlist, saved: Path) -> None:
    result = CliRunner().invoke(app, ["plan", str(write_shotlist(SHOTS.format(model=saved / "sd")))])
    assert result.exit_code == 0, result.output


def test_a_config_padded_past_a_megabyte_is_bounded_too(write_shotlist, saved: Path, tmp_path: Path) -> None:
    """The bound read no config over 1 MB ("the libraries read it"), and the libraries then read it whole and plan
    built it: ``layers_per_block: 300`` padded with 1 MB of spaces took seconds and was refused as 28,704 missing
    weights, naming no cause. Plan reads what the libraries read."""
    model = tmp_path / "model"
    shutil.copytree(saved / "sd", model)
    config_path = model / "unet" / "config.json"
    config = json.loads(config_path.read_text("utf-8"))
    config["layers_per_block"] = 300
    config_path.write_text(json.dumps(config) + " " * 1_100_000, "utf-8")
    result = CliRunner().invoke(app, ["plan", str(write_shotlist(SHOTS.format(model=model)))])
    said = " ".join(result.output.split())
    assert result.exit_code == 4, said
    assert f"its '{config_path}' asks for more layers than any SD1.5 or SDXL model has: layers_per_block is 300" \
        in said, said
