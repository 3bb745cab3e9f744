"""`idcli models list|fetch` through huggingface_hub against a hub emulator on 127.0.0.1 (issue 17)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hub_emulator import HubEmulator

from idcli.errors import ModelUnavailableError

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
FACEID = "h94/IP-Adapter-FaceID"
WEIGHT = "ip-adapter-faceid_sd15.bin"


def _adapter_bin() -> tuple[bytes, dict[str, dict[str, torch.Tensor]]]:
    """A FaceID checkpoint for the tiny-sd UNet in the published pickle layout (LoRA included)."""
    from safetensors.torch import load

    from idcli.engine.build import build_tiny_pipeline
    from idcli.engine.faceid_layout import write_random_faceid_adapter

    unet = build_tiny_pipeline("tiny-sd").unet
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        flat = load(write_random_faceid_adapter(unet, Path(folder) / "a.safetensors", seed=3).read_bytes())
    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        group, rest = key.split(".", 1)
        nested[group][rest] = value
    buffer = io.BytesIO()
    torch.save(nested, buffer)
    return buffer.getvalue(), nested


@pytest.fixture(scope="module")
def adapter_bin() -> tuple[bytes, dict]:
    return _adapter_bin()


def hub_repos(adapter: bytes) -> dict[str, dict[str, bytes]]:
    return {
        SD15: {
            "model_index.json": b'{"_class_name": "StableDiffusionPipeline"}',
            "unet/config.json": b"{}",
            "unet/diffusion_pytorch_model.safetensors": bytes(range(256)) * 64,
            "unet/diffusion_pytorch_model.fp16.safetensors": b"fp16 variant: not fetched",
            "safety_checker/model.safetensors": b"not fetched",
            "tokenizer/merges.txt": b"#version: 0.2\n",
            "v1-5-pruned.ckpt": b"single-file checkpoint: not fetched",
        },
        FACEID: {WEIGHT: adapter, "ip-adapter-faceid_sdxl.bin": b"other"},
    }


def offline_hub(monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """huggingface_hub on ``cache``, allowed to reach the loopback emulator although the suite runs offline."""
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)
    # huggingface_hub resumes from the last whole chunk it received (10 MB by default); small chunks
    # let a 3 MB test file break off after some of them, as a large real file does.
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    return cache


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return offline_hub(monkeypatch, tmp_path / "hf")


def test_fetch_downloads_filters_and_converts_the_pickle_once(hf_cache: Path, adapter_bin) -> None:
    from safetensors.torch import load_file

    from idcli.hashing import sha256_bytes, sha256_file
    from idcli.model_setup import converted_adapter, fetch, list_models

    data, nested = adapter_bin
    before = {(row["preset"], row["variant"]): row for row in list_models(cache_dir=hf_cache)}
    assert before["sd15", "faceid"]["ready"] is False
    with HubEmulator(hub_repos(data), faults={WEIGHT: "drop-once"}, lifetime=60) as hub:
        result = fetch("sd15", "faceid", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
        requests = list(hub.requests)
        again = fetch("sd15", "faceid", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)

    # The interrupted adapter transfer resumed with a Range request and the bytes are whole.
    ranges = [r[2] for r in requests if r[0] == "GET" and r[1].endswith(WEIGHT) and r[2]]
    assert ranges and (ranges[0] or "").startswith("bytes=")
    base, adapter = result["fetched"]
    snapshot = Path(base["path"])
    fetched = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())
    assert fetched == ["model_index.json", "tokenizer/merges.txt", "unet/config.json",
                       "unet/diffusion_pytorch_model.safetensors"]
    assert adapter["sha256"] == sha256_bytes(data) == sha256_file(Path(adapter["path"]))

    # Converted by a weights-only load into the published names, both hashes recorded.
    converted = converted_adapter(FACEID, WEIGHT)
    assert converted is not None and converted.suffix == ".safetensors"
    record = json.loads((converted.parent / "conversion.json").read_text())[converted.name]
    assert record["source_sha256"] == sha256_bytes(data) and record["sha256"] == sha256_file(converted)
    tensors = load_file(converted)
    assert set(tensors) == {f"{g}.{k}" for g in nested for k in nested[g]}
    assert torch.equal(tensors["ip_adapter.0.to_q_lora.down.weight"], nested["ip_adapter"]["0.to_q_lora.down.weight"])
    # Once: the second fetch finds the file and its record and does not rewrite it.
    assert again["fetched"][1]["converted"] == result["fetched"][1]["converted"]
    assert converted.stat().st_mtime_ns == Path(again["fetched"][1]["converted"]["path"]).stat().st_mtime_ns

    after = {(row["preset"], row["variant"]): row for row in list_models(cache_dir=hf_cache)}
    assert after["sd15", "faceid"]["ready"] is True and after["sdxl", "faceid"]["ready"] is False
    assert after["sd15", "faceid-plusv2"]["ready"] is False  # its adapter and encoder were not fetched
    sizes = {need["role"]: need["size_bytes"] for need in after["sd15", "faceid"]["needs"]}
    assert sizes["FaceID adapter"] == converted.stat().st_size and sizes["base model"] > 16000


def test_the_converted_adapter_is_what_a_render_loads(hf_cache: Path, adapter_bin, tmp_path: Path) -> None:
    from idcli.adapters import resolve_adapter
    from idcli.engine.build import build_tiny_pipeline
    from idcli.engine.faceid_loading import load_faceid_adapter
    from idcli.hashing import sha256_file
    from idcli.model_setup import converted_adapter, fetch
    from idcli.models import resolve_model
    from idcli.shotlist import AdapterSpec, ModelSpec

    data, _nested = adapter_bin
    with HubEmulator(hub_repos(data), lifetime=60) as hub:
        fetch("sd15", "faceid", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    converted = converted_adapter(FACEID, WEIGHT)
    assert converted is not None  # fetch converts the hub's pickle
    spec = ModelSpec(preset="sd15", adapter=AdapterSpec(variant="faceid"))  # sd15 defaults to faceid-plusv2
    adapter = resolve_adapter(spec, resolve_model(spec, tmp_path, "float16"), tmp_path)
    assert adapter.source == "local" and not adapter.allow_pickle
    assert adapter.content_hash == sha256_file(converted)

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / WEIGHT).write_bytes(data)
    from_bin, from_converted = build_tiny_pipeline("tiny-sd"), build_tiny_pipeline("tiny-sd")
    load_faceid_adapter(from_bin, str(tmp_path / "bin"), WEIGHT, allow_pickle=True)
    load_faceid_adapter(from_converted, adapter.id, adapter.weight_name)
    a, b = from_bin.unet.state_dict(), from_converted.unet.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fetch_failures_exit_4_with_the_fix(hf_cache: Path, adapter_bin) -> None:
    from idcli.model_setup import converted_adapter, fetch

    data, _nested = adapter_bin
    with HubEmulator(hub_repos(data), faults={WEIGHT: "short"}, lifetime=60) as hub, \
            pytest.raises(ModelUnavailableError, match=r"truncated.*run the same command again") as info:
        fetch("sd15", "faceid", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    assert info.value.exit_code == 4
    assert converted_adapter(FACEID, WEIGHT) is None
    assert not [p for p in hf_cache.rglob(WEIGHT)], "nothing partial at a final path"

    bad = hub_repos(b"this is not a pickle of tensors")
    with HubEmulator(bad, lifetime=60) as hub, pytest.raises(ModelUnavailableError, match="weights-only load"):
        fetch("sd15", "faceid", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    assert converted_adapter(FACEID, WEIGHT) is None


def test_models_cli() -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    listed = CliRunner().invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    assert {(r["preset"], r["variant"]) for r in doc["presets"]} == {
        ("sd15", "faceid"), ("sdxl", "faceid"), ("sd15", "faceid-plusv2"), ("sdxl", "faceid-plusv2")}
    plus = next(r for r in doc["presets"] if (r["preset"], r["variant"]) == ("sdxl", "faceid-plusv2"))
    assert [n["role"] for n in plus["needs"]] == ["base model", "FaceID-Plus v2 adapter", "CLIP image encoder"]
    assert plus["needs"][2]["subfolder"] == "models/image_encoder" and "Apache-2.0" in plus["needs"][2]["licence"]
    # The suite's face models are the synthetic pack ($IDCLI_FACE_MODELS): present, and labelled so.
    assert doc["face_models"]["present"] and "synthetic" in doc["face_models"]["licence"] and doc["given"] == []
    text = CliRunner().invoke(app, ["models", "list"])
    assert text.exit_code == 0 and "licence: CreativeML OpenRAIL-M" in text.stdout
    assert "CLIP image encoder" in text.stdout and "face models (" in text.stdout
    tiny = CliRunner().invoke(app, ["models", "fetch", "tiny-sd"])
    assert tiny.exit_code == 2 and "needs no download" in tiny.output
    # An unknown name listed every preset as allowed, tiny-sd and bench-* too, which fetch then refuses: the list
    # is what fetch takes, and each name in it is fetched (its needs are known, nothing is downloaded here).
    from idcli.model_setup import needs

    for typed, said in (("foo", "unknown preset 'foo' (allowed: sd15, sdxl)"),
                        ("sd1", "unknown preset 'sd1'; did you mean 'sd15'? (allowed: sd15, sdxl)")):
        unknown = CliRunner().invoke(app, ["models", "fetch", typed])
        message = " ".join(unknown.output.split())
        assert unknown.exit_code == 2 and said in message, message
        allowed = message.split("(allowed: ")[1].split(")")[0].split(", ")
        assert allowed == ["sd15", "sdxl"] and all(needs(name) for name in allowed), allowed
    variant = CliRunner().invoke(app, ["models", "fetch", "sd15", "--variant", "plus"])
    assert variant.exit_code == 2 and "allowed: faceid, faceid-plusv2" in variant.output
    as_json = CliRunner().invoke(app, ["models", "fetch", "sd15", "--variant", "plus", "--json"])
    assert as_json.exit_code == 2 and json.loads(as_json.stdout)["error"]["type"] == "InputError"


def test_no_network_exits_4_with_the_fix(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # as with HF_HUB_OFFLINE=1
    result = CliRunner().invoke(app, ["models", "fetch", "sd15"])
    assert result.exit_code == 4
    assert "hub cannot be reached (no network, or HF_HUB_OFFLINE=1)" in result.stderr
    assert "Traceback" not in result.output


# -- FaceID-Plus v2: the adapter (a pickle, converted once) and the CLIP image encoder folder ----------------

ENCODER_REPO = "h94/IP-Adapter"
PLUS_WEIGHT = "ip-adapter-faceid-plusv2_sd15.bin"


def plusv2_bin() -> tuple[bytes, dict[str, dict[str, torch.Tensor]]]:
    """A FaceID-Plus v2 checkpoint in the published pickle layout (resampler keys, LoRA, decoupled k/v)."""
    generator = torch.Generator().manual_seed(5)
    shapes: dict[str, dict[str, tuple[int, ...]]] = {
        "image_proj": {"proj.0.weight": (64, 512), "proj.0.bias": (64,), "proj.2.weight": (128, 64),
                       "proj.2.bias": (128,), "norm.weight": (32,), "norm.bias": (32,),
                       "perceiver_resampler.proj_in.weight": (32, 48), "perceiver_resampler.proj_in.bias": (32,),
                       "perceiver_resampler.layers.0.0.to_q.weight": (32, 32),
                       "perceiver_resampler.norm_out.weight": (32,)},
        "ip_adapter": {"1.to_k_ip.weight": (32, 32), "1.to_v_ip.weight": (32, 32),
                       "0.to_q_lora.down.weight": (128, 32), "0.to_q_lora.up.weight": (32, 128)},
    }
    nested = {group: {k: torch.randn(shape, generator=generator) for k, shape in keys.items()}
              for group, keys in shapes.items()}
    buffer = io.BytesIO()
    torch.save(nested, buffer)
    return buffer.getvalue(), nested


def _encoder_files(tmp_path: Path) -> tuple[dict[str, bytes], Any]:
    """A tiny CLIP vision model with projection, saved as transformers saves ViT-H's (plus the pickle the
    hub repository also holds, which must not be fetched)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4, image_size=32,
        patch_size=16, projection_dim=16))
    model.save_pretrained(tmp_path / "encoder")
    files = {f"models/image_encoder/{p.name}": p.read_bytes() for p in (tmp_path / "encoder").iterdir()}
    files["models/image_encoder/pytorch_model.bin"] = b"a pickle: never fetched"
    files["models/ip-adapter_sd15.bin"] = b"another adapter: not fetched"
    files["sdxl_models/image_encoder/config.json"] = b"{}"
    return files, model


def test_plusv2_fetch_converts_the_adapter_and_fetches_only_the_encoder(hf_cache: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file
    from transformers import CLIPVisionModelWithProjection

    from idcli.hashing import sha256_bytes
    from idcli.model_setup import converted_adapter, fetch, image_encoder_folder, list_models

    plus, nested = plusv2_bin()
    encoder_files, model = _encoder_files(tmp_path)
    repos = hub_repos(b"unused")
    repos[FACEID][PLUS_WEIGHT] = plus
    repos[ENCODER_REPO] = encoder_files
    assert image_encoder_folder("sd15", hf_cache) is None
    with HubEmulator(repos, faults={PLUS_WEIGHT: "drop-once"}, lifetime=60) as hub:
        result = fetch("sd15", "faceid-plusv2", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
        fetched_paths = {r[1] for r in hub.requests if r[0] == "GET"}
    assert [item["role"] for item in result["fetched"]] == ["base model", "FaceID-Plus v2 adapter",
                                                             "CLIP image encoder"]
    assert not any(p.endswith(("ip-adapter-faceid_sd15.bin", "pytorch_model.bin", "ip-adapter_sd15.bin"))
                   for p in fetched_paths), "only what the variant needs"

    # The pickled adapter: converted once, weights-only, every tensor kept, both hashes recorded.
    converted = converted_adapter(FACEID, PLUS_WEIGHT)
    assert converted is not None and converted.name == "ip-adapter-faceid-plusv2_sd15.safetensors"
    assert result["fetched"][1]["converted"]["source_sha256"] == sha256_bytes(plus)
    tensors = load_file(converted)
    assert set(tensors) == {f"{g}.{k}" for g in nested for k in nested[g]}
    assert all(torch.equal(tensors[f"{g}.{k}"], v) for g in nested for k, v in nested[g].items())

    # The encoder: a folder with config.json and model.safetensors only, found by image_encoder_folder.
    folder = image_encoder_folder("sd15", hf_cache)
    assert folder is not None and Path(result["fetched"][2]["path"]) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    snapshot = folder.parents[1]
    assert sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()) == [
        "models/image_encoder/config.json", "models/image_encoder/model.safetensors"]
    loaded = CLIPVisionModelWithProjection.from_pretrained(folder)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert image_encoder_folder("sdxl", hf_cache) == folder  # both presets read the same ViT-H encoder
    assert image_encoder_folder("tiny-sd", hf_cache) is None

    rows = {(r["preset"], r["variant"]): r for r in list_models(cache_dir=hf_cache)}
    plus_row = rows["sd15", "faceid-plusv2"]
    assert plus_row["ready"] is True and rows["sd15", "faceid"]["ready"] is False
    sizes = {n["role"]: n["size_bytes"] for n in plus_row["needs"]}
    assert sizes["CLIP image encoder"] == sum(p.stat().st_size for p in folder.iterdir())
    assert sizes["FaceID-Plus v2 adapter"] == converted.stat().st_size


def test_plusv2_without_an_encoder_in_the_repository_exits_4(hf_cache: Path) -> None:
    from idcli.model_setup import fetch, image_encoder_folder

    plus, _nested = plusv2_bin()
    repos = hub_repos(b"unused")
    repos[FACEID][PLUS_WEIGHT] = plus
    repos[ENCODER_REPO] = {"models/image_encoder/config.json": b"{}",
                           "models/image_encoder/pytorch_model.bin": b"pickle only"}
    with HubEmulator(repos, lifetime=60) as hub, \
            pytest.raises(ModelUnavailableError, match=r"no model\.safetensors.*cannot run without the CLIP") as info:
        fetch("sd15", "faceid-plusv2", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    assert info.value.exit_code == 4 and image_encoder_folder("sd15", hf_cache) is None


# -- given folders: --models-dir and --shotlist ---------------------------------------------------------


def test_models_list_names_what_given_folders_hold(tmp_path: Path, synthetic_face_models: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from idcli.cli import app

    root = tmp_path / "models"
    pipeline = root / "base" / "my-sd15"
    (pipeline / "unet").mkdir(parents=True)
    (pipeline / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (pipeline / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"w" * 1000)
    (pipeline / "README.md").write_text("---\nlicense: creativeml-openrail-m\ntags: [x]\n---\n# card\n")
    adapters = root / "adapters"
    adapters.mkdir()
    (adapters / "ip-adapter-faceid_sd15.safetensors").write_bytes(b"a" * 300)
    (adapters / "notes.txt").write_text("not a model")
    encoder = root / "adapters" / "image_encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text('{"architectures": ["CLIPVisionModelWithProjection"]}')
    (encoder / "model.safetensors").write_bytes(b"e" * 200)
    shutil.copytree(synthetic_face_models, root / "faces" / "buffalo_l")
    (root / ".hidden" / "x").mkdir(parents=True)
    (root / ".hidden" / "x" / "model_index.json").write_text("{}")

    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: sd15, id: models/base/my-sd15, adapter: "
                     "{id: models/adapters, weight_name: ip-adapter-faceid_sd15.safetensors}}\n"
                     "shots:\n  - {id: a010, prompt: a hall}\n")
    result = CliRunner().invoke(app, ["models", "list", "--json", "--models-dir", str(root), "--shotlist", str(shots)])
    assert result.exit_code == 0, result.output
    given = json.loads(result.stdout)["given"]
    by = {(g["source"].rsplit(": ", 1)[-1], g["kind"]): g for g in given}
    assert set(by) == {("--models-dir", "diffusers pipeline"), ("--models-dir", "IP-Adapter weights"),
                       ("--models-dir", "CLIP image encoder"), ("--models-dir", "insightface face-model pack"),
                       ("model.id", "diffusers pipeline"), ("model.adapter", "IP-Adapter weights")}
    base = by["--models-dir", "diffusers pipeline"]
    assert base["path"] == str(pipeline) and base["licence"] == "creativeml-openrail-m"
    assert base["size_bytes"] == sum(p.stat().st_size for p in pipeline.rglob("*") if p.is_file())
    assert base["detail"] == "StableDiffusionPipeline"
    assert by["--models-dir", "IP-Adapter weights"]["size_bytes"] == 300
    assert "non-commercial" in by["--models-dir", "IP-Adapter weights"]["licence"]
    assert by["--models-dir", "CLIP image encoder"]["size_bytes"] == 200 + len(
        (encoder / "config.json").read_bytes())
    faces = by["--models-dir", "insightface face-model pack"]
    assert "synthetic" in faces["licence"] and faces["present"]
    assert by["model.id", "diffusers pipeline"]["path"] == str(pipeline)
    assert by["model.adapter", "IP-Adapter weights"]["size_bytes"] == 300

    text = CliRunner().invoke(app, ["models", "list", "--models-dir", str(root)])
    assert text.exit_code == 0 and "given folders:" in text.stdout
    assert f"diffusers pipeline: {pipeline} (StableDiffusionPipeline): present" in text.stdout
    missing = CliRunner().invoke(app, ["models", "list", "--models-dir", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nproject: p\nmodel: {preset: sd16}\nshots:\n  - {id: a010, prompt: a hall}\n")
    refused = CliRunner().invoke(app, ["models", "list", "--shotlist", str(bad)])
    assert refused.exit_code == 2 and "sd16" in refused.output


def test_models_list_shotlist_names_the_image_encoder_a_plusv2_shot_list_renders_with(tmp_path: Path) -> None:
    """A Plus v2 render cannot start without its CLIP encoder: `--shotlist` names the one the shot list gives,
    present when its folder holds a CLIP vision config, missing for an empty folder or an uncached hub id."""
    from idcli.model_folders import shotlist_folders

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (tmp_path / "plus").mkdir()
    (tmp_path / "plus" / "ip-adapter-faceid-plusv2_sd15.safetensors").write_bytes(b"p" * 100)
    encoder = tmp_path / "plus" / "image_encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text('{"architectures": ["CLIPVisionModelWithProjection"]}')
    (encoder / "model.safetensors").write_bytes(b"e" * 200)
    (tmp_path / "empty").mkdir()

    def encoder_entry(given: str) -> dict:
        shots = tmp_path / "shots.yaml"
        shots.write_text("version: 1\nproject: p\nmodel: {preset: sd15, id: base, adapter: {variant: faceid-plusv2, "
                         f"id: plus, weight_name: ip-adapter-faceid-plusv2_sd15.safetensors, {given}}}}}\n"
                         "shots:\n  - {id: a010, prompt: a hall}\n")
        [entry] = [e for e in shotlist_folders(shots) if e["kind"] == "CLIP image encoder"]
        assert entry["source"].endswith("model.adapter.image_encoder")
        return entry

    found = encoder_entry("image_encoder: plus, image_encoder_subfolder: image_encoder")
    assert found["present"] and found["path"] == str(encoder) and found["size_bytes"] > 200
    empty = encoder_entry("image_encoder: empty")
    assert not empty["present"] and "no config.json" in empty["detail"]
    hub = encoder_entry("image_encoder: someone/clip-vit-h")
    assert not hub["present"] and hub["repo_id"] == "someone/clip-vit-h"


def _downloads_recorded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """From now on ``fetch`` downloads nothing: each download it asks for is recorded in the list returned."""
    import idcli.model_setup as setup

    fetched: list[Any] = []

    def fetch_need(*args: Any) -> dict[str, Any]:
        fetched.append(args)
        return {}

    monkeypatch.setattr(setup, "fetch_need", fetch_need)
    return fetched


@pytest.mark.parametrize("sha", ["zz", "A" * 64, "0" * 63])
def test_a_malformed_face_pack_sha256_is_refused_before_any_download(hf_cache: Path, sha: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # checked after the base model's gigabytes before: a typo cost the whole download, then failed
    import idcli.model_setup as setup
    from idcli.errors import InputError

    fetched = _downloads_recorded(monkeypatch)
    with pytest.raises(InputError, match="is not 64 lower-case hex digits"):
        setup.fetch("sd15", cache_dir=hf_cache, progress=False, accept_insightface_licence=True,
                    face_pack_sha256=sha)
    assert fetched == []


@pytest.mark.parametrize("value", ["", 5])
def test_list_models_and_fetch_refuse_a_face_models_that_is_no_path(hf_cache: Path, value: object,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # "" listed the default folder as if none was given (an unset os.environ.get("VAR", "")), and 5 a folder "5";
    # fetch went on to the base model's download first. Both now say what face_models= takes, as render's does.
    import idcli.model_setup as setup
    from idcli.errors import InputError

    fetched = _downloads_recorded(monkeypatch)
    with pytest.raises(InputError, match="face_models="):
        setup.list_models(cache_dir=hf_cache, face_models=value)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="face_models="):
        setup.fetch("sd15", cache_dir=hf_cache, progress=False, face_models=value)  # type: ignore[arg-type]
    assert fetched == []


def test_list_models_takes_a_path_for_face_models(hf_cache: Path, tmp_path: Path) -> None:
    from idcli.model_setup import list_models

    folder = tmp_path / "faces"
    row = list_models(cache_dir=hf_cache, face_models=folder)[0]
    assert row["face_models"]["folder"] == str(folder) and row["face_models"]["chosen_by"] == "--face-models"


def test_a_cached_pickle_not_yet_converted_is_not_ready_and_an_offline_fetch_converts_it(
        hf_cache: Path, adapter_bin, monkeypatch: pytest.MonkeyPatch) -> None:
    """The published adapter in the hub cache as a pickle (downloaded by diffusers or huggingface-cli, or its
    conversion deleted): a render refuses it without allow_pickle, so `models list` must not say ready; it
    names the command that converts it, which works offline from the cache."""
    import shutil

    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.model_setup import converted_adapter, converted_folder, fetch, list_models

    data, _nested = adapter_bin
    with HubEmulator(hub_repos(data), lifetime=60) as hub:
        fetch("sd15", "faceid", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    shutil.rmtree(converted_folder(FACEID))
    rows = {(r["preset"], r["variant"]): r for r in list_models(cache_dir=hf_cache)}
    need = rows["sd15", "faceid"]["needs"][1]
    assert need["present"] and need["path"].endswith(WEIGHT)
    assert need["not_converted"] is True and rows["sd15", "faceid"]["ready"] is False
    listed = CliRunner().invoke(app, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert "sd15 (faceid): not ready: `idcli models fetch sd15 --variant faceid`" in listed.stdout
    assert "a pickle, not converted yet" in listed.stdout

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # as with HF_HUB_OFFLINE=1
    fetch("sd15", "faceid", cache_dir=hf_cache, progress=False)
    assert converted_adapter(FACEID, WEIGHT) is not None
    rows = {(r["preset"], r["variant"]): r for r in list_models(cache_dir=hf_cache)}
    assert rows["sd15", "faceid"]["ready"] is True and rows["sd15", "faceid"]["needs"][1]["not_converted"] is False


def test_models_dir_says_a_pipeline_folder_holds_fp16_variant_weights(tmp_path: Path) -> None:
    from idcli.model_folders import scan_models_dir

    for name, weight in (("full", "diffusion_pytorch_model.safetensors"),
                         ("fp16", "diffusion_pytorch_model.fp16.safetensors")):
        (tmp_path / name / "unet").mkdir(parents=True)
        (tmp_path / name / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
        (tmp_path / name / "unet" / weight).write_bytes(b"w" * 10)
    found = {Path(e["path"]).name: e["detail"] for e in scan_models_dir(tmp_path)}
    assert found["full"] == "StableDiffusionPipeline"
    assert found["fp16"] == "StableDiffusionPipeline; fp16 variant weights"  # loadable: no re-save asked for


def test_models_dir_tells_the_faceid_lora_file_from_the_adapter(tmp_path: Path) -> None:
    """h94 publishes ip-adapter-faceid_sd15_lora.safetensors beside the adapter: not what model.adapter takes."""
    from idcli.model_folders import scan_models_dir, shotlist_folders

    (tmp_path / "ip-adapter-faceid_sd15.bin").write_bytes(b"a" * 10)
    (tmp_path / "ip-adapter-faceid_sd15_lora.safetensors").write_bytes(b"l" * 10)
    found = {Path(e["path"]).name: e for e in scan_models_dir(tmp_path)}
    assert found["ip-adapter-faceid_sd15.bin"]["kind"] == "IP-Adapter weights"
    lora = found["ip-adapter-faceid_sd15_lora.safetensors"]
    assert lora["kind"] == "FaceID LoRA" and "model.adapter takes ip-adapter-faceid_sd15.bin" in lora["detail"]
    # A shot list naming the LoRA file as its adapter: --shotlist says what it is.
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: sd15, id: base, adapter: {variant: faceid, id: ., "
                     "weight_name: ip-adapter-faceid_sd15_lora.safetensors}}\nshots:\n  - {id: a010, prompt: a hall}\n")
    named = [e for e in shotlist_folders(shots) if e["source"].endswith("model.adapter")]
    assert [e["kind"] for e in named] == ["FaceID LoRA"]


def test_models_list_shotlist_names_the_licence_of_hub_files_it_knows(tmp_path: Path) -> None:
    """A shot list naming h94's FaceID file by hub id: its licence is the FaceID card's (non-commercial), as for
    the same file in a folder, not "unknown"; the preset's base model and image encoder likewise."""
    from idcli.model_folders import shotlist_folders

    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: sd15, adapter: {variant: faceid-plusv2, "
                     "id: h94/IP-Adapter-FaceID, weight_name: ip-adapter-faceid-plusv2_sd15.bin, "
                     "image_encoder: h94/IP-Adapter, image_encoder_subfolder: models/image_encoder}}\n"
                     "shots:\n  - {id: a010, prompt: a hall}\n")
    licences = {e["kind"]: e["licence"] for e in shotlist_folders(shots)}
    assert "non-commercial" in licences["IP-Adapter weights"]
    assert licences["diffusers pipeline"] == "CreativeML OpenRAIL-M"
    assert "Apache-2.0" in licences["CLIP image encoder"]


def test_models_dir_reads_a_hugging_face_hub_cache(tmp_path: Path) -> None:
    """`--models-dir ~/.cache/huggingface/hub` said "nothing recognised": the files sit three levels down, in
    models--ORG--NAME/snapshots/REVISION/. Each repository's snapshot (the one refs/main names) is read as a folder."""
    from idcli.model_folders import scan_models_dir

    hub = tmp_path / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    faceid = hub / "models--h94--IP-Adapter-FaceID"
    (faceid / "snapshots" / revision).mkdir(parents=True)
    (faceid / "snapshots" / "old").mkdir()
    (faceid / "refs").mkdir()
    (faceid / "refs" / "main").write_text(revision)
    (faceid / "snapshots" / revision / "ip-adapter-faceid_sd15.bin").write_bytes(b"a" * 10)
    (faceid / "snapshots" / "old" / "ip-adapter-faceid_old.bin").write_bytes(b"o" * 10)
    base = hub / "models--stable-diffusion-v1-5--stable-diffusion-v1-5" / "snapshots" / revision
    (base / "unet").mkdir(parents=True)
    (base / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (base / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"w" * 10)
    encoder = hub / "models--h94--IP-Adapter" / "snapshots" / revision / "models" / "image_encoder"
    encoder.mkdir(parents=True)
    (encoder / "config.json").write_text('{"architectures": ["CLIPVisionModelWithProjection"]}')
    (encoder / "model.safetensors").write_bytes(b"e" * 10)
    found = {(e["kind"], e["repo_id"], Path(e["path"]).name) for e in scan_models_dir(hub)}
    assert found == {("IP-Adapter weights", "h94/IP-Adapter-FaceID", "ip-adapter-faceid_sd15.bin"),
                     ("diffusers pipeline", "stable-diffusion-v1-5/stable-diffusion-v1-5", revision),
                     ("CLIP image encoder", "h94/IP-Adapter", "image_encoder")}


def test_models_dir_hub_cache_with_a_damaged_or_hostile_refs_main(tmp_path: Path) -> None:
    """A hub cache's refs/main that is not UTF-8 stopped `models list --models-dir` with an internal error
    (UnicodeDecodeError), and one naming '../..' listed a folder outside the repository as its snapshot. refs/main
    names a commit: anything else is read as no ref (the only snapshot then, as when refs/main is missing)."""
    from idcli.model_folders import scan_models_dir

    hub = tmp_path / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    faceid = hub / "models--h94--IP-Adapter-FaceID"
    (faceid / "snapshots" / revision).mkdir(parents=True)
    (faceid / "snapshots" / revision / "ip-adapter-faceid_sd15.bin").write_bytes(b"a" * 10)
    (faceid / "refs").mkdir()
    (faceid / "refs" / "main").write_bytes(b"\xff\xfe" + revision.encode())
    found = [(e["repo_id"], Path(e["path"]).name) for e in scan_models_dir(hub)]
    assert found == [("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sd15.bin")]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ip-adapter-faceid_other.bin").write_bytes(b"o" * 10)
    (faceid / "refs" / "main").write_text("../../../outside")
    found = [(e["repo_id"], Path(e["path"]).name) for e in scan_models_dir(hub)]
    assert found == [("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sd15.bin")]


def test_models_dir_hub_cache_with_a_fifo_as_refs_main_blocks_nothing(tmp_path: Path) -> None:
    """A FIFO planted as a received hub cache's refs/main blocked `models list --models-dir` (and a pack's encoding,
    and `validate`, which read refs the same way) until killed: refs are read as regular files only, bounded."""
    import os

    from hang_watchdog import no_hang

    from idcli.model_folders import scan_models_dir
    from idcli.model_setup import hub_cache_commit

    revision = "0123456789abcdef0123456789abcdef01234567"
    faceid = tmp_path / "hub" / "models--h94--IP-Adapter-FaceID"
    (faceid / "snapshots" / revision).mkdir(parents=True)
    (faceid / "snapshots" / revision / "ip-adapter-faceid_sd15.bin").write_bytes(b"a" * 10)
    (faceid / "refs").mkdir()
    os.mkfifo(faceid / "refs" / "main")
    with no_hang(20):
        found = [(e["repo_id"], Path(e["path"]).name) for e in scan_models_dir(tmp_path / "hub")]
    assert found == [("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sd15.bin")]  # the only snapshot, as with no ref
    (faceid / "refs" / "main").unlink()
    (faceid / "refs" / "main").write_text(revision + "\n" + " " * 10**6)  # a commit, padded past any ref's size
    assert hub_cache_commit(faceid) is None


def test_a_ref_named_by_an_absolute_path_is_not_read(tmp_path: Path) -> None:
    """refs/ joined to '/abs/file' is '/abs/file': the reader refused '..' but read any absolute path as a ref (a
    Python caller's revision; a shot list's is refused as no ref name)."""
    from idcli.model_setup import hub_cache_commit

    revision = "0123456789abcdef0123456789abcdef01234567"
    faceid = tmp_path / "hub" / "models--h94--IP-Adapter-FaceID"
    (faceid / "refs").mkdir(parents=True)
    (faceid / "refs" / "main").write_text(revision)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(revision)
    assert hub_cache_commit(faceid, "main") == revision
    assert hub_cache_commit(faceid, str(elsewhere)) is None


def test_a_shot_list_naming_the_published_pickle_by_hub_id_uses_its_conversion(hf_cache: Path, adapter_bin,
                                                                               tmp_path: Path) -> None:
    """`adapter: {id: h94/IP-Adapter-FaceID, weight_name: ip-adapter-faceid_sd15.bin}`, diffusers' own load_ip_adapter
    arguments: after `idcli models fetch` converted that file, the render still refused the pickle and said to run
    `idcli models fetch`. Without allow_pickle the conversion is used; with it, the key stays the hub file's."""
    from idcli.adapters import resolve_adapter
    from idcli.hashing import sha256_file
    from idcli.model_setup import converted_adapter, fetch
    from idcli.models import resolve_model
    from idcli.shotlist import AdapterSpec, ModelSpec

    data, _nested = adapter_bin
    with HubEmulator(hub_repos(data), lifetime=60) as hub:
        fetch("sd15", "faceid", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    converted = converted_adapter(FACEID, WEIGHT)
    assert converted is not None
    named = AdapterSpec(variant="faceid", id=FACEID, weight_name=WEIGHT)
    spec = ModelSpec(preset="sd15", adapter=named)
    adapter = resolve_adapter(spec, resolve_model(spec, tmp_path, "float16"), tmp_path)
    assert adapter.source == "local" and adapter.content_hash == sha256_file(converted) and not adapter.allow_pickle
    allowed = ModelSpec(preset="sd15", allow_pickle=True, adapter=named)
    kept = resolve_adapter(allowed, resolve_model(allowed, tmp_path, "float16"), tmp_path)
    assert kept.source == "hub" and kept.weight_name == WEIGHT
    pinned = ModelSpec(preset="sd15", adapter=AdapterSpec(variant="faceid", id=FACEID, weight_name=WEIGHT,
                                                          revision="0123456789abcdef0123456789abcdef01234567"))
    # Another revision than the one converted: the pickle itself, which the render refuses without allow_pickle;
    # the repository being in the cache, plan refuses it too (tests/test_validate_models.py).
    from idcli.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match=r"the FaceID adapter 'ip-adapter-faceid_sd15\.bin'"):
        resolve_adapter(pinned, resolve_model(pinned, tmp_path, "float16"), tmp_path)
    pinned_allowed = ModelSpec(preset="sd15", allow_pickle=True, adapter=pinned.adapter)
    assert resolve_adapter(pinned_allowed, resolve_model(pinned_allowed, tmp_path, "float16"), tmp_path).source == "hub"


def test_models_list_reads_the_hub_cache_named_now_not_the_one_first_seen(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub's ``scan_cache_dir`` defaults to the HF_HUB_CACHE its module saw when first imported: a
    process that listed models once (a pipeline, the test suite) kept scanning that folder after the cache moved."""
    from idcli.model_setup import cached_snapshot_size

    first = offline_hub(monkeypatch, tmp_path / "first")
    first.mkdir()
    assert cached_snapshot_size("org/model", None) is None
    second = tmp_path / "second"
    snapshot = second / "models--org--model" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (second / "models--org--model" / "refs").mkdir()
    (second / "models--org--model" / "refs" / "main").write_text("a" * 40)
    offline_hub(monkeypatch, second)
    assert cached_snapshot_size("org/model", None) == len('{"_class_name": "StableDiffusionPipeline"}')


def test_models_list_sizes_the_snapshot_a_render_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an old pinned revision and main cached, `models list` showed the size of whichever snapshot the cache scan
    listed first (and "present" when only the old one was whole). A render reads main, or the revision a shot list
    pins: that snapshot is the one sized."""
    from idcli.model_folders import shotlist_folders
    from idcli.model_setup import cached_snapshot_size, list_models
    from idcli.presets import PRESETS

    cache = offline_hub(monkeypatch, tmp_path / "hub")
    repo_id = PRESETS["sd15"].default_id
    assert repo_id is not None
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    old, main = "1" * 40, "2" * 40
    index = b'{"_class_name": "StableDiffusionPipeline"}'
    for commit, weights in ((old, 5000), (main, 300)):
        (repo / "snapshots" / commit / "unet").mkdir(parents=True)
        (repo / "snapshots" / commit / "model_index.json").write_bytes(index)
        (repo / "snapshots" / commit / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"w" * weights)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(main)
    assert cached_snapshot_size(repo_id, None) == len(index) + 300
    assert cached_snapshot_size(repo_id, None, old) == len(index) + 5000
    base = next(n for r in list_models() if r["preset"] == "sd15" for n in r["needs"] if n["role"] == "base model")
    assert base["present"] and base["size_bytes"] == len(index) + 300
    shots = tmp_path / "shots.yaml"
    shots.write_text(f"version: 1\nproject: p\nmodel: {{preset: sd15, revision: '{old}'}}\n"
                     "shots:\n  - {id: a010, prompt: a hall}\n")
    [pinned] = [e for e in shotlist_folders(shots) if e["kind"] == "diffusers pipeline"]
    assert pinned["present"] and pinned["size_bytes"] == len(index) + 5000

    # The adapter's file likewise: the snapshot its own revision pins, not main's (which has the file too).
    faceid = cache / "models--h94--IP-Adapter-FaceID"
    for commit, weights in ((old, 700), (main, 90)):
        (faceid / "snapshots" / commit).mkdir(parents=True)
        (faceid / "snapshots" / commit / "ip-adapter-faceid_sd15.bin").write_bytes(b"a" * weights)
    (faceid / "refs").mkdir()
    (faceid / "refs" / "main").write_text(main)
    adapter = "adapter: {id: h94/IP-Adapter-FaceID, weight_name: ip-adapter-faceid_sd15.bin"
    for pin, size in (("", 90), (f", revision: '{old}'", 700)):
        shots.write_text(f"version: 1\nproject: p\nmodel: {{preset: sd15, {adapter}{pin}}}}}\n"
                         "shots:\n  - {id: a010, prompt: a hall}\n")
        [listed] = [e for e in shotlist_folders(shots) if e["kind"] == "IP-Adapter weights"]
        assert listed["present"] and listed["size_bytes"] == size, pin
        assert Path(listed["path"]).parent.name == (old if pin else main)

    # main's snapshot half downloaded (no model_index.json): a render cannot load it, whole as the old one is.
    (repo / "snapshots" / main / "model_index.json").unlink()
    assert cached_snapshot_size(repo_id, None) is None
    base = next(n for r in list_models() if r["preset"] == "sd15" for n in r["needs"] if n["role"] == "base model")
    assert not base["present"] and base["size_bytes"] is None


@pytest.mark.parametrize("host_shows_bars, progress", [(True, False), (False, True)])
def test_fetch_leaves_the_hosts_hub_progress_bars_as_it_found_them(host_shows_bars: bool, progress: bool,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``fetch(progress=False)`` turned huggingface_hub's progress bars off for the whole calling process, and
    ``progress=True`` turned them on over a host that had them off, dropping its per-group choices either way.
    They are off for the call only; with progress the host's switches are left as they are."""
    import sys

    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    from idcli.model_setup import fetch

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # fails fast: nothing is cached
    hub_bars = sys.modules["huggingface_hub.utils.tqdm"]
    (enable_progress_bars if host_shows_bars else disable_progress_bars)()
    disable_progress_bars("huggingface_hub.lfs_upload")  # a group the host silenced
    before = dict(hub_bars.progress_bar_states)
    try:
        with pytest.raises(ModelUnavailableError):
            fetch("sd15", "faceid", cache_dir=tmp_path / "hf", progress=progress)
        assert hub_bars.progress_bar_states == before
    finally:
        enable_progress_bars()
