"""An adapter file lacking ``ip_adapter.*`` keys the loader reads (a LoRA whose ``to_out`` weights a converter dropped,
a conversion cut short) refused by `validate` and `plan` before any selfie is encoded, and by the render in words that
name the file, not the UNet (idcli/adapter_keys.py). Random-weight files in the published layout, trimmed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from idcli.adapter_keys import missing_keys
from idcli.cli import app
from idcli.engine.build import build_tiny_pipeline
from idcli.engine.faceid_layout import write_random_faceid_adapter
from idcli.engine.faceid_loading import load_faceid_adapter
from idcli.engine.faceid_plus import write_random_image_encoder, write_random_plusv2_adapter
from idcli.errors import ModelUnavailableError
from idcli.presets import RANDOM_IMAGE_ENCODERS

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: keys
model: {MODEL}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
"""
FACEID, PLUS = "ip-adapter-faceid_sd15", "ip-adapter-faceid-plusv2_sd15"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD1.5-shaped base folder, the FaceID and Plus v2 files for it (with their LoRA) and Plus v2's encoder."""
    root = tmp_path_factory.mktemp("keys")
    pipe = build_tiny_pipeline("tiny-sd")
    pipe.save_pretrained(root / "base-sd15", safe_serialization=True)
    write_random_faceid_adapter(pipe.unet, root / "published" / f"{FACEID}.safetensors", seed=3)
    clip = RANDOM_IMAGE_ENCODERS["tiny-sd"]["hidden_size"]
    write_random_plusv2_adapter(pipe.unet, root / "published" / f"{PLUS}.safetensors", clip, seed=5)
    write_random_image_encoder(root / "image_encoder", RANDOM_IMAGE_ENCODERS["tiny-sd"], seed=3)
    return root


def _trimmed(published: Path, folder: Path, weight: str, drop) -> Path:
    """The published file without the keys ``drop`` picks, as a converter or a cut copy leaves it."""
    kept = {key: value for key, value in load_file(published / "published" / f"{weight}.safetensors").items()
            if not drop(key)}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(kept, folder / f"{weight}.safetensors")
    return folder / f"{weight}.safetensors"


def _model(variant: str, weight: str, folder: Path, published: Path) -> str:
    encoder = f", image_encoder: {published / 'image_encoder'}" if variant == "faceid-plusv2" else ""
    return (f"{{preset: sd15, id: {published / 'base-sd15'}, adapter: {{variant: {variant}, id: {folder}, "
            f"weight_name: {weight}{encoder}}}}}")


def _encoded() -> list[Path]:
    return list((Path(os.environ["IDCLI_HOME"]) / "identities").glob("*.idpack"))


def _no_to_out(key: str) -> bool:
    return ".to_out_lora." in key


@pytest.mark.parametrize(("variant", "weight", "label"), [("faceid", FACEID, "FaceID"),
                                                           ("faceid-plusv2", PLUS, "FaceID-Plus v2")])
def test_a_lora_without_its_to_out_weights_is_refused_by_validate_and_plan(
        write_shotlist, tmp_path: Path, published: Path, variant: str, weight: str, label: str) -> None:
    """validate and plan passed it (exit 0), and the render refused it after encoding every selfie: "the LoRA of
    attention layer 0 (…attn1.processor) does not fit this UNet: 'to_out_lora.down.weight'". Now validate (exit 2, at
    model.adapter) and plan (exit 4) name the file, the first missing keys and their count, and what it looks like."""
    file = _trimmed(published, tmp_path / "converted", weight, _no_to_out)
    shots = write_shotlist(SHOTS.replace("{MODEL}", _model(variant, file.name, file.parent, published)))
    says = (f"the {label} adapter '{file}' lacks 16 keys the loader reads (ip_adapter.0.to_out_lora.down.weight, "
            "ip_adapter.0.to_out_lora.up.weight, ip_adapter.1.to_out_lora.down.weight, …): it looks like a "
            f"{label} file whose LoRA lacks its to_out weights on every layer, as a converter that kept only to_q, "
            "to_k and to_v writes it")
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and "shots.yaml:3:" in text and "model.adapter" in text and says in text, text
    for command in (["plan", str(shots), "--device", "cpu"],
                    ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu"]):
        result = CliRunner().invoke(app, command)
        text = " ".join(result.output.split())
        assert result.exit_code == 4 and says in text and "does not fit this UNet" not in text, text
        assert not _encoded(), "the adapter is refused before any selfie is encoded"
    assert not list(tmp_path.rglob("*.png"))


def test_an_allowed_pickle_lacking_keys_is_refused_by_validate_too(write_shotlist, tmp_path: Path,
                                                                   published: Path) -> None:
    """h94's .bin as ComfyUI users keep it, its LoRA trimmed: read weights-only and memory-mapped as before, the same
    refusal."""
    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in load_file(published / "published" / f"{FACEID}.safetensors").items():
        if not _no_to_out(key):
            group, rest = key.split(".", 1)
            nested[group][rest] = value
    (tmp_path / "ipadapter").mkdir()
    torch.save(nested, tmp_path / "ipadapter" / f"{FACEID}.bin")
    model = _model("faceid", f"{FACEID}.bin", tmp_path / "ipadapter", published).replace(
        "{preset", "{allow_pickle: true, preset", 1)
    validate = CliRunner().invoke(app, ["validate", str(write_shotlist(SHOTS.replace("{MODEL}", model)))])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and f"{FACEID}.bin' lacks 16 keys the loader reads" in text, text


def test_a_file_cut_short_is_refused_by_validate_plan_and_render(write_shotlist, tmp_path: Path,
                                                                  published: Path) -> None:
    """A conversion that stopped at attention layer 4 of tiny-sd's 8 is whole up to there, so only the UNet's layer
    count tells: validate and plan passed it, and the render refused it with diffusers' bare missing key
    ("'5.to_k_ip.weight'"). validate and plan now count the base model's attention layers from its UNet weights' key
    names (a safetensors header, no weight read); all three name the file and the layers."""
    file = _trimmed(published, tmp_path / "cut", FACEID,
                    lambda key: key.startswith("ip_adapter.") and int(key.split(".")[1]) >= 4)
    says = "it looks like a FaceID file cut short or trimmed: it has no keys at all for attention layers 4–7"
    shots = write_shotlist(SHOTS.replace("{MODEL}", _model("faceid", file.name, file.parent, published)))
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and "model.adapter" in text and f"'{file}' lacks 36 keys" in text, text
    assert says in text, text
    plan = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
    assert plan.exit_code == 4 and says in " ".join(plan.output.split()), plan.output
    assert not _encoded()
    pipe = build_tiny_pipeline("tiny-sd")
    with pytest.raises(ModelUnavailableError) as info:
        load_faceid_adapter(pipe, str(file.parent), file.name)
    message = str(info.value)
    assert f"the FaceID adapter '{file}' lacks 36 keys the loader reads (ip_adapter.4.to_q_lora.down.weight" in message
    assert "no keys at all for attention layers 4–7" in message, message
    assert pipe.unet.encoder_hid_proj is None


def test_a_missing_identity_projection_is_refused_at_render_naming_the_file(tmp_path: Path, published: Path) -> None:
    """One layer's to_v_ip gone: diffusers said "'3.to_v_ip.weight'" and nothing more."""
    file = _trimmed(published, tmp_path / "gap", FACEID, lambda key: key == "ip_adapter.3.to_v_ip.weight")
    with pytest.raises(ModelUnavailableError, match=r"gap/ip-adapter-faceid_sd15\.safetensors' lacks 1 key the "
                                                    r"loader reads \(ip_adapter\.3\.to_v_ip\.weight\)"):
        load_faceid_adapter(build_tiny_pipeline("tiny-sd"), str(file.parent), file.name)


def test_the_published_layout_and_a_file_without_any_lora_lack_nothing(published: Path) -> None:
    """The whole file lacks nothing; one with no LoRA key at all is not incomplete (it renders without the LoRA, as
    validate notes)."""
    keys = list(load_file(published / "published" / f"{FACEID}.safetensors"))
    assert missing_keys(keys) == [] and missing_keys(keys, attention_layers=8, cross_layers=[1, 3, 5, 7]) == []
    assert missing_keys([key for key in keys if "_lora." not in key]) == []
    assert missing_keys(keys, attention_layers=10, cross_layers=[1, 3, 5, 7, 9])[:2] == [
        "ip_adapter.8.to_q_lora.down.weight", "ip_adapter.8.to_q_lora.up.weight"]


def test_models_list_says_an_incomplete_file_is_not_loadable(tmp_path: Path, published: Path) -> None:
    """`models list --models-dir` said "FaceID: model.adapter.variant: faceid" of the trimmed file."""
    from idcli.adapter_layout import adapter_kind

    file = _trimmed(published, tmp_path / "converted", FACEID, _no_to_out)
    assert adapter_kind(file) == ("FaceID, incomplete: 16 of the keys the loader reads are missing (such as "
                                  "ip_adapter.0.to_out_lora.down.weight): not loadable, get it again")
    assert adapter_kind(published / "published" / f"{FACEID}.safetensors") == "FaceID: model.adapter.variant: faceid"
    assert adapter_kind(_other_layout(published, tmp_path / "kohya", "kohya")) == (
        "FaceID, its LoRA in another tool's key names (kohya's or diffusers'): idcli would not read it")


def _other_layout(published: Path, folder: Path, layout: str) -> Path:
    """The published FaceID file with its LoRA in another tool's names: kohya's, as h94's ip-adapter-faceid_sd15_lora
    .safetensors holds it (a user merging that file into a converted adapter), or diffusers' ``unet.{processor}.…``,
    as diffusers' load_ip_adapter renames an adapter's LoRA for its LoRA loader."""
    from test_faceid import kohya_lora

    flat = load_file(published / "published" / f"{FACEID}.safetensors")
    unet = build_tiny_pipeline("tiny-sd").unet
    if layout == "kohya":
        lora = kohya_lora(flat, unet)
    else:
        names = list(unet.attn_processors)
        lora = {f"unet.{names[int(key.split('.')[1])]}.{key.split('.', 2)[2]}": value
                for key, value in flat.items() if "_lora." in key}
    tensors = {key: value for key, value in flat.items() if "_lora." not in key} | lora
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, folder / f"{FACEID}.safetensors")
    return folder / f"{FACEID}.safetensors"


@pytest.mark.parametrize(("layout", "names"), [
    ("kohya", "kohya's names (lora_unet_…_to_q.lora_down.weight: the layout of the LoRA h94 publishes alone as "
              "…_lora.safetensors, for ComfyUI and A1111): 64 keys such as lora_unet_down_blocks_1_attentions_0_"),
    ("diffusers", "diffusers' names (unet.{layer}.processor.to_q_lora.down.weight: the layout diffusers' "
                  "load_ip_adapter turns an adapter's LoRA into): 64 keys such as unet.down_blocks.1.attentions.0.")])
def test_a_lora_in_another_tools_names_is_refused_naming_the_layout(
        write_shotlist, tmp_path: Path, published: Path, layout: str, names: str) -> None:
    """The adapter keys with the LoRA in kohya's or diffusers' names passed validate with a note that it "carries no
    LoRA", and rendered without it: the loader reads only ip_adapter.{k}.*_lora.*. Refused by validate (exit 2),
    plan (exit 4) and the render, naming the layout and the file to use."""
    file = _other_layout(published, tmp_path / layout, layout)
    says = f"the FaceID adapter '{file}' holds its LoRA in {names}"
    fix = "point model.adapter at h94's published adapter file"
    shots = write_shotlist(SHOTS.replace("{MODEL}", _model("faceid", file.name, file.parent, published)))
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and "model.adapter" in text and says in text and fix in text, text
    assert "carries no LoRA" not in text
    plan = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
    assert plan.exit_code == 4 and says in " ".join(plan.output.split()), plan.output
    assert not _encoded()
    pipe = build_tiny_pipeline("tiny-sd")
    with pytest.raises(ModelUnavailableError) as info:
        load_faceid_adapter(pipe, str(file.parent), file.name)
    assert says in str(info.value) and pipe.unet.encoder_hid_proj is None


# -- the training script's names: adapter_modules.* ----------------------------------------------------------


def _training_names(published: Path, folder: Path, weight: str) -> Path:
    """The published file with its ip_adapter.* keys named as IP-Adapter's training script saves them,
    adapter_modules.* (tutorial_train_faceid.py: ``adapter_modules = ModuleList(unet.attn_processors.values())``,
    numbered as ip_adapter is), beside image_proj.*: the file ComfyUI_IPAdapter_plus's loader takes as it is."""
    flat = load_file(published / "published" / f"{weight}.safetensors")
    renamed = {key.replace("ip_adapter.", "adapter_modules.", 1): value for key, value in flat.items()}
    assert any(key.startswith("adapter_modules.") for key in renamed)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(renamed, folder / f"{weight}.safetensors")
    return folder / f"{weight}.safetensors"


def _pixels(out: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    return {png.name: np.asarray(Image.open(png).convert("RGB")) for png in sorted(out.rglob("*.png"))}


@pytest.mark.parametrize(("variant", "weight"), [("faceid", FACEID), ("faceid-plusv2", PLUS)])
def test_the_training_scripts_names_render_the_image_the_published_names_do(
        write_shotlist, tmp_path: Path, published: Path, variant: str, weight: str) -> None:
    """adapter_modules.* keys were refused as a file lacking every to_k_ip/to_v_ip (validate and plan where the
    base model's layers were at hand, else the render, after every selfie was encoded; validate had noted that the file
    carries no LoRA, which it does). They are the same modules in the same order, read as ip_adapter.*: the image is
    the published file's, and `models list` names the variant."""
    from idcli.adapter_layout import adapter_kind

    renamed = _training_names(published, tmp_path / "trained", weight)
    images = {}
    for name, folder in (("published", published / "published"), ("trained", renamed.parent)):
        shots = write_shotlist(SHOTS.replace("{MODEL}", _model(variant, f"{weight}.safetensors", folder, published)),
                               f"{name}.yaml")
        validate = CliRunner().invoke(app, ["validate", str(shots)])
        assert validate.exit_code == 0 and "carries no LoRA" not in validate.output, validate.output
        render = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / name), "--device", "cpu"])
        assert render.exit_code == 0, render.output
        images[name] = _pixels(tmp_path / name)
    assert list(images["trained"]) == ["m1_t1.png"] and list(images["published"]) == ["m1_t1.png"]
    assert (images["trained"]["m1_t1.png"] == images["published"]["m1_t1.png"]).all()
    assert adapter_kind(renamed) == adapter_kind(published / "published" / f"{weight}.safetensors")


def test_an_allowed_pickle_with_the_training_scripts_group_loads_as_the_published_one(
        write_shotlist, tmp_path: Path, published: Path) -> None:
    """``{"image_proj": …, "adapter_modules": …}`` (ComfyUI takes the group so) was refused by the render as "no
    'image_proj' and 'ip_adapter' groups"; validate passed it. It loads as the published file does, its LoRA too."""
    from idcli.engine.faceid import RowScaledIPAdapterProcessor

    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "adapter_modules": {}}
    for key, value in load_file(published / "published" / f"{FACEID}.safetensors").items():
        group, rest = key.split(".", 1)
        nested["adapter_modules" if group == "ip_adapter" else group][rest] = value
    (tmp_path / "ipadapter").mkdir()
    torch.save(nested, tmp_path / "ipadapter" / f"{FACEID}.bin")
    model = _model("faceid", f"{FACEID}.bin", tmp_path / "ipadapter", published).replace(
        "{preset", "{allow_pickle: true, preset", 1)
    validate = CliRunner().invoke(app, ["validate", str(write_shotlist(SHOTS.replace("{MODEL}", model)))])
    assert validate.exit_code == 0 and "carries no LoRA" not in validate.output, validate.output
    trained, reference = build_tiny_pipeline("tiny-sd"), build_tiny_pipeline("tiny-sd")
    load_faceid_adapter(trained, str(tmp_path / "ipadapter"), f"{FACEID}.bin", allow_pickle=True)
    load_faceid_adapter(reference, str(published / "published"), f"{FACEID}.safetensors")
    ours, theirs = trained.unet.state_dict(), reference.unet.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)
    processors = list(trained.unet.attn_processors.values())
    assert all(isinstance(p, RowScaledIPAdapterProcessor) and p.lora is not None for p in processors)


def test_a_file_with_both_names_or_a_training_checkpoint_is_refused_naming_it(
        write_shotlist, tmp_path: Path, published: Path) -> None:
    """Adapter keys under both names (which of two weights to read is not idcli's to guess), and the training
    script's whole checkpoint (image_proj_model.*, adapter_modules.*, unet.*: what its README converts), are refused
    by validate, plan and the render, saying what the file is."""
    flat = load_file(published / "published" / f"{FACEID}.safetensors")
    both = flat | {key.replace("ip_adapter.", "adapter_modules.", 1): value.clone() for key, value in flat.items()
                   if key.startswith("ip_adapter.1.")}
    checkpoint = {key.replace("image_proj.", "image_proj_model.", 1).replace("ip_adapter.", "adapter_modules.", 1):
                  value for key, value in flat.items()} | {"unet.conv_in.weight": torch.zeros(4, 4, 3, 3)}
    says = {"both": "holds adapter keys under two names, 72 as ip_adapter.* (such as ip_adapter.0.to_k_lora.down."
                    "weight) and 10 as adapter_modules.* (IP-Adapter's training script's name, such as "
                    "adapter_modules.1.to_k_ip.weight): which of them to load is not clear",
            "checkpoint": "is a checkpoint of IP-Adapter's training script (79 keys: image_proj_model.*, "
                          "adapter_modules.*, and the UNet's own as unet.*), not an adapter file"}
    for name, tensors in (("both", both), ("checkpoint", checkpoint)):
        (tmp_path / name).mkdir()
        save_file(tensors, tmp_path / name / f"{FACEID}.safetensors")
        shots = write_shotlist(SHOTS.replace("{MODEL}", _model("faceid", f"{FACEID}.safetensors", tmp_path / name,
                                                               published)), f"{name}.yaml")
        validate = CliRunner().invoke(app, ["validate", str(shots)])
        text = " ".join(validate.output.split())
        assert validate.exit_code == 2 and "model.adapter" in text and says[name] in text, text
        plan = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
        assert plan.exit_code == 4 and says[name] in " ".join(plan.output.split()), plan.output
        with pytest.raises(ModelUnavailableError) as info:
            load_faceid_adapter(build_tiny_pipeline("tiny-sd"), str(tmp_path / name), f"{FACEID}.safetensors")
        assert says[name] in str(info.value)
    assert not _encoded()

def _nested(depth: int) -> str:
    """JSON nested deeper than Python's parser goes (its recursion limit): valid, and a RecursionError to json.loads."""
    return '{"weight_map": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("where", ["adapter header", "unet index"])
def test_a_header_nested_past_the_parsers_depth_is_no_traceback(write_shotlist, tmp_path: Path, published: Path,
                                                                where: str) -> None:
    """A safetensors header or a sharded UNet's index.json nested 100,000 deep (well inside the 100 MB a header may
    hold) raised RecursionError, which neither the header check nor the UNet's layer count caught: validate ended in
    a traceback. The adapter's header is now damaged, in the words of any other unreadable header; a UNet index that
    cannot be read is a damaged shard index (since 2026-12-02, model_weight_keys.py: diffusers would read it first)."""
    import json
    import shutil

    base, folder, weight = published / "base-sd15", published / "published", FACEID
    if where == "adapter header":
        folder = tmp_path / "hostile"
        folder.mkdir()
        header = _nested(100_000).encode("ascii")
        (folder / f"{weight}.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    else:
        base = tmp_path / "base-sd15"
        shutil.copytree(published / "base-sd15", base)
        (base / "unet" / "diffusion_pytorch_model.safetensors.index.json").write_text(_nested(100_000), "ascii")
        with pytest.raises(RecursionError):
            json.loads(_nested(100_000))
    shots = write_shotlist(SHOTS.replace("{MODEL}", _model("faceid", f"{weight}.safetensors", folder, published))
                           .replace(str(published / "base-sd15"), str(base)))
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exception is None or isinstance(validate.exception, SystemExit), validate.exception
    assert "Traceback" not in text and "RecursionError" not in text, text
    if where == "adapter header":
        assert validate.exit_code == 2 and "its header is not valid JSON" in text, text
    else:  # diffusers reads a UNet's index before its one file: the render would stop on it, so validate says so
        index = base / "unet" / "diffusion_pytorch_model.safetensors.index.json"
        assert validate.exit_code == 2 and f"its shard index '{index}' is damaged (it cannot be read as JSON" in text, \
            text


def test_a_base_model_saved_as_sharded_fp16_files_is_counted_too(write_shotlist, tmp_path: Path,
                                                                  published: Path) -> None:
    """A base model whose UNet diffusers saved with ``variant="fp16"`` in shards (its index is
    ``unet/diffusion_pytorch_model.safetensors.index.fp16.json``) got no attention-layer count at plan time, so an
    adapter cut after a whole layer passed validate (exit 0) and was refused only by the render. Counted now from that
    index, as from the unsharded files."""
    import shutil

    base = tmp_path / "base-sd15"
    shutil.copytree(published / "base-sd15", base, ignore=shutil.ignore_patterns("diffusion_pytorch_model*"))
    unet = build_tiny_pipeline("tiny-sd").unet
    unet.save_pretrained(base / "unet", variant="fp16", max_shard_size="100KB")
    assert (base / "unet" / "diffusion_pytorch_model.safetensors.index.fp16.json").is_file()
    assert len(list((base / "unet").glob("diffusion_pytorch_model.fp16-*.safetensors"))) > 1
    assert not [name for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                                  "diffusion_pytorch_model.safetensors.index.json") if (base / "unet" / name).exists()]
    file = _trimmed(published, tmp_path / "cut", FACEID,
                    lambda key: key.startswith("ip_adapter.") and int(key.split(".")[1]) >= 4)
    shots = write_shotlist(SHOTS.replace("{MODEL}", _model("faceid", file.name, file.parent, published))
                           .replace(str(published / "base-sd15"), str(base)))
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and f"'{file}' lacks 36 keys" in text, text
    assert "no keys at all for attention layers 4–7" in text, text


@pytest.mark.parametrize("layout", ["one file", "shards"])
def test_a_base_model_saved_as_pickles_is_counted_when_pickles_are_allowed(write_shotlist, tmp_path: Path,
                                                                           published: Path, layout: str) -> None:
    """A base model whose UNet diffusers saved only as pickles (``save_pretrained(safe_serialization=False)``:
    ``unet/diffusion_pytorch_model.bin``, or its ``.bin.index.json`` and shards), rendered with
    ``model.allow_pickle: true``, got no attention-layer count at plan time: an adapter cut after a whole layer passed
    validate (exit 0) and plan, and was refused only by the render. Its key names are read now as an allowed
    adapter pickle's are (weights-only, memory-mapped: no weight read), or from the shards' index."""
    import shutil

    base = tmp_path / "base-sd15"
    shutil.copytree(published / "base-sd15", base, ignore=shutil.ignore_patterns("diffusion_pytorch_model*"))
    unet = build_tiny_pipeline("tiny-sd").unet
    unet.save_pretrained(base / "unet", safe_serialization=False,
                         **({"max_shard_size": "100KB"} if layout == "shards" else {}))
    saved = sorted(path.name for path in (base / "unet").iterdir())
    assert not [name for name in saved if name.endswith(".safetensors") or "safetensors" in name], saved
    assert ("diffusion_pytorch_model.bin.index.json" in saved) == (layout == "shards"), saved
    file = _trimmed(published, tmp_path / "cut", FACEID,
                    lambda key: key.startswith("ip_adapter.") and int(key.split(".")[1]) >= 4)
    model = _model("faceid", file.name, file.parent, published).replace(str(published / "base-sd15"), str(base))
    shots = write_shotlist(SHOTS.replace("{MODEL}", model.replace("{preset", "{allow_pickle: true, preset", 1)))
    says = "it looks like a FaceID file cut short or trimmed: it has no keys at all for attention layers 4–7"
    validate = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(validate.output.split())
    assert validate.exit_code == 2 and f"'{file}' lacks 36 keys" in text and says in text, text
    plan = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
    assert plan.exit_code == 4 and says in " ".join(plan.output.split()), plan.output
    assert not _encoded()
