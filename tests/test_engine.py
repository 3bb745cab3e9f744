"""The engine on tiny random-weight models: batch invariance, parity with diffusers, loading paths.

Every sampler the engine offers, idcli's midpoint included, is rendered here; tests/test_midpoint.py
checks the midpoint sampler's numerics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from idcli.bench.baseline import stock_render
from idcli.engine import Engine
from idcli.errors import ModelUnavailableError
from idcli.models import resolve_model
from idcli.render_request import RenderRequest
from idcli.runtime import Runtime
from idcli.shotlist import ModelSpec

PROMPTS = [
    ("a woman walks through a neon alley at night, rain", "", 11),
    ("an old man sits in a small bar, warm light", "blurry", 22),
    ("two children run across a beach at sunset", "", 33),
]


def requests(sampler: str = "dpmpp-2m", size=(128, 96), steps: int = 5, guidance: float = 5.0):
    return [RenderRequest(p, n, s, size[0], size[1], steps, guidance, sampler) for p, n, s in PROMPTS]


@pytest.mark.parametrize("preset,sampler", [
    ("tiny-sd", "dpmpp-2m"), ("tiny-sd", "ddim"), ("tiny-sd", "heun"), ("tiny-sd", "midpoint"),
    ("tiny-sdxl", "euler"), ("tiny-sdxl", "dpmpp-2m"), ("tiny-sdxl", "midpoint"),
])
def test_batch_equals_each_job_alone(tiny_engines, preset: str, sampler: str) -> None:
    engine = tiny_engines(preset)
    reqs = requests(sampler)
    batched = engine.render(reqs)
    for req, out in zip(reqs, batched, strict=True):
        alone = engine.render([req])[0]
        assert out.image.shape == (96, 128, 3) and np.isfinite(out.image).all()
        assert np.abs(out.image - alone.image).max() < 1e-5
    # The batch's order does not matter either.
    reversed_out = engine.render(list(reversed(reqs)))
    assert np.abs(reversed_out[0].image - batched[-1].image).max() < 1e-5


def test_without_guidance_batch_equals_single(tiny_engines) -> None:
    engine = tiny_engines("tiny-sd")
    reqs = requests(guidance=1.0)
    batched = engine.render(reqs)
    assert np.abs(batched[1].image - engine.render([reqs[1]])[0].image).max() < 1e-5


# midpoint: the stock pipeline takes idcli's own sampler as a scheduler too.
@pytest.mark.parametrize("preset,sampler", [("tiny-sd", "euler"), ("tiny-sdxl", "euler"), ("tiny-sd", "midpoint")])
def test_loop_reproduces_the_stock_diffusers_pipeline(tiny_engines, preset: str, sampler: str) -> None:
    engine = tiny_engines(preset)
    prompt, negative, seed = PROMPTS[1]
    request = RenderRequest(prompt, negative, seed, 128, 128, 6, 4.0, sampler)
    scheduler = engine.pipe.scheduler
    ours = engine.render([request])[0].image
    stock = stock_render(engine, request, output_type="np")
    assert np.abs(ours - stock).max() < 1e-5
    assert engine.pipe.scheduler is scheduler, "the comparison left the session's engine as it was"


@pytest.mark.parametrize("preset,sampler", [("tiny-sd", "ddim"), ("tiny-sd", "midpoint"), ("tiny-sdxl", "midpoint")])
def test_same_seed_same_image_other_seed_other_image(tiny_engines, preset: str, sampler: str) -> None:
    engine = tiny_engines(preset)
    base = RenderRequest("a lighthouse in a storm", "", 5, 96, 96, 4, 5.0, sampler)
    a = engine.render([base])[0].image
    b = engine.render([base])[0].image
    c = engine.render([RenderRequest("a lighthouse in a storm", "", 6, 96, 96, 4, 5.0, sampler)])[0].image
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_mixed_signatures_in_one_batch_are_refused(tiny_engines) -> None:
    engine = tiny_engines("tiny-sd")
    with pytest.raises(ValueError, match="share"):
        engine.render([RenderRequest("a", "", 1, 64, 64, 2, 5.0, "ddim"),
                       RenderRequest("a", "", 1, 64, 64, 3, 5.0, "ddim")])


def test_tiny_preset_is_deterministic_and_leaves_global_rng_alone() -> None:
    import torch

    from idcli.engine.build import build_tiny_pipeline

    torch.manual_seed(1234)
    expected_next = torch.rand(1)
    torch.manual_seed(1234)
    first = build_tiny_pipeline("tiny-sd")
    assert torch.equal(torch.rand(1), expected_next), "building a preset consumed the caller's RNG"
    second = build_tiny_pipeline("tiny-sd")
    for component in ("unet", "vae", "text_encoder"):
        one, two = getattr(first, component).state_dict(), getattr(second, component).state_dict()
        assert one.keys() == two.keys()
        for name in one:
            assert torch.equal(one[name], two[name]), f"{component}.{name}"


def test_local_diffusers_folder_loads_through_from_pretrained(tiny_engines, tmp_path: Path) -> None:
    """The real-preset loading path (from_pretrained, safetensors only) on a saved tiny pipeline."""
    tiny = tiny_engines("tiny-sd")
    folder = tmp_path / "my-sd15"
    tiny.pipe.save_pretrained(folder, safe_serialization=True)
    identity = resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32")
    assert identity.source == "local" and not identity.random_weights
    assert identity.content_hash and identity.content_hash.startswith("idcli-model-files-v1:")
    loaded = Engine(identity, Runtime("cpu", "float32"))
    req = requests()[0]
    assert np.abs(loaded.render([req])[0].image - tiny.render([req])[0].image).max() < 1e-6
    # Moving the folder keeps the identity; changing a weight file changes it.
    moved = tmp_path / "moved"
    folder.rename(moved)
    assert resolve_model(ModelSpec(preset="sd15", id=str(moved)), tmp_path, "float32").key_material() == \
        identity.key_material()
    config = moved / "unet" / "config.json"
    config.write_text(config.read_text().replace('"norm_eps": 1e-05', '"norm_eps": 1e-06'))
    assert resolve_model(ModelSpec(preset="sd15", id=str(moved)), tmp_path, "float32").content_hash != \
        identity.content_hash


def test_a_local_folder_under_a_cache_folder_is_keyed_by_its_files(tiny_engines, tmp_path: Path) -> None:
    """model.id: ~/.cache/huggingface/hub/models--…/snapshots/REV (a snapshot path copied from the hub cache): the
    content hash skipped every file whose absolute path had a '.cache' part, so two different models there had
    one identity and switching between them re-rendered nothing. Only a '.cache' folder inside the model
    folder (huggingface_hub's local_dir metadata) is skipped."""
    base = tmp_path / ".cache" / "huggingface" / "hub"
    tiny_engines("tiny-sd").pipe.save_pretrained(base / "one", safe_serialization=True)
    tiny_engines("tiny-sdxl").pipe.save_pretrained(base / "two", safe_serialization=True)
    one = resolve_model(ModelSpec(preset="sd15", id=str(base / "one")), tmp_path, "float32")
    two = resolve_model(ModelSpec(preset="sd15", id=str(base / "two")), tmp_path, "float32")
    assert one.content_hash != two.content_hash
    elsewhere = tmp_path / "elsewhere"
    (base / "one").rename(elsewhere)
    assert resolve_model(ModelSpec(preset="sd15", id=str(elsewhere)), tmp_path, "float32").content_hash == \
        one.content_hash
    (elsewhere / ".cache").mkdir()
    (elsewhere / ".cache" / "download.json").write_text("{}")  # local_dir metadata: not part of the model
    assert resolve_model(ModelSpec(preset="sd15", id=str(elsewhere)), tmp_path, "float32").content_hash == \
        one.content_hash


def test_a_folder_missing_a_component_names_it_at_plan_time(tiny_engines, tmp_path: Path) -> None:
    """A copy without unet/: the render loaded for seconds, then said "no file named config.json found in directory
    FOLDER.." (diffusers' words, naming the pipeline folder). Refused at plan time naming the component."""
    import shutil

    folder = tmp_path / "my-sd15"
    tiny_engines("tiny-sd").pipe.save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(folder / "unet")
    with pytest.raises(ModelUnavailableError, match=r"model_index\.json names unet, but there is no unet/config\.json"):
        resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32")


def test_pickle_checkpoints_are_refused_unless_allowed(tiny_engines, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    tiny_engines("tiny-sd").pipe.save_pretrained(folder, safe_serialization=False)
    with pytest.raises(ModelUnavailableError, match="allow_pickle"):
        resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32")
    allowed = resolve_model(ModelSpec(preset="sd15", id=str(folder), allow_pickle=True), tmp_path, "float32")
    assert allowed.source == "local"
    engine = Engine(allowed, Runtime("cpu", "float32"))  # diffusers loads the pickles weights-only
    req = requests()[0]
    assert np.abs(engine.render([req])[0].image - tiny_engines("tiny-sd").render([req])[0].image).max() < 1e-6


def test_a_folder_with_only_fp16_variant_weights_loads_with_that_variant(tiny_engines, tmp_path: Path) -> None:
    """save_pretrained(variant="fp16") (or a download of the *.fp16.safetensors files only): from_pretrained without
    a variant finds no weights there; idcli loads it with variant="fp16" as diffusers does, in the engine's dtype.
    The folder's key covers the variant files."""
    import copy

    import torch
    from safetensors.torch import load_file, save_file

    tiny = tiny_engines("tiny-sd")
    folder = tmp_path / "my-sd15-fp16"
    tiny.pipe.save_pretrained(folder, safe_serialization=True, variant="fp16")  # float32 values, fp16 file names
    assert not list(folder.glob("*/diffusion_pytorch_model.safetensors"))
    identity = resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32")
    req = requests()[0]
    assert np.abs(Engine(identity, Runtime("cpu", "float32")).render([req])[0].image
                  - tiny.render([req])[0].image).max() < 1e-6
    # The key covers the variant weights: other unet values, another key.
    unet_file = folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    tensors = load_file(unet_file)
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1.0
    save_file(tensors, unet_file, metadata={"format": "pt"})
    assert resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32").content_hash != \
        identity.content_hash
    # Published variants hold float16 values: loaded into the engine's float32, the image stays close.
    half = tmp_path / "half"
    copy.deepcopy(tiny.pipe).to(torch.float16).save_pretrained(half, safe_serialization=True, variant="fp16")
    engine = Engine(resolve_model(ModelSpec(preset="sd15", id=str(half)), tmp_path, "float32"),
                    Runtime("cpu", "float32"))
    assert engine.pipe.unet.dtype == torch.float32 and engine.pipe.text_encoder.dtype == torch.float32
    assert np.abs(engine.render([req])[0].image - tiny.render([req])[0].image).max() < 0.05


def test_a_folder_mixing_variant_only_and_plain_components_loads_each(tiny_engines, tmp_path: Path) -> None:
    """diffusers' variant= takes a component's variant files where it has them and its plain files elsewhere; a
    folder with plain weights everywhere (and fp16 files beside them) loads the plain ones, as before."""
    import shutil

    from idcli.models import weights_variant

    tiny = tiny_engines("tiny-sd")
    plain, variant = tmp_path / "plain", tmp_path / "variant"
    tiny.pipe.save_pretrained(plain, safe_serialization=True)
    tiny.pipe.save_pretrained(variant, safe_serialization=True, variant="fp16")
    shutil.copy(variant / "unet" / "diffusion_pytorch_model.fp16.safetensors", plain / "unet")
    assert weights_variant(plain) is None  # plain weights everywhere: no variant, images and keys unchanged
    mixed = tmp_path / "mixed"
    shutil.copytree(plain, mixed)
    (mixed / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    assert weights_variant(mixed) == "fp16"
    identity = resolve_model(ModelSpec(preset="sd15", id=str(mixed)), tmp_path, "float32")
    req = requests()[0]
    assert np.abs(Engine(identity, Runtime("cpu", "float32")).render([req])[0].image
                  - tiny.render([req])[0].image).max() < 1e-6
    # One variant per pipeline: components holding only different variants are refused, named, at plan time.
    (mixed / "vae" / "diffusion_pytorch_model.safetensors").rename(mixed / "vae" / "diffusion_pytorch_model.bf16"
                                                                   ".safetensors")
    with pytest.raises(ModelUnavailableError, match=r"only variant weights of different kinds \(unet: fp16, vae: bf16"):
        resolve_model(ModelSpec(preset="sd15", id=str(mixed)), tmp_path, "float32")


def test_a_component_with_fp16_pickles_only_is_refused_unless_allowed_then_loads_that_variant(
        tiny_engines, tmp_path: Path) -> None:
    """`unet/diffusion_pytorch_model.fp16.bin` alone (save_pretrained(variant="fp16", safe_serialization=False)):
    refused like any pickle, naming the component and model.allow_pickle; allowed, it loads weights-only with
    variant="fp16". The variant went undetected (only .safetensors names were read), so an allowed folder failed with
    diffusers' "no file named diffusion_pytorch_model.bin", blamed on an incomplete folder."""
    import shutil

    from idcli.models import weights_variant

    tiny = tiny_engines("tiny-sd")
    folder, pickled = tmp_path / "unet-fp16-bin", tmp_path / "pickled"
    tiny.pipe.save_pretrained(folder, safe_serialization=True)
    tiny.pipe.save_pretrained(pickled, safe_serialization=False, variant="fp16")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.copy(pickled / "unet" / "diffusion_pytorch_model.fp16.bin", folder / "unet")
    with pytest.raises(ModelUnavailableError, match=r"pickle-only weights in unet; pickles are refused by default.*"
                                                     r"model\.allow_pickle: true"):
        resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32")
    assert weights_variant(folder) == "fp16"
    identity = resolve_model(ModelSpec(preset="sd15", id=str(folder), allow_pickle=True), tmp_path, "float32")
    req = requests()[0]
    assert np.abs(Engine(identity, Runtime("cpu", "float32")).render([req])[0].image
                  - tiny.render([req])[0].image).max() < 1e-6
    # A component with plain pickles beside its variant ones has full-precision weights: no variant, as before.
    shutil.copy(pickled / "unet" / "diffusion_pytorch_model.fp16.bin", folder / "unet" / "diffusion_pytorch_model.bin")
    assert weights_variant(folder) is None


def _offline_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_id: str, pipe: Any,
                       variant: str | None = None) -> Path:
    """``pipe`` saved as ``repo_id``'s snapshot in a Hugging Face hub cache under tmp_path (refs/main naming it),
    that cache in use and the hub offline; returns the snapshot folder."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    pipe.save_pretrained(snapshot, safe_serialization=True, variant=variant)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    return snapshot


def test_fp16_variant_weights_in_the_hub_cache_are_refused_by_hub_id_and_load_by_folder(
        tiny_engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`huggingface-cli download … --include "*.fp16.safetensors"`: the snapshot in the cache holds variant files
    only. A hub id's job key names id@revision (the published full-precision weights); rendering half-precision
    copies under that key would give one key two images. So the hub id is refused, naming the snapshot folder;
    given as model.id, that folder loads with variant="fp16" and is keyed by its files."""
    tiny = tiny_engines("tiny-sd")
    snapshot = _offline_hub_cache(tmp_path, monkeypatch, "someone/sd15-fp16", tiny.pipe, variant="fp16")
    by_id = resolve_model(ModelSpec(preset="sd15", id="someone/sd15-fp16"), tmp_path, "float32")
    with pytest.raises(ModelUnavailableError, match=r"only 'fp16' variant weights") as refused:
        Engine(by_id, Runtime("cpu", "float32"))
    assert str(snapshot) in str(refused.value) and "model.id" in str(refused.value)
    by_folder = resolve_model(ModelSpec(preset="sd15", id=str(snapshot)), tmp_path, "float32")
    assert by_folder.source == "local"
    req = requests()[0]
    assert np.abs(Engine(by_folder, Runtime("cpu", "float32")).render([req])[0].image
                  - tiny.render([req])[0].image).max() < 1e-6


def test_a_cached_hub_model_loads_offline_without_telling_to_unset_offline_mode(
        tiny_engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    """HF_HUB_OFFLINE=1 with the model in the cache: huggingface_hub warned on every render "Could not reach the
    Hub (... offline mode is enabled. To disable it, please unset the HF_HUB_OFFLINE environment variable)"."""
    _offline_hub_cache(tmp_path, monkeypatch, "someone/my-sd15", tiny_engines("tiny-sd").pipe)
    identity = resolve_model(ModelSpec(preset="sd15", id="someone/my-sd15"), tmp_path, "float32")
    capfd.readouterr()
    engine = Engine(identity, Runtime("cpu", "float32"))
    assert engine.pipe.unet is not None
    err = capfd.readouterr().err
    assert "Could not reach the Hub" not in err and "unset the `HF_HUB_OFFLINE`" not in err


def test_missing_hub_model_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    identity = resolve_model(ModelSpec(preset="sdxl", id="nobody-here/no-such-model"), Path("."), "float32")
    with pytest.raises(ModelUnavailableError) as info:
        Engine(identity, Runtime("cpu", "float32"))
    message = str(info.value)
    assert "no-such-model" in message and "HF_HUB_OFFLINE" in message and "local diffusers folder" in message


def test_suggested_batch_size_on_cpu(tiny_engines) -> None:
    assert tiny_engines("tiny-sd").suggest_batch_size(requests()[0]) >= 1


@pytest.mark.gpu
def test_gpu_batch_matches_single_within_bf16_tolerance() -> None:
    identity = resolve_model(ModelSpec(preset="tiny-sd"), Path("."), "bfloat16")
    engine = Engine(identity, Runtime("cuda", "bfloat16"))
    reqs = requests()
    batched = engine.render(reqs)
    alone = engine.render([reqs[0]])[0]
    # bf16 kernels are chosen by problem shape, so batch size changes results slightly on GPUs.
    assert np.abs(batched[0].image - alone.image).mean() < 0.02
