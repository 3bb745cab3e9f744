"""A base model's ``.safetensors`` weight file cut short (a copy interrupted) or with a damaged header is refused by
``plan`` (exit 4) from its header alone, naming the file, what is wrong and "copy it again", before any selfie is
encoded (idcli/weight_file_damage.py: safetensors' own ``safe_open`` check, no tensor read). Before, plan passed it
(a file it could not read was left to the render), and the render failed as it loaded the model, after the selfies
were encoded."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.engine.build import build_tiny_pipeline

SHOTS = """\
version: 1
project: cut
model: {{preset: sd15, id: "{model}"}}
defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}}
shots:
  - {{id: s1, prompt: "a wet street at night"}}
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD preset saved as a diffusers folder, and a copy with its UNet in shards."""
    root = tmp_path_factory.mktemp("cut-models")
    pipe = build_tiny_pipeline("tiny-sd")
    pipe.save_pretrained(root / "sd", safe_serialization=True)
    shutil.copytree(root / "sd", root / "shards")
    shutil.rmtree(root / "shards" / "unet")
    pipe.unet.save_pretrained(root / "shards" / "unet", safe_serialization=True, max_shard_size="100KB")
    return root


def _split(data: bytes) -> tuple[dict[str, dict[str, Any]], bytes]:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), data[8 + length:]


def _joined(header: dict[str, dict[str, Any]], tensors: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + tensors


def _retold(change: Callable[[dict[str, dict[str, Any]]], None]) -> Callable[[bytes], bytes]:
    """A damage that rewrites the header (its tensors in offset order, the first two named ``first``/``second``)."""
    def damage(data: bytes) -> bytes:
        header, tensors = _split(data)
        change(header)
        return _joined(header, tensors)
    return damage


def _in_order(header: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((entry for name, entry in header.items() if name != "__metadata__"),
                  key=lambda entry: entry["data_offsets"])


def _overlap(header: dict[str, dict[str, Any]]) -> None:
    """The second tensor's bytes moved onto the first's (its size kept)."""
    first, second = _in_order(header)[:2]
    start, end = second["data_offsets"]
    second["data_offsets"] = [first["data_offsets"][0], first["data_offsets"][0] + end - start]


def _wrong_shape(header: dict[str, dict[str, Any]]) -> None:
    entry = _in_order(header)[0]
    entry["shape"] = [*entry["shape"], 2]


def _past_end(header: dict[str, dict[str, Any]]) -> None:
    last = _in_order(header)[-1]
    start, end = last["data_offsets"]
    last["data_offsets"] = [start, end + 10**12]


DAMAGES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "cut mid-tensor": (lambda data: data[: len(data) * 2 // 3], "(it is cut short: its header places"),
    "cut in its header": (lambda data: data[:40], "its header's length is"),
    "header length past the file": (lambda data: (10**15).to_bytes(8, "little") + data[8:],
                                    "its header's length is 1,000,000,000,000,000 bytes"),
    "header not JSON": (lambda data: data[:8] + b"{" * (int.from_bytes(data[:8], "little")) +
                        data[8 + int.from_bytes(data[:8], "little"):], "its header is not JSON ("),
    "offsets past the end": (_retold(_past_end), "' ends at byte 1,000,00"),
    "offsets overlapping": (_retold(_overlap), "' overlaps the one before it or leaves a gap"),
    "shape not its bytes": (_retold(_wrong_shape), "needs 256 bytes, its data_offsets [0, 128] give 128"),
}


def _plan(write_shotlist, model: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["plan", str(write_shotlist(SHOTS.format(model=model)))])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_cut_or_damaged_unet_file_is_refused_by_plan(write_shotlist, saved: Path, tmp_path: Path,
                                                       damage: str) -> None:
    model = tmp_path / "model"
    shutil.copytree(saved / "sd", model)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    change, says = DAMAGES[damage]
    weights.write_bytes(change(weights.read_bytes()))
    code, said = _plan(write_shotlist, model)
    assert code == 4, said
    assert f"the weight file '{weights}' is damaged or cut short (" in said and says in said, said
    assert "To fix: copy it again" in said and "Traceback" not in said, said


def test_a_cut_shard_is_refused_by_plan_naming_the_shard(write_shotlist, saved: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(saved / "shards", model)
    index = json.loads((model / "unet" / "diffusion_pytorch_model.safetensors.index.json").read_text("utf-8"))
    shard = model / "unet" / max(index["weight_map"].values())
    shard.write_bytes(shard.read_bytes()[:-1])
    code, said = _plan(write_shotlist, model)
    assert code == 4, said
    assert f"the weight file '{shard}' is damaged or cut short (it is cut short: its header places" in said, said


def test_a_whole_folder_is_still_planned(write_shotlist, saved: Path) -> None:
    for layout in ("sd", "shards"):
        code, said = _plan(write_shotlist, saved / layout)
        assert code == 0, said


def _shard_without(model: Path, key: str) -> tuple[Path, Path]:
    """The UNet's shard holding ``key`` saved again without it, the index still naming it there: (index, shard)."""
    from safetensors.torch import load_file, save_file

    index = model / "unet" / "diffusion_pytorch_model.safetensors.index.json"
    shard = model / "unet" / json.loads(index.read_text("utf-8"))["weight_map"][key]
    state = load_file(shard)
    del state[key]
    save_file(state, shard, metadata={"format": "pt"})
    return index, shard


def test_an_index_naming_a_weight_its_shard_lacks_is_refused_by_plan_and_the_render(write_shotlist, saved: Path,
                                                                                    tmp_path: Path) -> None:
    """Before: plan said the index leaves the weight out (it names it), and the render loaded the UNet with that
    weight uninitialised (diffusers counts a sharded checkpoint's weights from its index): exit 0, a different image
    each run. Now both name the index, the weight and its shard, in the same words; the render's own load path (a
    library call, plan skipped) too."""
    from idcli.engine.build import load_pretrained_pipeline
    from idcli.errors import ModelUnavailableError
    from idcli.models import ModelIdentity

    model = tmp_path / "model"
    shutil.copytree(saved / "shards", model)
    index, shard = _shard_without(model, "conv_in.weight")
    words = (f"its shard index '{index}' names 1 of the weights the unet needs in shards that do not hold them "
             f"(such as 'conv_in.weight' in '{shard.name}'), which would load uninitialised")
    code, said = _plan(write_shotlist, model)
    assert code == 4, said
    assert words in said and "copy the model's shards again" in said, said
    with pytest.raises(ModelUnavailableError) as refused:
        load_pretrained_pipeline(ModelIdentity("sd15", "sd", "local", str(model), None, "test", "float32", False,
                                               False), None)
    assert words in " ".join(str(refused.value).split()), refused.value


@pytest.mark.parametrize("index_says", ["another shard", "nothing"])
def test_an_index_misplacing_or_leaving_out_a_weight_its_shards_hold_plans_and_loads_it(
        write_shotlist, saved: Path, tmp_path: Path, index_says: str) -> None:
    """No false refusal: both libraries read every shard the index names, so a weight the index places in the wrong
    one loads with its saved values; and diffusers counts a sharded checkpoint's weights from its index but loads
    every tensor the named shards hold, so a weight the index leaves out, held by one of them, loads too (as plan,
    which reads the shards' headers, says). Before, plan passed the second and the render refused it after the
    selfies were encoded, saying the weight files leave out 'conv_in.weight', which they hold."""
    import torch
    from safetensors.torch import load_file

    from idcli.engine.build import load_pretrained_pipeline
    from idcli.models import ModelIdentity

    model = tmp_path / "model"
    shutil.copytree(saved / "shards", model)
    index_path = model / "unet" / "diffusion_pytorch_model.safetensors.index.json"
    index = json.loads(index_path.read_text("utf-8"))
    if index_says == "another shard":
        held = index["weight_map"]["conv_in.weight"]
        index["weight_map"]["conv_in.weight"] = next(s for s in sorted(set(index["weight_map"].values()))
                                                     if s != held)
    else:
        held = index["weight_map"].pop("conv_in.weight")
        assert held in index["weight_map"].values()  # the shard is still named for its other weights
    index_path.write_text(json.dumps(index), "utf-8")
    code, said = _plan(write_shotlist, model)
    assert code == 0, said
    pipe = load_pretrained_pipeline(ModelIdentity("sd15", "sd", "local", str(model), None, "test", "float32", False,
                                                  False), None)
    assert torch.equal(pipe.unet.conv_in.weight, load_file(model / "unet" / held)["conv_in.weight"])


@pytest.mark.parametrize("copied", ["finishes", "goes on"])
def test_a_weight_file_still_being_copied_is_named_so(write_shotlist, saved: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, copied: str) -> None:
    """A copy in progress: safetensors refuses the file as cut, then the copy writes more before the words are made.
    Before, plan measured the grown file and said ``it holds 3,941,776 bytes of tensors, 0 more than its header
    places`` (a finished copy) or "cut short" with "copy it again" (a copy going on); now it says the file changed
    while it was read, from how many bytes to how many, a copy still in progress, and to let it finish."""
    import safetensors
    from safetensors import SafetensorError

    model = tmp_path / "model"
    shutil.copytree(saved / "sd", model)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 3])
    grown = whole if copied == "finishes" else whole[: len(whole) * 2 // 3]
    real = safetensors.safe_open

    def opened_as_the_copy_writes(path: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return real(path, *args, **kwargs)
        except SafetensorError:
            if Path(path) == weights:
                weights.write_bytes(grown)  # the copy writes on after safetensors read the file
            raise

    monkeypatch.setattr(safetensors, "safe_open", opened_as_the_copy_writes)
    code, said = _plan(write_shotlist, model)
    assert code == 4, said
    assert (f"the weight file '{weights}' changed while it was read, from {len(whole) // 3:,} to {len(grown):,} "
            "bytes: a copy still in progress?") in said, said
    assert "To fix: let the copy finish, then run again" in said and "more than its header" not in said, said


@pytest.mark.parametrize("file", ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors"])
def test_a_file_cut_after_plan_is_named_by_the_render_as_plan_names_it(write_shotlist, saved: Path, tmp_path: Path,
                                                                      file: str) -> None:
    """The render's own loading (a library call, a Ray worker: plan skipped, or a file cut after plan) names a cut
    file in plan's words. Before, a cut text encoder gave safetensors' ``Error while deserializing header: incomplete
    metadata, file not fully covered``, naming no file, and told to make the folder a complete diffusers model; a cut
    UNet, that it was "damaged, truncated or not a plain weight file" without what was wrong."""
    from idcli.engine.build import load_pretrained_pipeline
    from idcli.errors import ModelUnavailableError
    from idcli.models import ModelIdentity

    model = tmp_path / "model"
    shutil.copytree(saved / "sd", model)
    weights = model / file
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size * 2 // 3])
    code, planned = _plan(write_shotlist, model)
    assert code == 4, planned
    with pytest.raises(ModelUnavailableError) as refused:
        load_pretrained_pipeline(ModelIdentity("sd15", "sd", "local", str(model), None, "test", "float32", False,
                                               False), None)
    said = " ".join(str(refused.value).split())
    assert f"the weight file '{weights}' is damaged or cut short (it is cut short: its header places" in said, said
    assert said in planned and "To fix: copy it again from where it came" in said, said


def test_the_renders_refusal_of_a_text_encoder_shard_prints_no_transformers_report(
        saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The render's own loading (plan skipped: a library call, a Ray worker) refuses a text encoder whose index names
    a weight its shard lacks in idcli's words alone. Before, with transformers already imported (as every command
    line render has it, the shot list's tokenizer read first), transformers' ``CLIPTextModel LOAD REPORT`` table, in
    terminal colour codes, came first on stderr, after ``The following layers were not sharded: …`` (which every
    render printed)."""
    from safetensors.torch import load_file, save_file

    from idcli.engine.build import load_pretrained_pipeline
    from idcli.errors import ModelUnavailableError
    from idcli.models import ModelIdentity

    model = tmp_path / "model"
    shutil.copytree(saved / "sd", model)
    shutil.rmtree(model / "text_encoder")
    build_tiny_pipeline("tiny-sd").text_encoder.save_pretrained(model / "text_encoder", safe_serialization=True,
                                                                max_shard_size="50KB")
    index = model / "text_encoder" / "model.safetensors.index.json"
    key = "text_model.encoder.layers.0.layer_norm2.weight"
    weight_map = json.loads(index.read_text("utf-8"))["weight_map"]
    key = key if key in weight_map else key.removeprefix("text_model.")
    shard = model / "text_encoder" / weight_map[key]
    state = load_file(shard)
    del state[key]
    save_file(state, shard, metadata={"format": "pt"})
    # transformers at its own default, as a process that imported it before the render has it (tests run it at
    # error: conftest.py); what it would print to the terminal is what reaches its logger's handlers.
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    transformers_logger = logging.getLogger("transformers")
    level = transformers_logger.level
    heard: list[str] = []
    listener = logging.Handler()
    listener.emit = lambda record: heard.append(record.getMessage())  # type: ignore[method-assign]
    transformers_logger.setLevel(logging.WARNING)
    transformers_logger.addHandler(listener)
    try:
        with pytest.raises(ModelUnavailableError, match="names 1 of the weights the text_encoder needs in shards"):
            load_pretrained_pipeline(ModelIdentity("sd15", "sd", "local", str(model), None, "test", "float32",
                                                   False, False), None)
    finally:
        transformers_logger.removeHandler(listener)
        transformers_logger.setLevel(level)
    assert not [said for said in heard if "LOAD REPORT" in said or "were not sharded" in said], heard
