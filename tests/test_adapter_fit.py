"""An adapter file made for another base model (h94's `_sd15` file with an SDXL base, or the reverse), refused by
`validate` and `plan` from the file's header and the base model's unet/config.json, before any selfie is encoded
or model loaded (idcli/adapter_fit.py). Random-weight files in the published layouts, tiny pipelines saved as the
base folders a user points model.id at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idcli.adapter_fit import adapter_made_for, model_cross_attention_dim
from idcli.cli import app
from idcli.engine.faceid_layout import write_random_faceid_adapter
from idcli.engine.faceid_plus import write_random_image_encoder, write_random_plusv2_adapter
from idcli.models import resolve_model
from idcli.presets import RANDOM_IMAGE_ENCODERS
from idcli.shotlist import ModelSpec

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: fit
model: {MODEL}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
"""


@pytest.fixture
def folders(tmp_path: Path, tiny_engines) -> Path:
    """Two base folders (tiny SD1.5- and SDXL-shaped pipelines) and h94's file names for each, as a clone of
    h94/IP-Adapter-FaceID holds them: FaceID and FaceID-Plus v2, with the image encoder Plus v2 reads."""
    hub = tmp_path / "IP-Adapter-FaceID"
    clip = RANDOM_IMAGE_ENCODERS["tiny-sd"]["hidden_size"]
    for preset, tag in (("tiny-sd", "sd15"), ("tiny-sdxl", "sdxl")):
        pipe = tiny_engines(preset).pipe
        pipe.save_pretrained(tmp_path / f"base-{tag}", safe_serialization=True)
        write_random_faceid_adapter(pipe.unet, hub / f"ip-adapter-faceid_{tag}.safetensors", seed=3)
        write_random_plusv2_adapter(pipe.unet, hub / f"ip-adapter-faceid-plusv2_{tag}.safetensors", clip, seed=5)
    write_random_image_encoder(tmp_path / "image_encoder", RANDOM_IMAGE_ENCODERS["tiny-sd"], seed=3)
    return tmp_path


def _model(preset: str, base: str, variant: str, weight: str) -> str:
    encoder = ", image_encoder: image_encoder" if variant == "faceid-plusv2" else ""
    return (f"{{preset: {preset}, id: {base}, adapter: {{variant: {variant}, id: IP-Adapter-FaceID, "
            f"weight_name: {weight}{encoder}}}}}")


@pytest.mark.parametrize(("preset", "base", "variant", "weight", "made", "wanted"), [
    ("sdxl", "base-sdxl", "faceid", "ip-adapter-faceid_sd15.safetensors", 32, 64),
    ("sd15", "base-sd15", "faceid-plusv2", "ip-adapter-faceid-plusv2_sdxl.safetensors", 64, 32)])
def test_an_adapter_for_the_other_base_model_is_refused_by_validate_and_plan(
        write_shotlist, folders: Path, preset: str, base: str, variant: str, weight: str, made: int,
        wanted: int) -> None:
    """Both passed (exit 0); the render refused the pair only after encoding every selfie and loading the base
    model. Now validate (exit 2, at model.adapter) and plan (exit 4) say it in the render's words, naming the file
    and both widths, and nothing is rendered."""
    shots = write_shotlist(SHOTS.replace("{MODEL}", _model(preset, base, variant, weight)))
    says = f"was made for a UNet with cross_attention_dim {made}, but this model's is {wanted}"
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2, text
    assert "shots.yaml:3:" in text and "model.adapter" in text and weight in text and says in text, text
    for command in (["plan", str(shots), "--device", "cpu"],
                    ["render", str(shots), "--out", str(folders / "out"), "--device", "cpu"]):
        result = CliRunner().invoke(app, command)
        text = " ".join(result.output.split())
        assert result.exit_code == 4, text
        assert weight in text and says in text and "_sdxl files for SDXL" in text, text
        assert not _encoded(), "the adapter is refused before any selfie is encoded"
    assert not list(folders.rglob("*.png"))


def test_the_matching_files_still_plan(write_shotlist, folders: Path) -> None:
    """Each base with its own file plans as before (the check reads headers and configs, nothing else)."""
    for tag, preset in (("sd15", "sd15"), ("sdxl", "sdxl")):
        for variant, weight in (("faceid", f"ip-adapter-faceid_{tag}.safetensors"),
                                ("faceid-plusv2", f"ip-adapter-faceid-plusv2_{tag}.safetensors")):
            shots = write_shotlist(SHOTS.replace("{MODEL}", _model(preset, f"base-{tag}", variant, weight)),
                                   f"{tag}-{variant}.yaml")
            result = CliRunner().invoke(app, ["validate", str(shots)])
            assert result.exit_code == 0, result.output


def test_what_is_not_at_hand_is_left_to_the_render(folders: Path) -> None:
    """A pickle's shapes are not read (that would unpickle it), nor a base model whose unet/config.json is not here
    (a hub id not cached): both are left to the render, which checks the loaded UNet."""
    hub = folders / "IP-Adapter-FaceID"
    assert adapter_made_for(hub / "ip-adapter-faceid_sd15.safetensors") == 32
    pickle = hub / "ip-adapter-faceid_sd15.bin"
    pickle.write_bytes(b"PK\x03\x04 not read")
    assert adapter_made_for(pickle) is None
    local = resolve_model(ModelSpec(preset="sdxl", id=str(folders / "base-sdxl")), folders, "float32",
                          hash_contents=False)
    assert model_cross_attention_dim(local) == json.loads(
        (folders / "base-sdxl" / "unet" / "config.json").read_text())["cross_attention_dim"] == 64
    hub_model = resolve_model(ModelSpec(preset="sdxl"), folders, "float32", hash_contents=False)
    assert hub_model.source == "hub" and model_cross_attention_dim(hub_model) is None


def _published_pickle(safetensors_file: Path) -> Path:
    """The same weights as h94 publishes them: ``torch.save({"image_proj": {...}, "ip_adapter": {...}})``, a .bin."""
    import torch
    from safetensors.torch import load_file

    nested: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in load_file(safetensors_file).items():
        group, rest = key.split(".", 1)
        nested[group][rest] = value
    target = safetensors_file.with_suffix(".bin")
    torch.save(nested, target)
    return target


@pytest.mark.parametrize(("preset", "base", "variant", "weight", "says"), [
    ("sd15", "base-sd15", "faceid", "ip-adapter-faceid-plusv2_sd15", "holds IP-Adapter FaceID-Plus"),
    ("sd15", "base-sd15", "faceid-plusv2", "ip-adapter-faceid_sd15", "holds IP-Adapter FaceID (an MLP"),
    ("sd15", "base-sd15", "faceid", "ip-adapter-faceid_sdxl", "cross_attention_dim 64, but this model's is 32")])
def test_an_allowed_pickle_of_the_wrong_kind_is_refused_by_validate_and_plan(
        write_shotlist, folders: Path, preset: str, base: str, variant: str, weight: str, says: str) -> None:
    """h94's files as ComfyUI and a clone of the hub repository keep them are pickles, loaded with
    `model.allow_pickle: true`. Their keys were read only by the render, so the wrong variant or the other base
    model's file passed validate and plan (exit 0) and was refused after every selfie was encoded and the base model
    loaded. With allow_pickle the pickle's keys and shapes are read as the render reads them (weights-only, memory-
    mapped: no weight is read) and the same checks as a .safetensors header's run first."""
    hub = folders / "IP-Adapter-FaceID"
    pickle = _published_pickle(hub / f"{weight}.safetensors")
    model = _model(preset, base, variant, pickle.name).replace("{preset", "{allow_pickle: true, preset", 1)
    shots = write_shotlist(SHOTS.replace("{MODEL}", model))
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and "model.adapter" in text and pickle.name in text and says in text, text
    result = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
    text = " ".join(result.output.split())
    assert result.exit_code == 4 and pickle.name in text and says in text, text
    assert not _encoded(), "the adapter is refused before any selfie is encoded"


def _encoded() -> list[Path]:
    """The identities this test's IDCLI_HOME holds: selfies encoded (conftest gives each test its own)."""
    import os

    return list((Path(os.environ["IDCLI_HOME"]) / "identities").glob("*.idpack"))


def test_an_allowed_pickle_of_the_right_kind_plans_and_one_not_read_is_left_to_the_render(
        write_shotlist, folders: Path) -> None:
    """The published pickle for the base model plans as before; a pickle that cannot be read memory-mapped (the
    legacy, pre-zip torch.save format) or is no adapter's is not refused by plan: the render says what it is."""
    import torch

    from idcli.adapter_pickle import pickle_shapes

    hub = folders / "IP-Adapter-FaceID"
    for variant, weight in (("faceid", "ip-adapter-faceid_sd15"), ("faceid-plusv2", "ip-adapter-faceid-plusv2_sd15")):
        pickle = _published_pickle(hub / f"{weight}.safetensors")
        model = _model("sd15", "base-sd15", variant, pickle.name).replace("{preset", "{allow_pickle: true, preset", 1)
        result = CliRunner().invoke(app, ["validate", str(write_shotlist(SHOTS.replace("{MODEL}", model),
                                                                         f"{variant}.yaml"))])
        assert result.exit_code == 0, result.output
    shapes = pickle_shapes(hub / "ip-adapter-faceid_sd15.bin")
    assert shapes is not None and shapes["image_proj.norm.weight"] == (32,)
    legacy = hub / "legacy.bin"
    torch.save({"image_proj": {"norm.weight": torch.zeros(64)}, "ip_adapter": {}}, legacy,
               _use_new_zipfile_serialization=False)
    assert pickle_shapes(legacy) is None
    torch.save([1, 2, 3], hub / "list.bin")
    assert pickle_shapes(hub / "list.bin") is None


class _Evil:
    """Unpickling this runs code, as a malicious checkpoint would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.marker, "code from a checkpoint ran"))


@pytest.mark.parametrize("protocol", ["zip", "bare"])
def test_reading_an_allowed_pickle_at_plan_time_runs_no_code(write_shotlist, folders: Path, protocol: str) -> None:
    """plan and validate now unpickle an allowed adapter (to read its shapes): weights-only, as the render does, so a
    malicious file runs nothing here either and is left to the render's refusal."""
    import pickle

    import torch

    from idcli.adapter_pickle import pickle_shapes

    marker = folders / "PWNED"
    evil = folders / "IP-Adapter-FaceID" / "ip-adapter-faceid_sd15.bin"
    payload = {"image_proj": {"norm.weight": _Evil(marker)}, "ip_adapter": {}}
    if protocol == "zip":
        torch.save(payload, evil)
    else:
        with evil.open("wb") as handle:
            pickle.dump(payload, handle)
    assert pickle_shapes(evil) is None
    model = _model("sd15", "base-sd15", "faceid", evil.name).replace("{preset", "{allow_pickle: true, preset", 1)
    shots = write_shotlist(SHOTS.replace("{MODEL}", model))
    assert CliRunner().invoke(app, ["validate", str(shots)]).exit_code == 0
    assert not marker.exists(), "unpickling ran code: adapters are read weights-only"


def test_an_allowed_hub_pickle_already_cached_is_checked_too(write_shotlist, folders: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook user's cache holds h94's pickle by hub id (diffusers' `load_ip_adapter("h94/IP-Adapter-FaceID",
    weight_name="ip-adapter-faceid_sd15.bin")` put it there), named with `model.allow_pickle: true`: a file of the
    wrong kind there (here a FaceID-Plus file under FaceID's name) passed plan and validate. The cached file is read as
    a local one is; one not cached is still planned by its hub id (an offline plan keeps working)."""
    import shutil

    cache = folders / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    model = "{allow_pickle: true, preset: sd15, id: base-sd15, adapter: {variant: faceid}}"
    shots = write_shotlist(SHOTS.replace("{MODEL}", model))
    not_cached = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
    assert not_cached.exit_code == 0, not_cached.output  # planned by its hub id: the render fetches and checks it
    snapshot = cache / "models--h94--IP-Adapter-FaceID" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("a" * 40)
    plus = _published_pickle(folders / "IP-Adapter-FaceID" / "ip-adapter-faceid-plusv2_sd15.safetensors")
    shutil.copy(plus, snapshot / "ip-adapter-faceid_sd15.bin")
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and "holds IP-Adapter FaceID-Plus" in text, text
    result = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
    assert result.exit_code == 4 and "holds IP-Adapter FaceID-Plus" in " ".join(result.output.split()), result.output
