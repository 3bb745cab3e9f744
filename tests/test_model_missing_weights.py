"""A model folder (or cached hub snapshot) whose weight files lack some of a component's weights: a UNet file cut at a
tensor boundary and saved again, a checkpoint of another config with some keys renamed. diffusers and transformers
leave such weights at their random initialisation, a warning the only word (idcli quiets library logs): the render
succeeded (exit 0) with an image no model gives and no other run repeats. Each weighted component is refused, naming
it, its file and how many weights it lacks (exit 4); weights a file holds beyond the component's are ignored, as both
libraries ignore them, and a complete folder loads the weights it always loaded."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.engine.build import build_tiny_pipeline, load_pretrained_pipeline
from idcli.errors import ModelUnavailableError
from idcli.models import ModelIdentity


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny presets saved as diffusers folders (safetensors), and the SD one's UNet as one pickle too."""
    root = tmp_path_factory.mktemp("saved-models")
    for preset in ("tiny-sd", "tiny-sdxl"):
        build_tiny_pipeline(preset).save_pretrained(root / preset, safe_serialization=True)
    shutil.copytree(root / "tiny-sd", root / "pickled-unet")
    shutil.rmtree(root / "pickled-unet" / "unet")
    build_tiny_pipeline("tiny-sd").unet.save_pretrained(root / "pickled-unet" / "unet", safe_serialization=False)
    return root


def _without(weights: Path, key: str) -> None:
    """``weights`` saved again without ``key`` (in its own format)."""
    import torch
    from safetensors.torch import load_file, save_file

    if weights.suffix == ".safetensors":
        state = load_file(weights)
        del state[key]
        save_file(state, weights, metadata={"format": "pt"})
    else:
        state = torch.load(weights, weights_only=True)
        del state[key]
        torch.save(state, weights)


def _identity(folder: Path, preset: str = "tiny-sd", allow_pickle: bool = False) -> ModelIdentity:
    arch = "sdxl" if preset == "tiny-sdxl" else "sd"
    return ModelIdentity("sdxl" if arch == "sdxl" else "sd15", arch, "local", str(folder), None, "test", "float32",
                         False, allow_pickle)


@pytest.mark.parametrize(("layout", "component", "file", "key"), [
    ("tiny-sd", "unet", "diffusion_pytorch_model.safetensors", "conv_in.weight"),
    ("tiny-sd", "vae", "diffusion_pytorch_model.safetensors", "decoder.conv_out.bias"),
    ("tiny-sd", "text_encoder", "model.safetensors", "final_layer_norm.weight"),
    ("tiny-sdxl", "text_encoder_2", "model.safetensors", "text_projection.weight"),
    ("pickled-unet", "unet", "diffusion_pytorch_model.bin", "conv_out.bias")])
def test_a_component_file_lacking_weights_is_refused_naming_it(saved: Path, tmp_path: Path, layout: str,
                                                               component: str, file: str, key: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(saved / layout, folder)
    weights = folder / component / file
    _without(weights, key)
    preset = "tiny-sdxl" if layout == "tiny-sdxl" else "tiny-sd"
    with pytest.raises(ModelUnavailableError) as refused:
        load_pretrained_pipeline(_identity(folder, preset, allow_pickle=layout == "pickled-unet"), None)
    said = str(refused.value)
    assert (f"the weight file '{weights}' leaves out 1 of the weights the {component} needs (such as '{key}')"
            in said), said


def test_a_render_of_a_folder_lacking_weights_exits_4_and_writes_no_image(write_shotlist, saved: Path,
                                                                          tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(saved / "tiny-sd", folder)
    _without(folder / "unet" / "diffusion_pytorch_model.safetensors", "conv_in.weight")
    shots = write_shotlist(f"""\
        version: 1
        project: cut
        model: {{preset: sd15, id: "{folder}"}}
        defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}}
        shots:
          - {{id: s1, prompt: "a wet street at night"}}
        """)
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu"])
    output = " ".join(result.output.split())
    assert result.exit_code == 4, output
    assert "leaves out 1 of the weights the unet needs (such as 'conv_in.weight')" in output, output
    assert not list(tmp_path.rglob("*.png"))


def _unet_weights(pipe: Any) -> dict[str, Any]:
    return {key: value.clone() for key, value in pipe.unet.state_dict().items()}


def test_a_complete_folder_and_one_with_extra_weights_load_the_saved_weights(saved: Path, tmp_path: Path) -> None:
    """Weights a file holds that the component does not use (an extra key) are ignored, as diffusers ignores them;
    the component's own weights are those saved, so the images of complete models do not change."""
    import torch
    from safetensors.torch import load_file, save_file

    expected = _unet_weights(build_tiny_pipeline("tiny-sd"))
    folder = tmp_path / "model"
    shutil.copytree(saved / "tiny-sd", folder)
    for extra in (False, True):
        if extra:
            weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
            state = load_file(weights)
            state["not_a_layer.weight"] = torch.zeros(3)
            save_file(state, weights, metadata={"format": "pt"})
        loaded = _unet_weights(load_pretrained_pipeline(_identity(folder), None))
        assert loaded.keys() == expected.keys()
        assert all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_a_cached_hub_snapshot_lacking_weights_is_refused(saved: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--cut-sd15"
    snapshot = repo / "snapshots" / revision
    shutil.copytree(saved / "tiny-sd", snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    _without(snapshot / "vae" / "diffusion_pytorch_model.safetensors", "decoder.conv_out.bias")
    identity = ModelIdentity("sd15", "sd", "hub", "someone/cut-sd15", "main", "test", "float32", False)
    with pytest.raises(ModelUnavailableError, match=r"leaves out 1 of the weights the vae needs \(such as "
                                                    r"'decoder.conv_out.bias'\)"):
        load_pretrained_pipeline(identity, None)
