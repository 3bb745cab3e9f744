"""IP-Adapter FaceID on the tiny presets: published checkpoint layout, loading, per-row strength and identity."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from idcli.engine.build import build_tiny_pipeline
from idcli.engine.faceid import (
    FaceIDState,
    RowScaledIPAdapterProcessor,
    faceid_state,
    faceid_unet_kwargs,
    install_row_scaled_processors,
    layer_grid,
)
from idcli.engine.faceid_layout import FACEID_EMBED_DIM, write_random_faceid_adapter
from idcli.engine.faceid_loading import load_faceid_adapter, unload_faceid_adapter
from idcli.errors import ModelUnavailableError

PRESETS = ["tiny-sd", "tiny-sdxl"]
WEIGHT_NAME = "ip-adapter-faceid_random.safetensors"
# Cross-attention layers of the tiny UNets: tiny-sd has one transformer block in down_blocks.1, two
# in up_blocks.0 and one in the mid block; tiny-sdxl has two blocks per attention (layers [1, 2]).
CROSS_LAYERS = {"tiny-sd": 4, "tiny-sdxl": 8}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory):
    """Per preset: a fresh pipeline with a random FaceID adapter loaded, its state and the adapter folder."""
    cache: dict[str, tuple] = {}

    def get(preset: str):
        if preset not in cache:
            pipe = build_tiny_pipeline(preset)
            folder = tmp_path_factory.mktemp(f"faceid-{preset}")
            write_random_faceid_adapter(pipe.unet, folder / WEIGHT_NAME, seed=0)
            state = load_faceid_adapter(pipe, str(folder), WEIGHT_NAME)
            cache[preset] = (pipe, state, folder)
        return cache[preset]

    return get


def identities(rows: int, seed: int = 7) -> torch.Tensor:
    """Unit-norm 512-d vectors, like insightface's normed_embedding."""
    g = torch.Generator("cpu").manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(rows, FACEID_EMBED_DIM, generator=g), dim=-1)


def unet_inputs(unet, rows: int, seed: int = 3, same_rows: bool = False) -> dict:
    """Random latents, text embeddings and (SDXL) added conditions for a direct UNet forward."""
    g = torch.Generator("cpu").manual_seed(seed)
    n = 1 if same_rows else rows
    sample = torch.randn(n, 4, 16, 16, generator=g)
    text = torch.randn(n, 8, unet.config.cross_attention_dim, generator=g)
    added = None
    if unet.config.addition_embed_type == "text_time":
        added = {"text_embeds": torch.randn(n, 32, generator=g),
                 "time_ids": torch.tensor([[128.0, 128.0, 0.0, 0.0, 128.0, 128.0]]).repeat(n, 1)}
    if same_rows:
        sample, text = sample.repeat(rows, 1, 1, 1), text.repeat(rows, 1, 1)
        added = None if added is None else {k: v.repeat(rows, 1) for k, v in added.items()}
    return {"sample": sample, "text": text, "added": added}


def run_unet(unet, inputs: dict, embeds: torch.Tensor | None = None, rows=slice(None)) -> torch.Tensor:
    """One UNet forward at t=500 on the selected rows; with ``embeds``, one identity per row."""
    sample, text = inputs["sample"][rows], inputs["text"][rows]
    added = None if inputs["added"] is None else {k: v[rows] for k, v in inputs["added"].items()}
    kwargs = {"added_cond_kwargs": added}
    if embeds is not None:
        kwargs = faceid_unet_kwargs(embeds[rows], added)
    with torch.no_grad():
        return unet(sample, 500, encoder_hidden_states=text, return_dict=False, **kwargs)[0]


# -- the checkpoint ------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_random_adapter_has_the_published_layout(tiny_engines, tmp_path: Path, preset: str) -> None:
    from safetensors import safe_open

    unet = tiny_engines(preset).pipe.unet
    cad = unet.config.cross_attention_dim
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    path = write_random_faceid_adapter(unet, tmp_path / "a" / WEIGHT_NAME, seed=0)
    assert torch.equal(torch.rand(3), expected_draw), "writing must not touch the caller's RNG"
    assert path == tmp_path / "a" / WEIGHT_NAME
    assert [p.name for p in path.parent.iterdir()] == [WEIGHT_NAME]  # no temporary file left behind

    cross = [n for n in unet.attn_processors if n.endswith("attn2.processor")]
    assert len(cross) == CROSS_LAYERS[preset]
    expected = {
        "image_proj.proj.0.weight": (1024, 512), "image_proj.proj.0.bias": (1024,),
        "image_proj.proj.2.weight": (4 * cad, 1024), "image_proj.proj.2.bias": (4 * cad,),
        "image_proj.norm.weight": (cad,), "image_proj.norm.bias": (cad,),
    }
    for i in range(len(cross)):
        # Every cross-attention layer of the tiny UNets sits in a 64-channel block.
        expected[f"ip_adapter.{2 * i + 1}.to_k_ip.weight"] = (64, cad)
        expected[f"ip_adapter.{2 * i + 1}.to_v_ip.weight"] = (64, cad)
    # The LoRA: every attention processor, numbered in attn_processors order (self- and cross-attention).
    for key_id, name in enumerate(unet.attn_processors):
        attn = unet.get_submodule(name.removesuffix(".processor"))
        for proj, linear in (("to_q", attn.to_q), ("to_k", attn.to_k), ("to_v", attn.to_v), ("to_out", attn.to_out[0])):
            expected[f"ip_adapter.{key_id}.{proj}_lora.down.weight"] = (4, linear.in_features)
            expected[f"ip_adapter.{key_id}.{proj}_lora.up.weight"] = (linear.out_features, 4)
    with safe_open(path, framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
        metadata = f.metadata()
        assert all(torch.isfinite(f.get_tensor(k)).all() for k in f.keys())  # noqa: SIM118
    assert found == expected
    assert metadata["idcli.random_weights"] == "true"

    again = write_random_faceid_adapter(unet, tmp_path / "b" / WEIGHT_NAME, seed=0)
    other = write_random_faceid_adapter(unet, tmp_path / "c" / WEIGHT_NAME, seed=1)
    assert again.read_bytes() == path.read_bytes()
    assert other.read_bytes() != path.read_bytes()


@pytest.mark.parametrize("preset", PRESETS)
def test_loads_offline_into_the_faceid_projection(adapters, preset: str) -> None:
    from diffusers.models.embeddings import IPAdapterFaceIDImageProjection

    pipe, state, _folder = adapters(preset)
    (projection,) = pipe.unet.encoder_hid_proj.image_projection_layers
    assert isinstance(projection, IPAdapterFaceIDImageProjection)
    assert projection.num_tokens == 4 and projection.cross_attention_dim == pipe.unet.config.cross_attention_dim
    processors = list(pipe.unet.attn_processors.values())
    # Every layer is ours (each carries its LoRA); the cross-attention ones also read the identity tokens.
    assert all(isinstance(p, RowScaledIPAdapterProcessor) and p.lora is not None for p in processors)
    assert sum(p.to_k_ip is not None for p in processors) == CROSS_LAYERS[preset]
    assert all(p.state is state for p in processors)
    assert faceid_state(pipe.unet) is state


def test_pickles_are_refused_unless_allowed(adapters, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    _pipe, _state, folder = adapters("tiny-sd")
    flat = load_file(folder / WEIGHT_NAME)
    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        group, rest = key.split(".", 1)
        nested[group][rest] = value
    torch.save(nested, tmp_path / "ip-adapter-faceid.bin")  # the published files' pickle layout

    pipe = build_tiny_pipeline("tiny-sd")
    unet = pipe.unet  # the loader sets its projection in place (named apart: mypy keeps an `is None` past calls)
    with pytest.raises(ModelUnavailableError, match="allow_pickle"):
        load_faceid_adapter(pipe, str(tmp_path), "ip-adapter-faceid.bin")
    assert unet.encoder_hid_proj is None  # refused before anything was loaded

    state = load_faceid_adapter(pipe, str(tmp_path), "ip-adapter-faceid.bin", allow_pickle=True)
    reference = adapters("tiny-sd")[0].unet
    assert torch.equal(pipe.unet.encoder_hid_proj.state_dict()["image_projection_layers.0.ff.net.2.weight"],
                       reference.encoder_hid_proj.state_dict()["image_projection_layers.0.ff.net.2.weight"])
    assert faceid_state(pipe.unet) is state

    with pytest.raises(ModelUnavailableError, match="cannot load the FaceID adapter"):
        load_faceid_adapter(pipe, str(tmp_path), "missing.safetensors")

    unload_faceid_adapter(pipe)
    assert pipe.unet.encoder_hid_proj is None and faceid_state(pipe.unet) is None


def kohya_lora(flat: dict[str, torch.Tensor], unet) -> dict[str, torch.Tensor]:
    """The LoRA of a FaceID checkpoint as h94 also publishes it on its own (ip-adapter-faceid_sd15_lora.safetensors,
    for ComfyUI and A1111): kohya names, ``lora_unet_{module path}_{to_q|to_k|to_v|to_out_0}.lora_{down|up}``."""
    names = list(unet.attn_processors)
    lora = {}
    for key, value in flat.items():
        if "_lora." not in key:
            continue
        _group, number, rest = key.split(".", 2)
        projection, _, direction = rest.partition("_lora.")
        module = names[int(number)].removesuffix(".processor").replace(".", "_")
        target = "to_out_0" if projection == "to_out" else projection
        lora[f"lora_unet_{module}_{target}.lora_{direction.split('.')[0]}.weight"] = value
    return lora


def test_the_lora_file_alone_is_refused_naming_the_adapter_file(adapters, tmp_path: Path) -> None:
    """ip-adapter-faceid_sd15_lora.safetensors beside the adapter looks like the safetensors form of it; it holds
    only the LoRA, which the adapter file carries too."""
    from safetensors.torch import load_file, save_file

    pipe, _state, folder = adapters("tiny-sd")
    lora_file = tmp_path / "ip-adapter-faceid_sd15_lora.safetensors"
    save_file(kohya_lora(load_file(folder / WEIGHT_NAME), pipe.unet), lora_file)
    fresh = build_tiny_pipeline("tiny-sd")
    with pytest.raises(ModelUnavailableError) as info:
        load_faceid_adapter(fresh, str(tmp_path), "ip-adapter-faceid_sd15_lora.safetensors")
    message = str(info.value)
    assert "ip-adapter-faceid_sd15_lora.safetensors' holds only a LoRA" in message
    assert "ip-adapter-faceid_sd15.bin" in message and "lora_unet_" in message
    assert fresh.unet.encoder_hid_proj is None
    save_file({"first_stage_model.decoder.conv_in.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(ModelUnavailableError, match=r"other\.safetensors' is not an IP-Adapter checkpoint.*"
                                                    r"first_stage_model\.decoder"):
        load_faceid_adapter(fresh, str(tmp_path), "other.safetensors")


@pytest.mark.parametrize(("made_for", "base"), [("tiny-sd", "tiny-sdxl"), ("tiny-sdxl", "tiny-sd")])
def test_an_adapter_for_the_other_base_model_says_so(adapters, made_for: str, base: str) -> None:
    """An SD1.5 adapter with an SDXL base (or the reverse) failed inside diffusers with "Error(s) in loading
    state_dict for IPAdapterAttnProcessor2_0:" and nothing more."""
    _pipe, _state, folder = adapters(made_for)
    pipe = build_tiny_pipeline(base)
    with pytest.raises(ModelUnavailableError) as info:
        load_faceid_adapter(pipe, str(folder), WEIGHT_NAME)
    message = str(info.value)
    made, needs = (32, 64) if made_for == "tiny-sd" else (64, 32)
    assert f"made for a UNet with cross_attention_dim {made}" in message
    assert f"this model's is {needs}" in message and WEIGHT_NAME in message
    assert pipe.unet.encoder_hid_proj is None and faceid_state(pipe.unet) is None


# -- the processor -------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_uniform_strength_matches_the_stock_processor(tmp_path: Path, preset: str) -> None:
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    folder = tmp_path / "no-lora"
    pipe = build_tiny_pipeline(preset)
    write_random_faceid_adapter(pipe.unet, folder / WEIGHT_NAME, seed=0, lora=False)
    pipe.load_ip_adapter(str(folder), subfolder="", weight_name=WEIGHT_NAME, image_encoder_folder=None)
    assert any(isinstance(p, IPAdapterAttnProcessor2_0) for p in pipe.unet.attn_processors.values())
    pipe.set_ip_adapter_scale(0.7)
    inputs, embeds = unet_inputs(pipe.unet, 2), identities(2)
    stock = run_unet(pipe.unet, inputs, embeds)

    state = install_row_scaled_processors(pipe.unet)
    state.row_scale = 0.7
    uniform = run_unet(pipe.unet, inputs, embeds)
    state.row_scale = torch.tensor([0.7, 0.7])
    per_row = run_unet(pipe.unet, inputs, embeds)
    assert (uniform - stock).abs().max() < 1e-5
    assert (per_row - stock).abs().max() < 1e-5


@pytest.mark.parametrize("preset", PRESETS)
def test_zero_strength_rows_equal_the_unet_without_adapter(tiny_engines, adapters, preset: str) -> None:
    pipe, state, _folder = adapters(preset)
    plain_unet = tiny_engines(preset).pipe.unet  # same weights, no adapter loaded
    assert plain_unet.encoder_hid_proj is None
    inputs, embeds = unet_inputs(pipe.unet, 3), identities(3)
    plain = run_unet(plain_unet, inputs)

    state.row_scale = torch.tensor([1.0, 0.0, 1.0])
    mixed = run_unet(pipe.unet, inputs, embeds)
    assert torch.equal(mixed[1], plain[1])
    assert (mixed[0] - plain[0]).abs().mean() > 1e-4  # the identity does act on the other rows

    state.row_scale = 0.0
    assert torch.equal(run_unet(pipe.unet, inputs, embeds), plain)
    state.row_scale = 1.0


@pytest.mark.parametrize("preset", PRESETS)
def test_each_row_gets_its_own_identity(adapters, preset: str) -> None:
    pipe, state, _folder = adapters(preset)
    state.row_scale = 1.0
    inputs = unet_inputs(pipe.unet, 2, same_rows=True)  # only the identities differ between the rows
    embeds = identities(2)
    batched = run_unet(pipe.unet, inputs, embeds)
    for row in range(2):
        alone = run_unet(pipe.unet, inputs, embeds, rows=slice(row, row + 1))
        assert (batched[row] - alone[0]).abs().max() < 1e-5
    assert (batched[0] - batched[1]).abs().mean() > 1e-4


@pytest.mark.parametrize("preset", PRESETS)
def test_half_strength_lies_between_none_and_full(adapters, preset: str) -> None:
    pipe, state, _folder = adapters(preset)
    inputs, embeds = unet_inputs(pipe.unet, 2), identities(2)
    outs = {}
    for scale in (0.0, 0.5, 1.0):
        state.row_scale = torch.full((2,), scale)
        outs[scale] = run_unet(pipe.unet, inputs, embeds)
    state.row_scale = 1.0
    span = (outs[1.0] - outs[0.0]).abs().mean()
    assert span > 1e-4
    # Linear in each layer; through the whole UNet only nearly so.
    assert ((outs[0.5] - (outs[0.0] + outs[1.0]) / 2).abs().mean() < 0.1 * span)

    # One attention layer's identity attention on its own is exactly linear in the strength (its LoRA,
    # which moves q, k and v before the softmax, is set aside here; tests/test_faceid_lora.py covers it).
    name = next(n for n, p in pipe.unet.attn_processors.items()
                if isinstance(p, RowScaledIPAdapterProcessor) and p.to_k_ip is not None)
    attn = pipe.unet.get_submodule(name.removesuffix(".processor"))
    lora, attn.processor.lora = attn.processor.lora, None
    g = torch.Generator("cpu").manual_seed(5)
    cad = pipe.unet.config.cross_attention_dim
    hidden = torch.randn(2, 64, attn.to_q.in_features, generator=g)
    context = (torch.randn(2, 8, cad, generator=g), [torch.randn(2, 1, 4, cad, generator=g)])
    layer = {}
    with torch.no_grad():
        for scale in (0.0, 0.5, 1.0):
            attn.processor.state.row_scale = torch.full((2, 1, 1), scale)
            layer[scale] = attn(hidden, encoder_hidden_states=context)
    state.row_scale = 1.0
    attn.processor.lora = lora
    assert (layer[0.5] - (layer[0.0] + layer[1.0]) / 2).abs().max() < 1e-6
    assert (layer[1.0] - layer[0.0]).abs().mean() > 1e-3


def test_spatial_strength_masks(adapters) -> None:
    pipe, state, _folder = adapters("tiny-sd")
    inputs, embeds = unet_inputs(pipe.unet, 2), identities(2)
    state.row_scale = 1.0
    full = run_unet(pipe.unet, inputs, embeds)
    state.row_scale = 0.0
    none = run_unet(pipe.unet, inputs, embeds)
    state.row_scale = torch.ones(2, 1, 16, 16)
    assert torch.equal(run_unet(pipe.unet, inputs, embeds), full)
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, :, :8] = 1.0  # left half of row 0 only
    state.row_scale = mask
    masked = run_unet(pipe.unet, inputs, embeds)
    state.row_scale = 1.0
    assert torch.equal(masked[1], none[1])
    assert (masked[0] - none[0]).abs().mean() > 1e-5 and (masked[0] - full[0]).abs().mean() > 1e-5

    assert layer_grid(16, 12, 48) == (8, 6) and layer_grid(15, 15, 64) == (8, 8)
    probe = torch.ones(2, 8, 4)
    scale = FaceIDState(mask).scale_for(2, 64, probe)
    assert isinstance(scale, torch.Tensor) and scale.shape == (2, 64, 1)
    with pytest.raises(ValueError, match="rows"):
        FaceIDState(torch.ones(3)).scale_for(2, 64, probe)
    with pytest.raises(ValueError):
        FaceIDState(torch.ones(2, 2))


def test_bfloat16_zero_rows_stay_exact(adapters) -> None:
    import copy

    pipe, _state, _folder = adapters("tiny-sd")
    unet = copy.deepcopy(pipe.unet).to(torch.bfloat16)
    state = faceid_state(unet)
    assert state is not None and state is not _state
    inputs, embeds = unet_inputs(unet, 2), identities(2).to(torch.bfloat16)
    inputs = {"sample": inputs["sample"].bfloat16(), "text": inputs["text"].bfloat16(), "added": None}
    state.row_scale = torch.tensor([1.0, 0.0])
    mixed = run_unet(unet, inputs, embeds)
    state.row_scale = 0.0
    plain = run_unet(unet, inputs, embeds)
    assert mixed.dtype == torch.bfloat16 and torch.isfinite(mixed).all()
    assert torch.equal(mixed[1], plain[1]) and not torch.equal(mixed[0], plain[0])


# -- UNet arguments ------------------------------------------------------------------------------------


def test_unet_kwargs_give_one_embedding_per_row() -> None:
    embeds = identities(3)
    base = {"text_embeds": torch.zeros(3, 32), "time_ids": torch.zeros(3, 6)}
    kwargs = faceid_unet_kwargs(embeds, base, dtype=torch.bfloat16)
    added = kwargs["added_cond_kwargs"]
    assert set(added) == {"text_embeds", "time_ids", "image_embeds"} and "image_embeds" not in base
    (tensor,) = added["image_embeds"]
    assert tensor.shape == (3, 1, 512) and tensor.dtype == torch.bfloat16
    assert torch.equal(tensor[:, 0].float(), embeds.bfloat16().float())
    (several,) = faceid_unet_kwargs(torch.stack([embeds, -embeds], 1))["added_cond_kwargs"]["image_embeds"]
    assert several.shape == (3, 2, 512)  # 'prepend': several embeddings per row
    with pytest.raises(ValueError, match="rows, 512"):
        faceid_unet_kwargs(embeds[:, :100])
    with pytest.raises(ValueError, match="rows, 512"):
        faceid_unet_kwargs(embeds[None, None])
