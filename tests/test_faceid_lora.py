"""The FaceID checkpoint's LoRA, applied per row inside our attention processors (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_faceid import WEIGHT_NAME, identities, run_unet, unet_inputs

from idcli.engine.build import build_tiny_pipeline
from idcli.engine.faceid import faceid_state
from idcli.engine.faceid_layout import LORA_PROJECTIONS, write_random_faceid_adapter
from idcli.engine.faceid_loading import load_faceid_adapter, read_faceid_checkpoint, split_faceid_lora
from idcli.errors import ModelUnavailableError

PRESETS = ["tiny-sd", "tiny-sdxl"]


def _merge_lora(unet, lora: dict[int, dict[str, torch.Tensor]]) -> None:
    """The reference: W += up @ down in every adapted linear, which is what diffusers' LoRA (peft's
    ``fuse_lora``, scale 1, no alpha) computes for every row."""
    names = list(unet.attn_processors)
    with torch.no_grad():
        for key_id, weights in lora.items():
            attn = unet.get_submodule(names[key_id].removesuffix(".processor"))
            for proj in LORA_PROJECTIONS:
                linear = attn.to_out[0] if proj == "to_out" else getattr(attn, proj)
                linear.weight += weights[f"{proj}_lora.up.weight"] @ weights[f"{proj}_lora.down.weight"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[str, tuple] = {}

    def get(preset: str):
        if preset not in cache:
            folder = tmp_path_factory.mktemp(f"lora-{preset}")
            pipe = build_tiny_pipeline(preset)
            write_random_faceid_adapter(pipe.unet, folder / WEIGHT_NAME, seed=0)
            state = load_faceid_adapter(pipe, str(folder), WEIGHT_NAME)
            cache[preset] = (pipe, state, folder)
        return cache[preset]

    return get


@pytest.mark.parametrize("preset", PRESETS)
def test_lora_at_strength_one_equals_the_merged_reference(loaded, preset: str) -> None:
    pipe, state, folder = loaded(preset)
    without_lora, lora = split_faceid_lora(read_faceid_checkpoint(folder / WEIGHT_NAME))
    assert len(lora) == len(pipe.unet.attn_processors)

    reference = build_tiny_pipeline(preset)
    _merge_lora(reference.unet, lora)
    reference.load_ip_adapter(without_lora, subfolder="", weight_name=WEIGHT_NAME, image_encoder_folder=None)
    reference.set_ip_adapter_scale(1.0)
    no_lora = build_tiny_pipeline(preset)
    no_lora.load_ip_adapter(without_lora, subfolder="", weight_name=WEIGHT_NAME, image_encoder_folder=None)

    inputs, embeds = unet_inputs(pipe.unet, 2), identities(2)
    state.row_scale = 1.0
    ours = run_unet(pipe.unet, inputs, embeds)
    expected = run_unet(reference.unet, inputs, embeds)
    assert (ours - expected).abs().max() < 1e-5
    # The LoRA does act: without it the same call differs by far more than the tolerance.
    assert (run_unet(no_lora.unet, inputs, embeds) - expected).abs().max() > 1e-3


@pytest.mark.parametrize("preset", PRESETS)
def test_strength_zero_rows_are_exactly_text_only(tiny_engines, loaded, preset: str) -> None:
    pipe, state, _folder = loaded(preset)
    plain_unet = tiny_engines(preset).pipe.unet  # no adapter, no LoRA
    inputs, embeds = unet_inputs(pipe.unet, 3), identities(3)
    plain = run_unet(plain_unet, inputs)
    state.row_scale = torch.tensor([0.0, 1.0, 0.0])
    mixed = run_unet(pipe.unet, inputs, embeds)
    assert torch.equal(mixed[0], plain[0]) and torch.equal(mixed[2], plain[2])
    state.row_scale = torch.zeros(3)
    assert torch.equal(run_unet(pipe.unet, inputs, embeds), plain)
    # A spatial mask that is zero over a whole row keeps that row text-only as well.
    mask = torch.zeros(3, 1, 16, 16)
    mask[1, :, :, :8] = 1.0
    state.row_scale = mask
    assert torch.equal(run_unet(pipe.unet, inputs, embeds)[0], plain[0])
    state.row_scale = 1.0


@pytest.mark.parametrize("preset", PRESETS)
def test_mixed_strength_batches_equal_single_rows(loaded, preset: str) -> None:
    pipe, state, _folder = loaded(preset)
    inputs, embeds = unet_inputs(pipe.unet, 3), identities(3)
    strengths = torch.tensor([1.0, 0.0, 0.6])
    state.row_scale = strengths
    batched = run_unet(pipe.unet, inputs, embeds)
    for row in range(3):
        state.row_scale = strengths[row:row + 1]
        alone = run_unet(pipe.unet, inputs, embeds, rows=slice(row, row + 1))
        assert (batched[row] - alone[0]).abs().max() < 1e-5
    state.row_scale = 1.0


def test_the_lora_scales_with_the_row_strength(loaded) -> None:
    """One self-attention layer (LoRA only, no identity tokens) is exactly linear in the strength."""
    pipe, state, _folder = loaded("tiny-sd")
    name = next(n for n in pipe.unet.attn_processors if n.endswith("attn1.processor"))
    attn = pipe.unet.get_submodule(name.removesuffix(".processor"))
    assert attn.processor.lora is not None and attn.processor.to_k_ip is None
    hidden = torch.randn(2, 64, attn.to_q.in_features, generator=torch.Generator().manual_seed(1))
    out = {}
    with torch.no_grad():
        for scale in (0.0, 0.5, 1.0):
            state.row_scale = torch.full((2,), scale)
            out[scale] = attn(hidden)
    state.row_scale = 1.0
    assert (out[1.0] - out[0.0]).abs().mean() > 1e-3
    # q, k and v all move, so softmax makes the layer only nearly linear; the midpoint lies close.
    assert (out[0.5] - (out[0.0] + out[1.0]) / 2).abs().mean() < 0.1 * (out[1.0] - out[0.0]).abs().mean()


def test_pickled_checkpoint_with_lora_loads_the_same(loaded, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    pipe, state, folder = loaded("tiny-sd")
    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in load_file(folder / WEIGHT_NAME).items():
        group, rest = key.split(".", 1)
        nested[group][rest] = value
    torch.save(nested, tmp_path / "ip-adapter-faceid_sd15.bin")  # the published .bin layout
    other = build_tiny_pipeline("tiny-sd")
    other_state = load_faceid_adapter(other, str(tmp_path), "ip-adapter-faceid_sd15.bin", allow_pickle=True)
    inputs, embeds = unet_inputs(pipe.unet, 1), identities(1)
    state.row_scale = other_state.row_scale = 1.0
    assert torch.equal(run_unet(pipe.unet, inputs, embeds), run_unet(other.unet, inputs, embeds))
    assert faceid_state(other.unet) is other_state


def test_bad_checkpoints_name_the_file(tmp_path: Path, loaded) -> None:
    from safetensors.torch import load_file, save_file

    _pipe, _state, folder = loaded("tiny-sd")
    tensors = load_file(folder / WEIGHT_NAME)

    plus = {k: v for k, v in tensors.items() if not k.startswith("image_proj.")}
    plus["image_proj.perceiver_resampler.proj_in.weight"] = torch.zeros(4, 4)
    save_file(plus, tmp_path / "plus.safetensors")
    pipe = build_tiny_pipeline("tiny-sd")
    with pytest.raises(ModelUnavailableError, match=r"plus\.safetensors.*FaceID-Plus"):
        load_faceid_adapter(pipe, str(tmp_path), "plus.safetensors")
    assert pipe.unet.encoder_hid_proj is None

    data = (folder / WEIGHT_NAME).read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelUnavailableError, match=r"cut\.safetensors.*truncated"):
        load_faceid_adapter(pipe, str(tmp_path), "cut.safetensors")

    # A LoRA made for another UNet (a layer this one does not have): refused, nothing left loaded.
    wrong = dict(tensors)
    wrong["ip_adapter.99.to_q_lora.down.weight"] = torch.zeros(4, 4)
    save_file(wrong, tmp_path / "wrong.safetensors")
    with pytest.raises(ModelUnavailableError, match=r"wrong\.safetensors.*layer 99"):
        load_faceid_adapter(pipe, str(tmp_path), "wrong.safetensors")
    assert pipe.unet.encoder_hid_proj is None and faceid_state(pipe.unet) is None


def test_diffusers_is_never_asked_to_apply_the_lora(tmp_path: Path, loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    """With peft present diffusers would merge the LoRA into every linear of the UNet; we never let it."""
    import diffusers.loaders.ip_adapter as ip_adapter_module

    _pipe, _state, folder = loaded("tiny-sd")
    monkeypatch.setattr(ip_adapter_module, "USE_PEFT_BACKEND", True)  # as if peft were installed
    pipe = build_tiny_pipeline("tiny-sd")
    calls: list = []
    monkeypatch.setattr(pipe, "load_lora_weights", lambda *a, **k: calls.append((a, k)), raising=False)
    monkeypatch.setattr(pipe, "set_adapters", lambda *a, **k: calls.append((a, k)), raising=False)
    load_faceid_adapter(pipe, str(folder), WEIGHT_NAME)
    assert calls == []
    assert all(p.lora is not None for p in pipe.unet.attn_processors.values())
