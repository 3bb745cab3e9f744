"""IP-Adapter FaceID-Plus v2 on the tiny presets (CPU, float32): published layouts, the stock diffusers call,
per-row identities and CLIP features, the identity cache, and the errors that exit 4."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import plan_on_cpu
from PIL import Image
from typer.testing import CliRunner

from idcli.adapters import PLUSV2, AdapterIdentity, ImageEncoderIdentity
from idcli.engine import Engine
from idcli.engine.build import build_tiny_pipeline
from idcli.engine.faceid_layout import faceid_lora_shapes, write_random_faceid_adapter
from idcli.engine.faceid_plus import (
    crop_features,
    load_image_encoder,
    plusv2_adapter_shapes,
    write_random_image_encoder,
    write_random_plusv2_adapter,
)
from idcli.errors import ModelUnavailableError
from idcli.models import resolve_model
from idcli.presets import RANDOM_IMAGE_ENCODERS
from idcli.render_request import RenderRequest
from idcli.runtime import Runtime
from idcli.shotlist import ModelSpec

pytest.importorskip("insightface", exc_type=ImportError)

PRESETS = ["tiny-sd", "tiny-sdxl"]
WEIGHT = "ip-adapter-faceid-plusv2_random.safetensors"
CLIP_HIDDEN = RANDOM_IMAGE_ENCODERS["tiny-sd"]["hidden_size"]


def plus_folder(root: Path, preset: str, lora: bool) -> Path:
    """A folder as h94 lays one out for diffusers: the adapter file and an ``image_encoder/`` beside it."""
    folder = root / f"plus-{preset}-{'lora' if lora else 'plain'}"
    write_random_plusv2_adapter(build_tiny_pipeline(preset).unet, folder / WEIGHT, CLIP_HIDDEN, seed=5, lora=lora)
    write_random_image_encoder(folder / "image_encoder", RANDOM_IMAGE_ENCODERS[preset], seed=3)
    return folder


def local_adapter(folder: Path, shortcut_scale: float = 1.0) -> AdapterIdentity:
    encoder = ImageEncoderIdentity("local", str(folder / "image_encoder"), "", None, "test")
    return AdapterIdentity("local", str(folder), WEIGHT, "", None, "test", False, False, PLUSV2, shortcut_scale,
                           encoder)


def face_crop(seed: int) -> np.ndarray:
    """A smooth 224-px RGB image standing in for an aligned face crop (CLIP reads any image)."""
    g = np.random.default_rng(seed)
    small = g.integers(0, 256, (7, 7, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((224, 224), Image.Resampling.BICUBIC))


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return v / np.linalg.norm(v)


# -- the published layouts, loaded by diffusers itself ------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_random_plusv2_files_have_the_published_layout(tmp_path: Path, preset: str) -> None:
    from diffusers.models.embeddings import IPAdapterFaceIDPlusImageProjection
    from safetensors import safe_open

    folder = plus_folder(tmp_path, preset, lora=True)
    pipe = build_tiny_pipeline(preset)
    with safe_open(folder / WEIGHT, framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - no iterator
    expected = {**plusv2_adapter_shapes(pipe.unet, CLIP_HIDDEN), **faceid_lora_shapes(pipe.unet)}
    assert found == expected
    cad = pipe.unet.config.cross_attention_dim
    # The original ProjPlusModel's names: perceiver_resampler.layers.{i}.0 attention, .1 feed-forward.
    assert found["image_proj.perceiver_resampler.layers.3.0.to_kv.weight"] == (128, cad)
    assert found["image_proj.perceiver_resampler.proj_in.weight"] == (cad, CLIP_HIDDEN)
    assert (folder / "image_encoder" / "config.json").is_file()
    assert (folder / "image_encoder" / "model.safetensors").is_file()
    # The same bytes for the same seed: the random presets' files are named by what made them.
    again = write_random_plusv2_adapter(pipe.unet, tmp_path / "again" / WEIGHT, CLIP_HIDDEN, seed=5)
    assert again.read_bytes() == (folder / WEIGHT).read_bytes()
    # diffusers' own loader takes a LoRA-free copy and the image encoder folder as published (strict loading).
    plain = plus_folder(tmp_path, preset, lora=False)
    pipe.load_ip_adapter(str(plain), subfolder="", weight_name=WEIGHT, image_encoder_folder="image_encoder")
    assert isinstance(pipe.unet.encoder_hid_proj.image_projection_layers[0], IPAdapterFaceIDPlusImageProjection)
    assert pipe.image_encoder.config.hidden_size == CLIP_HIDDEN


# -- our engine against diffusers' stock FaceID-Plus call ---------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_our_path_equals_the_stock_faceid_plus_pipeline(tmp_path: Path, preset: str) -> None:
    """One image at uniform strength: idcli's engine (features from our cache code, per-row processors)
    against StableDiffusion(XL)Pipeline with the adapter and image encoder loaded by ``load_ip_adapter``,
    ``ip_adapter_image_embeds`` and the projection's ``clip_embeds``/``shortcut`` set as diffusers' docs say.

    Without classifier-free guidance: diffusers' stock call also runs the identity on the unconditional
    row (zero embedding, the CLIP features of a black image), which idcli deliberately does not.
    The checkpoint carries no LoRA here: diffusers applies one only through peft, which is not installed.
    """
    from idcli.engine.samplers import make_scheduler

    folder = plus_folder(tmp_path, preset, lora=False)
    crop, embedding, strength, shortcut = face_crop(1), unit(2), 0.8, 0.7
    features = crop_features(load_image_encoder(str(folder / "image_encoder")), crop[None])
    request = RenderRequest(prompt="a portrait of a woman in a garden", negative_prompt="", seed=11, width=64,
                            height=64, steps=4, guidance=1.0, sampler="ddim", identity_embedding=embedding,
                            identity_strength=strength, method="single",
                            identity_clip=np.concatenate([features, features]))
    model = resolve_model(ModelSpec(preset=preset), Path("."), "float32")
    ours = Engine(model, Runtime("cpu", "float32"), local_adapter(folder, shortcut)).render([request])[0].image

    stock = build_tiny_pipeline(preset)
    stock.set_progress_bar_config(disable=True)
    stock.scheduler = make_scheduler("ddim", stock.scheduler.config)
    stock.load_ip_adapter(str(folder), subfolder="", weight_name=WEIGHT, image_encoder_folder="image_encoder")
    stock.set_ip_adapter_scale(strength)
    clip_embeds = stock.prepare_ip_adapter_image_embeds([[Image.fromarray(crop)]], None, torch.device("cpu"), 1,
                                                        False)[0]
    projection = stock.unet.encoder_hid_proj.image_projection_layers[0]
    projection.clip_embeds = clip_embeds
    projection.shortcut = True
    projection.shortcut_scale = shortcut
    image = stock(prompt=request.prompt, height=64, width=64, num_inference_steps=4, guidance_scale=1.0,
                  ip_adapter_image_embeds=[torch.from_numpy(embedding).view(1, 1, 512)],
                  generator=torch.Generator("cpu").manual_seed(11), output_type="np").images[0]
    assert np.abs(ours - image).max() < 1e-5
    # The CLIP features matter: another face crop with the same embedding moves pixels.
    other = crop_features(load_image_encoder(str(folder / "image_encoder")), face_crop(9)[None])
    moved = dataclasses.replace(request, identity_clip=np.concatenate([other, other]))
    assert np.abs(Engine(model, Runtime("cpu", "float32"), local_adapter(folder, shortcut)).render([moved])[0].image
                  - ours).mean() > 1e-4


# -- shot lists with variant: faceid-plusv2 ------------------------------------------------------------------

SHOTS = """\
version: 1
project: plus-test
model: {preset: tiny-sd, adapter: {variant: faceid-plusv2}}
defaults: {size: 64x64, steps: 3, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a tall man, identity_strength: 0.8}
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
  - {id: t1, prompt: "{theo} on a wet street at night"}
  - {id: both, prompt: "{theo} and {mara} at a table"}
  - {id: empty, prompt: "an empty street at night"}
"""


def _job(plan, shot: str):
    return next(j for j in plan.jobs if j.shot_id == shot)


def test_two_characters_in_one_batch_equal_each_rendered_alone(write_shotlist, tiny_engines) -> None:
    plan = plan_on_cpu(write_shotlist(SHOTS))
    assert plan.adapter.is_plus and plan.adapter.source == "builtin"
    engine = Engine(plan.model, Runtime("cpu", "float32"), plan.adapter)
    requests = [j.request for j in plan.jobs]  # single, dual-line, two characters, text-only
    assert _job(plan, "both").request.lines and all(line.clip is not None for line in _job(plan, "both").request.lines)
    alone = [engine.render([r])[0].image for r in requests]
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3]):
        together = engine.render([requests[k] for k in order])
        for k, result in zip(order, together, strict=True):
            assert np.abs(alone[k] - result.image).max() <= 1e-5, (order, k)
    # A text-only job is exactly what the engine without an adapter renders (its key has no adapter either).
    text = _job(plan, "empty").request
    assert np.array_equal(alone[3], tiny_engines("tiny-sd").render([text])[0].image)
    # Each job's CLIP features are its own: theo's features in mara's job change mara's image.
    m1 = _job(plan, "m1").request
    swapped = dataclasses.replace(m1, identity_clip=_job(plan, "t1").request.identity_clip[:len(m1.identity_clip)])
    assert np.abs(engine.render([swapped])[0].image - alone[0]).mean() > 1e-4


def test_keys_name_the_variant_only_for_plusv2_jobs(write_shotlist) -> None:
    faceid = plan_on_cpu(write_shotlist(SHOTS.replace(", adapter: {variant: faceid-plusv2}", ""), "faceid.yaml"))
    plus = plan_on_cpu(write_shotlist(SHOTS))
    scaled = plan_on_cpu(write_shotlist(SHOTS.replace("faceid-plusv2}", "faceid-plusv2, shortcut_scale: 0.5}"),
                                        "scaled.yaml"))
    for shot in ("m1", "t1", "both"):
        adapter = _job(faceid, shot).key_material["method"]["adapter"]
        assert set(adapter) == {"builtin"}  # FaceID keys as before: no variant, no encoder
        plus_adapter = _job(plus, shot).key_material["method"]["adapter"]
        assert plus_adapter["variant"] == "faceid-plusv2" and plus_adapter["shortcut_scale"] == 1.0
        assert "builtin" in plus_adapter["image_encoder"] and plus_adapter["clip_features"]
        assert len({_job(p, shot).key for p in (faceid, plus, scaled)}) == 3
    assert _job(faceid, "empty").key == _job(plus, "empty").key == _job(scaled, "empty").key
    assert faceid.adapter.record().keys() == {f.name for f in dataclasses.fields(AdapterIdentity)} - {
        "variant", "shortcut_scale", "image_encoder"}


def test_the_identity_cache_holds_the_clip_features_and_a_changed_selfie_recomputes(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.engine.faceid_plus as plus_module
    from idcli.identity.clip_features import cached_features_path

    calls: list[int] = []
    real = plus_module.crop_features

    def counted(encoder, crops):
        calls.append(len(crops))
        return real(encoder, crops)

    monkeypatch.setattr(plus_module, "crop_features", counted)
    shots = write_shotlist(SHOTS)
    first = plan_on_cpu(shots)
    assert sorted(calls) == [1, 2]  # theo's one selfie, mara's two: each computed once
    mara = _job(first, "m1").request
    from safetensors import safe_open

    key = _identities(shots)["mara"].clip_record["key"]
    with safe_open(str(cached_features_path(key)), framework="numpy") as f:
        stored = f.get_tensor("selfie_features")
        assert f.metadata()["key"] == key
    assert stored.shape == (2, 257, CLIP_HIDDEN)
    # The identity's rows: the quality-weighted mean of the kept selfies, then each selfie's own.
    assert mara.identity_clip.shape == (3, 257, CLIP_HIDDEN)
    assert np.array_equal(mara.identity_clip[1:], stored)
    weights = np.asarray(_pack_weights(_identities(shots)["mara"]))
    assert np.allclose(mara.identity_clip[0], np.tensordot(weights, stored, axes=1), atol=1e-6)

    again = plan_on_cpu(shots)
    assert sorted(calls) == [1, 2]  # cached: nothing computed
    assert [j.key for j in again.jobs] == [j.key for j in first.jobs]
    assert np.array_equal(_job(again, "m1").request.identity_clip, mara.identity_clip)

    shutil.copy(tmp_path / "selfies" / "mara_1.jpg", tmp_path / "selfies" / "mara_2.jpg")
    changed = plan_on_cpu(shots)
    assert sorted(calls) == [1, 2, 2]  # mara again, theo not
    assert _identities(shots)["mara"].clip_record["key"] != key
    assert _job(changed, "m1").key != _job(first, "m1").key and _job(changed, "t1").key == _job(first, "t1").key


def _identities(shots: Path) -> dict:
    """The shot list's identities with their CLIP features, as planning makes them (from the caches)."""
    import idcli
    from idcli.adapters import resolve_adapter
    from idcli.identity.clip_features import attach_clip_features
    from idcli.identity.resolve import resolve_identities

    loaded = idcli.load_shotlist(shots)
    model = resolve_model(loaded.shotlist.model, loaded.base_dir, "float32")
    identities = resolve_identities(loaded, {"mara", "theo"}, model.preset)
    return attach_clip_features(identities, resolve_adapter(loaded.shotlist.model, model, loaded.base_dir))


def _pack_weights(identity) -> list[float]:
    from idcli.identity.pack import read_pack

    return read_pack(Path(identity.pack_path)).meta["aggregation"]["weights"]


# -- through the command line -------------------------------------------------------------------------------


def test_a_plusv2_render_through_the_cli(write_shotlist, tmp_path: Path) -> None:
    import json

    from idcli.cli import app

    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu",
                                      "--batch-size", "4", "--only", "m1", "--only", "both",
                                      "--only", "empty"])
    assert result.exit_code == 0, result.output
    sidecars = {p.name.split("_t1")[0]: json.loads(p.read_text()) for p in out.rglob("*.json")
                if p.name.endswith("_t1.json")}
    assert set(sidecars) >= {"m1", "both", "empty"}, sorted(sidecars)
    text = json.dumps(sidecars["m1"])
    assert '"variant": "faceid-plusv2"' in text and '"clip_features"' in text
    assert "faceid-plusv2" not in json.dumps(sidecars["empty"]).replace("plus-test", "")
    # idcli reproduce: the identity, adapter, image encoder and CLIP features resolved from the record.
    from idcli.reproduce import reproduce

    for shot in ("m1", "both"):
        again = reproduce(out / shot / f"{shot}_t1.json")
        assert again.identical, (shot, again.as_dict())


# -- exit 4 ---------------------------------------------------------------------------------------------------

REAL = """\
version: 1
project: real-test
model:
  preset: sd15
  id: base
  adapter: {ADAPTER}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
"""


@pytest.fixture
def real_folders(tmp_path: Path, tiny_engines) -> Path:
    """A tiny pipeline saved as a diffusers folder, a FaceID file, a FaceID-Plus v2 folder with its encoder."""
    tiny_engines("tiny-sd").pipe.save_pretrained(tmp_path / "base", safe_serialization=True)
    unet = tiny_engines("tiny-sd").pipe.unet
    write_random_faceid_adapter(unet, tmp_path / "faceid" / "faceid.safetensors", seed=0)
    shutil.copytree(plus_folder(tmp_path, "tiny-sd", lora=True), tmp_path / "plus")
    (tmp_path / "empty-encoder").mkdir()
    return tmp_path


def _render(write_shotlist, tmp_path: Path, adapter: str):
    from idcli.cli import app

    shots = write_shotlist(REAL.replace("{ADAPTER}", adapter), "real.yaml")
    return CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu"])


def test_a_faceid_file_given_for_faceid_plusv2_exits_4_naming_it(write_shotlist, real_folders: Path) -> None:
    result = _render(write_shotlist, real_folders, "{variant: faceid-plusv2, id: faceid, weight_name: "
                     "faceid.safetensors, image_encoder: plus/image_encoder}")
    assert result.exit_code == 4, result.output
    assert "faceid.safetensors" in result.output and "variant: faceid" in result.output
    assert not list((real_folders / "out").rglob("*.png"))


def test_a_plusv2_file_given_for_faceid_exits_4_naming_it(write_shotlist, real_folders: Path) -> None:
    result = _render(write_shotlist, real_folders, f"{{variant: faceid, id: plus, weight_name: {WEIGHT}}}")
    assert result.exit_code == 4, result.output
    assert WEIGHT in result.output and "faceid-plusv2" in result.output


def test_a_missing_image_encoder_exits_4_with_how_to_get_it(write_shotlist, real_folders: Path) -> None:
    result = _render(write_shotlist, real_folders, f"{{variant: faceid-plusv2, id: plus, weight_name: {WEIGHT}, "
                     "image_encoder: empty-encoder}")
    assert result.exit_code == 4, result.output
    assert "empty-encoder" in result.output and "models fetch" in result.output
    # A hub encoder that is not in the cache (offline): the same exit, the same advice.
    with pytest.raises(ModelUnavailableError, match="models fetch"):
        load_image_encoder("h94/IP-Adapter", "models/image_encoder")


def test_an_image_encoder_with_pickled_weights_only_names_allow_pickle(real_folders: Path) -> None:
    """A local copy of h94/IP-Adapter's models/image_encoder holding only its pytorch_model.bin: the error named
    fetching or another folder, not the shot list's allow_pickle, which loads it (weights-only)."""
    from safetensors.torch import load_file

    encoder = real_folders / "pickled-encoder"
    encoder.mkdir()
    shutil.copy(real_folders / "plus" / "image_encoder" / "config.json", encoder)
    torch.save(load_file(real_folders / "plus" / "image_encoder" / "model.safetensors"), encoder / "pytorch_model.bin")
    with pytest.raises(ModelUnavailableError, match=r"only pickled weights \(pytorch_model\.bin\).*allow_pickle: true"):
        load_image_encoder(str(encoder))
    assert load_image_encoder(str(encoder), allow_pickle=True) is not None


def test_the_right_files_render_with_a_real_preset(write_shotlist, real_folders: Path) -> None:
    result = _render(write_shotlist, real_folders, f"{{variant: faceid-plusv2, id: plus, weight_name: {WEIGHT}, "
                     "image_encoder: plus/image_encoder}")
    assert result.exit_code == 0, result.output
    assert len(list((real_folders / "out").rglob("*.png"))) == 1


def test_a_bad_variant_is_a_shot_list_error_with_its_line_and_the_allowed_values(write_shotlist) -> None:
    import idcli
    from idcli.errors import ShotListError

    with pytest.raises(ShotListError) as bad:
        idcli.load_shotlist(write_shotlist(SHOTS.replace("variant: faceid-plusv2", "variant: faceid-plus2")))
    text = str(bad.value) + " ".join(str(p) for p in getattr(bad.value, "problems", []))
    assert "model.adapter.variant" in text and "faceid-plus2" in text and "faceid, faceid-plusv2" in text
    assert ":3:" in text  # the line of model: {...}
    with pytest.raises(ShotListError, match="weight_name"):
        idcli.load_shotlist(write_shotlist(SHOTS.replace("variant: faceid-plusv2", "id: somewhere"), "half.yaml"))


def test_plusv2_fields_with_variant_faceid_are_a_shot_list_error_not_ignored(write_shotlist) -> None:
    """An artist switching back to FaceID keeps `shortcut_scale: 0.5`: it would change nothing, so it is named."""
    import idcli
    from idcli.errors import ShotListError

    with pytest.raises(ShotListError) as bad:
        idcli.load_shotlist(write_shotlist(SHOTS.replace("variant: faceid-plusv2", "variant: faceid, "
                                                         "shortcut_scale: 0.5"), "back.yaml"))
    text = str(bad.value) + " ".join(str(p) for p in getattr(bad.value, "problems", []))
    assert ":3:" in text and "model.adapter" in text and "shortcut_scale" in text
    assert "variant: faceid-plusv2 or remove it" in text
    with pytest.raises(ShotListError, match="image_encoder, image_encoder_subfolder are FaceID-Plus v2's"):
        idcli.load_shotlist(write_shotlist(SHOTS.replace("variant: faceid-plusv2", "variant: faceid, image_encoder: "
                                                         "h94/IP-Adapter, image_encoder_subfolder: x"), "enc.yaml"))
    # The same fields with Plus v2, or unset fields with FaceID, load as before.
    idcli.load_shotlist(write_shotlist(SHOTS.replace("variant: faceid-plusv2", "variant: faceid-plusv2, "
                                                     "shortcut_scale: 0.5"), "plus.yaml"))
    idcli.load_shotlist(write_shotlist(SHOTS.replace("variant: faceid-plusv2", "variant: faceid"), "faceid.yaml"))


@pytest.mark.parametrize(("knob", "says"), [
    ("lora_scale", "identity_strength"), ("lora_strength", "identity_strength"), ("scale", "identity_strength"),
    ("weight", "identity_strength"), ("s_scale", "shortcut_scale"), ("weight_faceidv2", "shortcut_scale")])
def test_other_tools_adapter_knobs_are_named_with_idclis_own(write_shotlist, knob: str, says: str) -> None:
    """diffusers' `set_ip_adapter_scale(scale)` and `lora_scale`, h94's `s_scale`, ComfyUI's `weight`,
    `weight_faceidv2` and `lora_strength`, written under model.adapter: `lora_scale` was answered "did you mean
    'shortcut_scale'?" (a FaceID-Plus v2 knob, refused with FaceID, that has nothing to do with the LoRA) and `scale`
    with the list of model.adapter's keys, none of which is the adapter's strength. Each now names idcli's own."""
    import idcli
    from idcli.errors import ShotListError

    with pytest.raises(ShotListError) as bad:
        idcli.load_shotlist(write_shotlist(SHOTS.replace("variant: faceid-plusv2", f"variant: faceid-plusv2, "
                                                         f"{knob}: 0.5")))
    text = " ".join((str(bad.value) + " " + " ".join(str(p) for p in getattr(bad.value, "problems", []))).split())
    assert f"model.adapter.{knob}: unknown key '{knob}'" in text and ":3:" in text, text
    assert says in text, text
    if says == "identity_strength":
        assert "did you mean 'shortcut_scale'" not in text, text
        assert "characters.NAME.identity_strength" in text and "LoRA" in text, text


def test_real_presets_default_to_plusv2_and_models_fetch_gets_what_they_need() -> None:
    from idcli.adapters import adapter_variant
    from idcli.model_setup import DEFAULT_VARIANT, needs
    from idcli.shotlist import AdapterSpec

    assert adapter_variant(ModelSpec(preset="sd15"), False) == DEFAULT_VARIANT == "faceid-plusv2"
    assert adapter_variant(ModelSpec(preset="sdxl", adapter=AdapterSpec(shortcut_scale=0.5)), False) == "faceid-plusv2"
    assert adapter_variant(ModelSpec(preset="tiny-sd"), True) == "faceid"  # tiny images stay as they were
    # A file named without a variant is read as FaceID, as model.adapter always meant.
    named = ModelSpec(preset="sd15", adapter=AdapterSpec(id="org/faceid", weight_name="a.safetensors"))
    assert adapter_variant(named, False) == "faceid"
    assert {need.role for need in needs("sdxl")} >= {"FaceID-Plus v2 adapter", "CLIP image encoder"}


def test_prepend_pairs_each_reference_with_its_own_selfies_features(write_shotlist) -> None:
    shots = write_shotlist(SHOTS.replace("takes: 1}", "takes: 1, method_params: {aggregation: prepend}}"))
    plan = plan_on_cpu(shots)
    m1 = _job(plan, "m1").request  # mara: two selfies -> the aggregate and two references
    assert m1.identity_count() == 3 and m1.identity_clip_rows().shape == (3, 257, CLIP_HIDDEN)
    engine = Engine(plan.model, Runtime("cpu", "float32"), plan.adapter)
    alone = engine.render([m1])[0].image
    reseeded = dataclasses.replace(m1, seed=m1.seed + 1)
    assert np.abs(engine.render([reseeded, m1])[1].image - alone).max() <= 1e-5
    # The references' features are read: theo's features in their place change the image.
    theo = _job(plan, "t1").request.identity_clip
    swapped = dataclasses.replace(m1, identity_clip=np.concatenate([m1.identity_clip[:1], theo[:1], theo[:1]]))
    assert np.abs(engine.render([swapped])[0].image - alone).mean() > 1e-4


def test_a_plate_shot_renders_and_reproduces_with_plusv2(tmp_path: Path) -> None:
    """Plates (docs/plates.md) run each face crop as a one-line dual-line job: the CLIP rows go with it."""
    import json

    from idcli.cli import app
    from idcli.reproduce import reproduce

    root = Path(__file__).resolve().parents[1] / "recipes"
    for part in ("plates.yaml", "plates", "selfies"):
        (shutil.copytree if (root / part).is_dir() else shutil.copy)(root / part, tmp_path / part)
    shots = tmp_path / "plates.yaml"
    text = shots.read_text().replace("  preset: tiny-sd\n", "  preset: tiny-sd\n  adapter: {variant: faceid-plusv2}\n")
    shots.write_text(text.replace("steps: 8", "steps: 3"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu", "--only",
                                      "pl01_sh010"])
    assert result.exit_code == 0, result.output
    sidecar = out / "pl01_sh010" / "pl01_sh010_t1.json"
    record = json.loads(sidecar.read_text())
    assert record["method"]["name"] == "plate"
    assert [i["clip_features"]["shape"][1:] for i in record["identity"]] == [[257, CLIP_HIDDEN]] * 2
    assert reproduce(sidecar).identical
