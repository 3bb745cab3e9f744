"""A base model whose weight files lack some of a component's weights (a truncated export: a UNet saved again without
some keys) is refused by `plan` and the start of a render (exit 4), before any selfie is encoded, and one whose shard
index is damaged by `validate` (exit 2, at model.id) too, naming the file and a few missing keys: from the files'
headers, the index and the components' configs (idcli/model_weight_keys.py). It was refused only by the render as it
loaded the model, after the selfies were encoded; a damaged safetensors shard index passed validate and plan. Every
layout the tiny folders come in (one file, fp16 variant files, sharded safetensors, one pickle and sharded pickles with
allow_pickle, a cached hub snapshot) still passes whole: no folder that loads is refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.engine.build import build_tiny_pipeline, load_pretrained_pipeline
from idcli.models import ModelIdentity

SHOTS = """\
version: 1
project: cut
model: {{preset: {preset}, id: "{model}", allow_pickle: {pickle}}}
defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}}
shots:
  - {{id: s1, prompt: "a wet street at night"}}
"""

# layout: (preset, allow_pickle, the UNet's weight file or index, a UNet key)
LAYOUTS = {
    "sd": ("sd15", False, "diffusion_pytorch_model.safetensors"),
    "sdxl": ("sdxl", False, "diffusion_pytorch_model.safetensors"),
    "fp16": ("sd15", False, "diffusion_pytorch_model.fp16.safetensors"),
    "shards": ("sd15", False, "diffusion_pytorch_model.safetensors.index.json"),
    "pickle": ("sd15", True, "diffusion_pytorch_model.bin"),
    "pickle-shards": ("sd15", True, "diffusion_pytorch_model.bin.index.json"),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny presets saved in each layout the tests build (diffusers folders, fp16 variant files, the UNet as
    sharded safetensors, as one pickle and as sharded pickles)."""
    import torch

    root = tmp_path_factory.mktemp("plan-check-models")
    sd = build_tiny_pipeline("tiny-sd")
    sd.save_pretrained(root / "sd", safe_serialization=True)
    build_tiny_pipeline("tiny-sdxl").save_pretrained(root / "sdxl", safe_serialization=True)
    half = build_tiny_pipeline("tiny-sd").to(torch.float16)
    half.save_pretrained(root / "fp16", safe_serialization=True, variant="fp16")
    for layout, kwargs in (("shards", {"safe_serialization": True, "max_shard_size": "100KB"}),
                           ("pickle", {"safe_serialization": False}),
                           ("pickle-shards", {"safe_serialization": False, "max_shard_size": "100KB"})):
        shutil.copytree(root / "sd", root / layout)
        shutil.rmtree(root / layout / "unet")
        sd.unet.save_pretrained(root / layout / "unet", **kwargs)
    return root


def _cut(unet: Path, weights: str, key: str) -> Path:
    """The UNet's weights saved again without ``key`` (a sharded index: the shard holding it, and the index), in
    their own format; the file that now lacks it."""
    import torch
    from safetensors.torch import load_file, save_file

    if weights.endswith(".json"):
        index_path = unet / weights
        index = json.loads(index_path.read_text("utf-8"))
        shard = unet / index["weight_map"].pop(key)
        index_path.write_text(json.dumps(index), "utf-8")
        _cut(unet, shard.name, key)
        return index_path
    file = unet / weights
    if file.suffix == ".safetensors":
        state = load_file(file)
        del state[key]
        save_file(state, file, metadata={"format": "pt"})
    else:
        state = torch.load(file, weights_only=True)
        del state[key]
        torch.save(state, file)
    return file


def _shots(write_shotlist, layout: str, model: Path) -> Path:
    preset, pickle, _ = LAYOUTS[layout]
    return write_shotlist(SHOTS.format(preset=preset, model=model, pickle=str(pickle).lower()))


def _said(command: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, command)
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_whole_folder_passes_validate_and_plan_in_each_layout(write_shotlist, folders: Path, layout: str) -> None:
    """No false refusal: each layout's complete folder is planned, and the render loads it (checked at load too)."""
    shots = _shots(write_shotlist, layout, folders / layout)
    for command in (["validate", str(shots)], ["plan", str(shots)]):
        code, said = _said(command)
        assert code == 0, said
    preset, pickle, _ = LAYOUTS[layout]
    arch = "sdxl" if preset == "sdxl" else "sd"
    load_pretrained_pipeline(ModelIdentity(preset, arch, "local", str(folders / layout), None, "test", "float32",
                                           False, pickle), None)


def _as_older_libraries_saved_it(model: Path, layout: str) -> None:
    """``model``'s files rewritten as older diffusers and transformers saved them (the hub's SD1.5 copies)."""
    import torch
    from safetensors.torch import load_file, save_file

    def rewrite(file: Path, change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> None:
        save_file(change(load_file(file)), file, metadata={"format": "pt"})

    if layout == "transformers 4":  # `text_model.` before every key, the position_ids buffer saved
        rewrite(model / "text_encoder" / "model.safetensors", lambda state: {
            "text_model.embeddings.position_ids": torch.arange(77)[None],
            **{f"text_model.{key}": value for key, value in state.items()}})
    elif layout == "old attention blocks":  # the VAE's mid-block attention as query/key/value/proj_attn
        names = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}

        def renamed(key: str) -> str:
            for new, old in names.items():
                key = key.replace(new, old) if "mid_block.attentions" in key else key
            return key
        rewrite(model / "vae" / "diffusion_pytorch_model.safetensors",
                lambda state: {renamed(key): value for key, value in state.items()})
    else:  # an EMA copy of every weight beside them
        rewrite(model / "unet" / "diffusion_pytorch_model.safetensors",
                lambda state: {**state, **{f"ema.{key}": value.clone() for key, value in state.items()}})


@pytest.mark.parametrize("layout", ["transformers 4", "old attention blocks", "EMA copy"])
def test_a_folder_saved_by_older_libraries_is_planned_and_loads(write_shotlist, folders: Path, tmp_path: Path,
                                                                layout: str) -> None:
    """No false refusal of the files the hub's SD1.5 copies hold, which the tiny folders (saved by transformers 5,
    diffusers 0.42) do not: a text encoder's keys under `text_model.` with its `position_ids`, a VAE's old attention
    names (diffusers renames them on load), a UNet carrying an EMA copy (unused keys, ignored)."""
    model = tmp_path / "model"
    shutil.copytree(folders / "sd", model)
    _as_older_libraries_saved_it(model, layout)
    code, said = _said(["plan", str(_shots(write_shotlist, "sd", model))])
    assert code == 0, said
    load_pretrained_pipeline(ModelIdentity("sd15", "sd", "local", str(model), None, "test", "float32", False, False),
                             None)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_unet_file_lacking_weights_is_refused_by_plan(write_shotlist, folders: Path, tmp_path: Path,
                                                         layout: str) -> None:
    """Before: plan passed (exit 0), the render refused it after encoding the selfies. validate, which reads a shot
    list in a second, leaves the key check to plan (it imports torch, diffusers and transformers: about 7 s)."""
    model = tmp_path / "model"
    shutil.copytree(folders / layout, model)
    cut = _cut(model / "unet", LAYOUTS[layout][2], "conv_in.weight")
    shots = _shots(write_shotlist, layout, model)
    where = f"its shard index '{cut}' leaves" if cut.name.endswith(".json") else f"the weight file '{cut}' leaves"
    code, said = _said(["plan", str(shots)])
    assert code == 4, said
    assert f"{where} out 1 of the weights the unet needs (such as 'conv_in.weight')" in said, said
    assert "Traceback" not in said, said
    code, said = _said(["validate", str(shots)])
    assert code == 0 and "weights the unet needs" not in said, said


def test_a_text_encoder_lacking_many_weights_is_named_with_a_few_of_them(write_shotlist, folders: Path,
                                                                        tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(folders / "sdxl", model)
    file = model / "text_encoder_2" / "model.safetensors"
    state = load_file(file)
    gone = sorted(key for key in state if ".layers.1." in key)
    save_file({key: value for key, value in state.items() if key not in gone}, file, metadata={"format": "pt"})
    code, said = _said(["plan", str(_shots(write_shotlist, "sdxl", model))])
    assert code == 4, said
    named = ", ".join(f"'{key}'" for key in gone[:3])
    assert (f"the weight file '{file}' leaves out {len(gone)} of the weights the text_encoder_2 needs "
            f"(such as {named})") in said, said


def test_a_render_refuses_it_before_any_selfie_is_encoded(write_shotlist, folders: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model"
    shutil.copytree(folders / "sd", model)
    cut = _cut(model / "unet", "diffusion_pytorch_model.safetensors", "conv_out.bias")
    encoded: list[object] = []
    monkeypatch.setattr("idcli.identity.resolve.resolve_identities", lambda *args, **kwargs: encoded.append(args))
    shots = write_shotlist(f"""\
        version: 1
        project: cut
        model: {{preset: sd15, id: "{model}"}}
        defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}}
        characters:
          mara: {{selfies: [selfies/mara_1.jpg]}}
        shots:
          - {{id: s1, prompt: "{{mara}} on a wet street at night", method: single}}
        """)
    code, said = _said(["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert code == 4, said
    assert f"the weight file '{cut}' leaves out 1 of the weights the unet needs (such as 'conv_out.bias')" in said
    assert encoded == [] and not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize(("damage", "says"), [
    ("not json", "it cannot be read as JSON (Expecting property name"),
    ("missing shard", "it names the shard 'diffusion_pytorch_model-00001-of-"),
    ("outside", "it names the shard '../diffusion_pytorch_model-00001-of-"),
    ("absolute", "it names the shard '/")])
@pytest.mark.parametrize("layout", ["shards", "pickle-shards"])
def test_a_damaged_shard_index_is_refused_by_validate_and_plan(write_shotlist, folders: Path, tmp_path: Path,
                                                               layout: str, damage: str, says: str) -> None:
    """Before: validate and plan passed a damaged index (exit 0); the render refused it (a sharded pickle's) or failed
    in diffusers' words (a sharded safetensors'). Now both name the index and what is wrong, in the render's words."""
    model = tmp_path / "model"
    shutil.copytree(folders / layout, model)
    index_path = model / "unet" / LAYOUTS[layout][2]
    index = json.loads(index_path.read_text("utf-8"))
    first = min(index["weight_map"].values())
    if damage == "not json":
        index_path.write_text("{not json", "utf-8")
    else:
        if damage == "missing shard":
            (model / "unet" / first).unlink()
        else:
            moved = model / first if damage == "outside" else tmp_path / first
            (model / "unet" / first).rename(moved)  # there, so only the path is wrong
            named = f"../{first}" if damage == "outside" else str(moved)
            index["weight_map"] = {key: named if shard == first else shard
                                   for key, shard in index["weight_map"].items()}
        index_path.write_text(json.dumps(index), "utf-8")
    shots = _shots(write_shotlist, layout, model)
    for command, exit_code in (("validate", 2), ("plan", 4)):
        code, said = _said([command, str(shots)])
        assert code == exit_code, said
        assert f"its shard index '{index_path}' is damaged ({says}" in said, said


def test_a_cached_hub_snapshot_lacking_weights_is_refused_by_plan(write_shotlist, folders: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from test_validate_models import add_to_cache

    cache = tmp_path / "hub"
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    snapshot = add_to_cache(cache, "someone/cut-sd15", {str(p.relative_to(folders / "sd")): p.read_bytes()
                                                        for p in (folders / "sd").rglob("*") if p.is_file()})
    shots = write_shotlist(SHOTS.format(preset="sd15", model="someone/cut-sd15", pickle="false"))
    code, said = _said(["plan", str(shots)])
    assert code == 0, said
    cut = _cut(snapshot / "vae", "diffusion_pytorch_model.safetensors", "decoder.conv_out.bias")
    code, said = _said(["plan", str(shots)])
    assert code == 4, said
    assert f"the weight file '{cut}' leaves out 1 of the weights the vae needs (such as 'decoder.conv_out.bias')" \
        in said, said


def test_a_unet_published_as_sharded_pickles_loads_by_hub_id(folders: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub repository whose UNet is published only as sharded pickles, the other components as safetensors, with
    model.allow_pickle. Its local folder loaded; by hub id the render failed with `no file named model.safetensors, or
    pytorch_model.bin, found in directory …/text_encoder`: with pickles allowed, diffusers' download fetches pickles
    alone once a component has no safetensors, so the text encoder's and VAE's weights were never downloaded. Each
    component now comes in the format its local folder's loads, and the UNet's weights are the saved ones."""
    import huggingface_hub
    import torch
    from hub_emulator import HubEmulator

    layout = folders / "pickle-shards"
    files = {str(p.relative_to(layout)): p.read_bytes() for p in layout.rglob("*") if p.is_file()}
    with HubEmulator({"someone/pickled-shards": files}, lifetime=120) as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", hub.endpoint)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        identity = ModelIdentity("sd15", "sd", "hub", "someone/pickled-shards", "main", None, "float32", False, True)
        pipe = load_pretrained_pipeline(identity, None)
    saved = build_tiny_pipeline("tiny-sd").unet.state_dict()
    loaded = pipe.unet.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[key], saved[key]) for key in saved)
    fetched = {str(p.relative_to(tmp_path / "hub")).split("/", 3)[-1] for p in (tmp_path / "hub").rglob("*.*")
               if "snapshots" in p.parts}
    assert {"text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.bin.index.json"} <= fetched, sorted(fetched)


def _hub(monkeypatch: pytest.MonkeyPatch, endpoint: str, cache: Path) -> None:
    """huggingface_hub pointed at the emulator (online) and a cache of the test's own."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_a_unet_published_as_sharded_pickles_loads_offline_once_cached(folders: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same hub repository rendered again with HF_HUB_OFFLINE=1 once its files are cached. Before: refused with
    "Cannot reach https://…/api/models/someone/pickled-shards…: offline mode is enabled": the files of each format
    were listed by asking the hub, which offline is never asked; the cached snapshot's listing is read instead."""
    import huggingface_hub
    from hub_emulator import HubEmulator

    layout = folders / "pickle-shards"
    files = {str(p.relative_to(layout)): p.read_bytes() for p in layout.rglob("*") if p.is_file()}
    identity = ModelIdentity("sd15", "sd", "hub", "someone/pickled-shards", "main", None, "float32", False, True)
    with HubEmulator({"someone/pickled-shards": files}, lifetime=120) as hub:
        _hub(monkeypatch, hub.endpoint, tmp_path / "hub")
        load_pretrained_pipeline(identity, None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    pipe = load_pretrained_pipeline(identity, None)
    saved = build_tiny_pipeline("tiny-sd").unet.state_dict()
    assert all(torch_equal(pipe.unet.state_dict()[key], saved[key]) for key in saved)


def torch_equal(a: object, b: object) -> bool:
    import torch

    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_a_safety_checker_published_as_a_pickle_is_neither_needed_nor_downloaded(
        folders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_pickle: bool) -> None:
    """An SD1.5 repository (as many are) whose safety checker, never loaded, is published only as
    `pytorch_model.bin`, every loaded component as safetensors. Its local folder loads. Before, by hub id: without
    allow_pickle refused ("Could not find the necessary `safetensors` weights"), with it the safety checker's pickle
    downloaded (1.2 GB of SD1.5's): the snapshot was downloaded for every component, the skipped ones too."""
    from hub_emulator import HubEmulator

    files = {str(p.relative_to(folders / "sd")): p.read_bytes() for p in (folders / "sd").rglob("*") if p.is_file()}
    index = json.loads(files["model_index.json"])
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    files["model_index.json"] = json.dumps(index).encode()
    files["safety_checker/config.json"] = b'{"architectures": ["StableDiffusionSafetyChecker"]}'
    files["safety_checker/pytorch_model.bin"] = b"never read"
    with HubEmulator({"someone/pickled-checker": files}, lifetime=120) as hub:
        _hub(monkeypatch, hub.endpoint, tmp_path / "hub")
        identity = ModelIdentity("sd15", "sd", "hub", "someone/pickled-checker", "main", None, "float32", False,
                                 allow_pickle)
        pipe = load_pretrained_pipeline(identity, None)
    assert pipe.safety_checker is None
    fetched = {p.name for p in (tmp_path / "hub").rglob("*") if "snapshots" in p.parts and p.is_file()}
    assert "model.safetensors" in fetched and "pytorch_model.bin" not in fetched, sorted(fetched)
