"""A base model whose UNet diffusers saved as sharded pickles (``save_pretrained(safe_serialization=False,
max_shard_size=…)``: ``unet/diffusion_pytorch_model.bin.index.json`` and its shards), rendered with
``model.allow_pickle: true``. validate and plan count its attention layers from the index (adapter_fit.py), and the
render loads it as it loads the same UNet saved as one pickle: the same image."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from idcli.cli import app
from idcli.engine.build import build_tiny_pipeline
from idcli.engine.faceid_layout import write_random_faceid_adapter

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: shards
model: {allow_pickle: true, preset: sd15, id: MODEL,
        adapter: {variant: faceid, id: ADAPTER, weight_name: a.safetensors}}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
"""


@pytest.fixture(scope="module")
def pickled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD1.5-shaped pipeline twice, its UNet as one pickle and as shards, and a FaceID adapter for it."""
    root = tmp_path_factory.mktemp("pickled-unet")
    pipe = build_tiny_pipeline("tiny-sd")
    for layout, shard in (("one", {}), ("shards", {"max_shard_size": "100KB"})):
        pipe.save_pretrained(root / layout, safe_serialization=True)
        shutil.rmtree(root / layout / "unet")
        pipe.unet.save_pretrained(root / layout / "unet", safe_serialization=False, **shard)
    write_random_faceid_adapter(pipe.unet, root / "adapter" / "a.safetensors", seed=3)
    return root


def _render(write_shotlist, tmp_path: Path, pickled: Path, layout: str) -> np.ndarray:
    text = SHOTS.replace("MODEL", str(pickled / layout)).replace("ADAPTER", str(pickled / "adapter"))
    shots = write_shotlist(text, f"{layout}.yaml")
    out = tmp_path / f"out-{layout}"
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out / "m1" / "m1_t1.png").convert("RGB"))


def test_a_unet_saved_as_sharded_pickles_renders_as_one_pickle_does(write_shotlist, tmp_path: Path,
                                                                    pickled: Path) -> None:
    """diffusers looks for a sharded UNet's index by its safetensors name whenever pickles are allowed
    (``use_safetensors=None``): the render failed with `Error no file named diffusion_pytorch_model.bin found in
    directory …/unet` and `the folder … is not a complete diffusers model`, after validate and plan passed it (exit 0).
    It now loads the shards (weights-only), and the image is the one-pickle UNet's."""
    shards = sorted(path.name for path in (pickled / "shards" / "unet").iterdir())
    assert "diffusion_pytorch_model.bin.index.json" in shards and not [n for n in shards if "safetensors" in n]
    assert np.array_equal(_render(write_shotlist, tmp_path, pickled, "shards"),
                          _render(write_shotlist, tmp_path, pickled, "one"))


@pytest.mark.parametrize(("index", "says"), [("{not json", "it cannot be read as JSON (Expecting property name"),
                                             ('{"weight_map": [1, 2]}', 'it has no "weight_map" naming a shard file'),
                                             ('{"weight_map": {"conv_in.weight": "diffusion_pytorch_model.bin"}}',
                                              'it has no "metadata" object'),
                                             ('{"metadata": [], "weight_map": {}}', 'it has no "metadata" object')])
def test_a_damaged_shard_index_is_named(write_shotlist, tmp_path: Path, pickled: Path, index: str, says: str) -> None:
    """A damaged shard index failed as every sharded pickle did (`no file named diffusion_pytorch_model.bin`). Read
    now, diffusers' own words would name no file (`Expecting property name enclosed in double quotes: line 1 column
    2`) or be a traceback (AttributeError, a ``weight_map`` that is no mapping; KeyError or TypeError, an index
    without the ``metadata`` object save_pretrained writes, as one written by hand): the render names the index and
    what is wrong with it (exit 4), and writes no image."""
    model = tmp_path / "model"
    shutil.copytree(pickled / "shards", model)
    (model / "unet" / "diffusion_pytorch_model.bin.index.json").write_text(index, "utf-8")
    text = SHOTS.replace("MODEL", str(model)).replace("ADAPTER", str(pickled / "adapter"))
    shots = write_shotlist(text)
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu"])
    output = " ".join(result.output.split())
    named = f"its shard index '{model / 'unet' / 'diffusion_pytorch_model.bin.index.json'}' is damaged ({says}"
    assert result.exit_code == 4 and named in output, output
    assert not list(tmp_path.rglob("*.png"))


def test_a_shard_index_leaving_out_weights_is_refused(write_shotlist, tmp_path: Path, pickled: Path) -> None:
    """An index whose weight_map names only some of the shards (cut short, or edited by hand) loaded what those hold
    and left the UNet's other weights at random values, which differ each run: a render succeeded with an image no
    model gives and no other run repeats, diffusers' "newly initialized" warning the only word. The render refuses
    it naming the index and how many weights it lacks (exit 4), and writes no image."""
    import json

    model = tmp_path / "model"
    shutil.copytree(pickled / "shards", model)
    index_path = model / "unet" / "diffusion_pytorch_model.bin.index.json"
    index = json.loads(index_path.read_text("utf-8"))
    first = min(index["weight_map"].values())
    index["weight_map"] = {key: shard for key, shard in index["weight_map"].items() if shard == first}
    index_path.write_text(json.dumps(index), "utf-8")
    text = SHOTS.replace("MODEL", str(model)).replace("ADAPTER", str(pickled / "adapter"))
    result = CliRunner().invoke(app, ["render", str(write_shotlist(text)), "--out", str(tmp_path / "out"),
                                      "--device", "cpu"])
    output = " ".join(result.output.split())
    assert result.exit_code == 4 and f"its shard index '{index_path}' leaves out " in output, output
    assert not list(tmp_path.rglob("*.png"))


def test_a_unet_saved_as_one_pickle_renders_without_diffusers_error_line(write_shotlist, tmp_path: Path,
                                                                         pickled: Path) -> None:
    """With pickles allowed diffusers first looks for the component's safetensors file and, not finding it, logs
    `An error occurred while trying to fetch …/unet: Error no file named diffusion_pytorch_model.safetensors …` at
    error level before loading the pickle as asked: a render that succeeded printed an error amid idcli's lines."""
    import logging

    from idcli import kept_engine

    class Records(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.said: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.getLogger("diffusers").getEffectiveLevel():  # what diffusers' handler prints
                self.said.append(record.getMessage())

    records = Records()
    logging.getLogger("diffusers").addHandler(records)  # every diffusers module's records reach it
    try:
        kept_engine.release()  # an engine an earlier test kept would load nothing
        _render(write_shotlist, tmp_path, pickled, "one")
    finally:
        logging.getLogger("diffusers").removeHandler(records)
    assert not [said for said in records.said if "An error occurred while trying to fetch" in said
                or "Defaulting to unsafe serialization" in said], records.said
