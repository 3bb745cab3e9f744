"""`idcli models list|fetch` through huggingface_hub against a hub emulator on 127.0.0.1 (issue 17)."""

from __future__ import annotations

import io
import json
from pathlib import Path

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
    from idcli.engine.faceid import write_random_faceid_adapter

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


def _repos(adapter: bytes) -> dict[str, dict[str, bytes]]:
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


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # The suite runs offline (conftest); these tests talk only to the emulator on 127.0.0.1.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)
    # huggingface_hub resumes from the last whole chunk it received (10 MB by default); small chunks
    # let a 3 MB test file break off after some of them, as a large real file does.
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    return cache


def test_fetch_downloads_filters_and_converts_the_pickle_once(hf_cache: Path, adapter_bin) -> None:
    from safetensors.torch import load_file

    from idcli.hashing import sha256_bytes, sha256_file
    from idcli.model_setup import converted_adapter, fetch, list_models

    data, nested = adapter_bin
    before = {row["preset"]: row for row in list_models(cache_dir=hf_cache)}
    assert before["sd15"]["ready"] is False
    with HubEmulator(_repos(data), faults={WEIGHT: "drop-once"}, lifetime=60) as hub:
        result = fetch("sd15", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
        requests = list(hub.requests)
        again = fetch("sd15", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)

    # The interrupted adapter transfer resumed with a Range request and the bytes are whole.
    ranged = [r for r in requests if r[0] == "GET" and r[1].endswith(WEIGHT) and r[2]]
    assert ranged and ranged[0][2].startswith("bytes=")
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

    after = {row["preset"]: row for row in list_models(cache_dir=hf_cache)}
    assert after["sd15"]["ready"] is True and after["sdxl"]["ready"] is False
    sizes = {need["role"]: need["size_bytes"] for need in after["sd15"]["needs"]}
    assert sizes["FaceID adapter"] == converted.stat().st_size and sizes["base model"] > 16000


def test_the_converted_adapter_is_what_a_render_loads(hf_cache: Path, adapter_bin, tmp_path: Path) -> None:
    from idcli.adapters import resolve_adapter
    from idcli.engine.build import build_tiny_pipeline
    from idcli.engine.faceid import load_faceid_adapter
    from idcli.hashing import sha256_file
    from idcli.model_setup import converted_adapter, fetch
    from idcli.models import resolve_model
    from idcli.shotlist import AdapterSpec, ModelSpec

    data, _nested = adapter_bin
    with HubEmulator(_repos(data), lifetime=60) as hub:
        fetch("sd15", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    converted = converted_adapter(FACEID, WEIGHT)
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
    with HubEmulator(_repos(data), faults={WEIGHT: "short"}, lifetime=60) as hub, \
            pytest.raises(ModelUnavailableError, match=r"truncated.*run the same command again") as info:
        fetch("sd15", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    assert info.value.exit_code == 4
    assert converted_adapter(FACEID, WEIGHT) is None
    assert not [p for p in hf_cache.rglob(WEIGHT)], "nothing partial at a final path"

    bad = _repos(b"this is not a pickle of tensors")
    with HubEmulator(bad, lifetime=60) as hub, pytest.raises(ModelUnavailableError, match="weights-only load"):
        fetch("sd15", cache_dir=hf_cache, endpoint=hub.endpoint, progress=False)
    assert converted_adapter(FACEID, WEIGHT) is None


def test_models_cli() -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    listed = CliRunner().invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    assert {(r["preset"], r["variant"]) for r in doc["presets"]} == {("sd15", "faceid"), ("sdxl", "faceid")}
    assert all("non-commercial" in r["face_models"] for r in doc["presets"])
    text = CliRunner().invoke(app, ["models", "list"])
    assert text.exit_code == 0 and "licence: CreativeML OpenRAIL-M" in text.stdout
    tiny = CliRunner().invoke(app, ["models", "fetch", "tiny-sd"])
    assert tiny.exit_code == 2 and "needs no download" in tiny.output
    variant = CliRunner().invoke(app, ["models", "fetch", "sd15", "--variant", "plus"])
    assert variant.exit_code == 2 and "allowed: faceid" in variant.output
