"""Model folders as users keep them (a tour of the adapters and models people bring): linked components,
their own pickled adapters, face-model folders holding two packs, model folders that need their own code."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from idcli.errors import ModelUnavailableError
from idcli.models import resolve_model
from idcli.shotlist import ModelSpec


def test_a_component_linked_from_a_shared_folder_is_keyed_by_its_files(tiny_engines, tmp_path: Path) -> None:
    """Fine-tunes that share a component keep it once and link it (`unet -> ../shared/unet`): the content hash
    skipped linked folders (Path.rglob does not enter them), so changing the linked weights kept every job key and
    a rerun re-rendered nothing. A linked component now counts as a copy of it would."""
    tiny = tiny_engines("tiny-sd").pipe
    copy = tmp_path / "copy"
    tiny.save_pretrained(copy, safe_serialization=True)
    shared = tmp_path / "shared"
    shared.mkdir()
    linked = tmp_path / "linked"
    shutil.copytree(copy, linked)
    shutil.move(linked / "unet", shared / "unet")
    (linked / "unet").symlink_to(shared / "unet", target_is_directory=True)
    # Links elsewhere are not followed: deeper down (as before), or a component linking to the folder or above it.
    (shared / "unet" / "everything").symlink_to("/", target_is_directory=True)
    (linked / "loop").symlink_to(linked, target_is_directory=True)
    (linked / "up").symlink_to(tmp_path, target_is_directory=True)
    key = resolve_model(ModelSpec(preset="sd15", id=str(copy)), tmp_path, "float32").content_hash
    assert resolve_model(ModelSpec(preset="sd15", id=str(linked)), tmp_path, "float32").content_hash == key
    weights = shared / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x80\x3f")  # one weight changed
    assert resolve_model(ModelSpec(preset="sd15", id=str(linked)), tmp_path, "float32").content_hash != key



def test_models_list_counts_a_linked_component_once_per_real_file(tmp_path: Path) -> None:
    """`models list` sized a pipeline folder with Path.rglob, which does not enter a linked folder: a folder whose
    `unet/` links to a shared copy showed a size without its unet. Components reached through links count, as the
    content hash walks them, and a file reached twice (two components linking one shared folder) counts once."""
    from idcli.model_folders import describe_folder

    shared = tmp_path / "shared" / "unet"
    shared.mkdir(parents=True)
    (shared / "diffusion_pytorch_model.safetensors").write_bytes(b"u" * 5000)
    (shared / "config.json").write_text("{}")
    folder = tmp_path / "fine-tune"
    (folder / "vae").mkdir(parents=True)
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (folder / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"v" * 700)
    (folder / "unet").symlink_to(shared, target_is_directory=True)
    (folder / "unet_ema").symlink_to(shared, target_is_directory=True)  # the same files again
    (folder / "up").symlink_to(tmp_path, target_is_directory=True)  # a component linking above: not entered
    [entry], whole = describe_folder(folder, "--models-dir")
    own = sum(len(p.read_bytes()) for p in (folder / "model_index.json", folder / "vae" / "diffusion_pytorch_model."
                                                                                       "safetensors"))
    assert whole and entry["size_bytes"] == own + 5000 + 2


def test_an_unreadable_folder_inside_a_model_folder_is_named_not_an_internal_error(
        tiny_engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder below a component the user cannot read (a copy made by another account, mode 700) escaped the
    content hash's walk as a bare PermissionError, exit 70 with "internal error"; Path.rglob, before the walk
    followed linked components, skipped it and keyed the model without it. It is now refused naming the folder.
    (Simulated: the tests run as root, who reads every folder.)"""
    copy = tmp_path / "copy"
    tiny_engines("tiny-sd").pipe.save_pretrained(copy, safe_serialization=True)
    locked = copy / "unet" / "extra"
    locked.mkdir()
    real_iterdir = Path.iterdir

    def iterdir(self: Path):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(ModelUnavailableError) as raised:
        resolve_model(ModelSpec(preset="sd15", id=str(copy)), tmp_path, "float32")
    assert str(locked) in str(raised.value)
    assert "cannot be read" in str(raised.value) and "Permission denied" in str(raised.value)

SHOTS = """\
version: 1
project: tour
model: {MODEL}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
"""


def published_pickle(unet, path: Path) -> Path:
    """A random FaceID checkpoint as h94 publishes it: ``torch.save({"image_proj": {...}, "ip_adapter": {...}})``."""
    import torch
    from safetensors.torch import load_file

    from idcli.engine.faceid_layout import write_random_faceid_adapter

    flat = load_file(write_random_faceid_adapter(unet, path.with_suffix(".flat"), seed=3))
    path.with_suffix(".flat").unlink()
    nested: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        group, rest = key.split(".", 1)
        nested[group][rest] = value
    torch.save(nested, path)
    return path


@pytest.fixture
def h94_folder(tmp_path: Path, tiny_engines) -> Path:
    """A base model folder and a clone of h94/IP-Adapter-FaceID holding the published pickle (as ComfyUI's
    models/ipadapter folder keeps it too)."""
    from idcli.engine.faceid_plus import write_random_image_encoder
    from idcli.presets import RANDOM_IMAGE_ENCODERS

    tiny_engines("tiny-sd").pipe.save_pretrained(tmp_path / "base", safe_serialization=True)
    folder = tmp_path / "IP-Adapter-FaceID"
    folder.mkdir()
    published_pickle(tiny_engines("tiny-sd").pipe.unet, folder / "ip-adapter-faceid_sd15.bin")
    write_random_image_encoder(tmp_path / "enc", RANDOM_IMAGE_ENCODERS["tiny-sd"], seed=3)
    return folder


@pytest.mark.parametrize("variant", ["faceid", "faceid-plusv2"])
def test_a_local_pickled_adapter_is_refused_at_plan_time_naming_allow_pickle(write_shotlist, h94_folder: Path,
                                                                             variant: str) -> None:
    """The render encoded the selfies and loaded the base model, then refused the .bin pointing at `idcli models
    fetch` (which converts only the hub's files into IDCLI_HOME); `idcli plan` said nothing. Now plan and render
    refuse it before any work, with the file and the one field that loads it."""
    from typer.testing import CliRunner

    from idcli.cli import app

    encoder = ", image_encoder: enc" if variant == "faceid-plusv2" else ""
    model = (f"{{preset: sd15, id: base, adapter: {{variant: {variant}, id: IP-Adapter-FaceID, "
             f"weight_name: ip-adapter-faceid_sd15.bin{encoder}}}}}")
    shots = write_shotlist(SHOTS.replace("{MODEL}", model))
    for command in (["plan", str(shots)], ["render", str(shots), "--out", str(shots.parent / "out"), "--device",
                                           "cpu"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 4, result.output
        text = " ".join(result.output.split())
        assert "ip-adapter-faceid_sd15.bin' is a pickle" in text and "model.allow_pickle: true" in text, text
        assert "models fetch" not in text and "encoding" not in text, text
    assert not list(shots.parent.rglob("*.png"))
    # `models list --models-dir` says the same of the file.
    listed = CliRunner().invoke(app, ["models", "list", "--models-dir", str(h94_folder)])
    assert "ip-adapter-faceid_sd15.bin (pickle: loads with model.allow_pickle: true" in listed.output, listed.output


def test_a_face_model_folder_holding_two_packs_is_refused_naming_both_recognisers(
        tmp_path: Path, synthetic_face_models: Path, selfies: Path) -> None:
    """antelopev2's files (InstantID's pack) copied into buffalo_l's folder: insightface loads every .onnx in name
    order and keeps the first recogniser, glintr100.onnx, over w600k_r50.onnx, which FaceID was trained with; the
    identity silently came from the other model. Refused, naming both; antelopev2 alone still loads."""
    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.identity.faces import FaceAnalyzer, resolve_face_models

    mixed = tmp_path / "buffalo_l"
    mixed.mkdir()
    shutil.copy(synthetic_face_models / "det_synthetic.onnx", mixed / "det_10g.onnx")
    shutil.copy(synthetic_face_models / "w600k_synthetic.onnx", mixed / "w600k_r50.onnx")
    shutil.copy(synthetic_face_models / "w600k_synthetic.onnx", mixed / "glintr100.onnx")
    with pytest.raises(ModelUnavailableError) as refused:
        FaceAnalyzer(resolve_face_models(mixed))
    assert ("two recognition models: glintr100.onnx (insightface takes the first by name) and w600k_r50.onnx"
            in str(refused.value)), refused.value
    assert "pass the one you mean with face_models;" in str(refused.value)  # as Python names it
    shutil.copy(synthetic_face_models / "det_synthetic.onnx", mixed / "scrfd_10g_bnkps.onnx")
    result = CliRunner().invoke(app, ["encode-identity", str(selfies / "mara_1.jpg"), "--name", "mara", "-o",
                                      str(tmp_path / "mara.idpack"), "--face-models", str(mixed)])
    assert result.exit_code == 4, result.output
    text = " ".join(result.output.split())
    assert "two detection models: det_10g.onnx" in text and "scrfd_10g_bnkps.onnx" in text, text
    assert "--face-models" in text and not (tmp_path / "mara.idpack").exists()
    # One pack per folder loads, whichever it is (antelopev2 alone: its names, one of each task).
    for name in ("w600k_r50.onnx", "det_10g.onnx"):
        (mixed / name).unlink()
    assert FaceAnalyzer(resolve_face_models(mixed)).app.models["recognition"].model_file.endswith("glintr100.onnx")


@pytest.mark.parametrize("config", ["logging.disable", "dictConfig"])
def test_two_packs_are_refused_whatever_the_users_logging_config(config, tmp_path: Path,
                                                                  synthetic_face_models: Path) -> None:
    """The refusal heard insightface's debug line through the logging module, so a script that quiets logging
    (``logging.disable(logging.INFO)``) or configures it after importing idcli (``dictConfig`` disables the loggers
    that exist, insightface's among them) loaded two packs without a word, glintr100.onnx taking the identity."""
    import logging

    from idcli.identity.faces import FaceAnalyzer, resolve_face_models

    mixed = tmp_path / "buffalo_l"
    mixed.mkdir()
    shutil.copy(synthetic_face_models / "det_synthetic.onnx", mixed / "det_10g.onnx")
    shutil.copy(synthetic_face_models / "w600k_synthetic.onnx", mixed / "w600k_r50.onnx")
    shutil.copy(synthetic_face_models / "w600k_synthetic.onnx", mixed / "glintr100.onnx")
    import insightface.app.face_analysis  # noqa: F401  (the logger exists before the user's config, as in a script)

    own = logging.getLogger("insightface.app.face_analysis")
    was_disabled = own.disabled
    if config == "logging.disable":
        logging.disable(logging.INFO)
    else:  # what logging.config.dictConfig/fileConfig do to every logger that exists (disable_existing_loggers)
        own.disabled = True
    try:
        with pytest.raises(ModelUnavailableError, match=r"two recognition models: glintr100\.onnx"):
            FaceAnalyzer(resolve_face_models(mixed))
    finally:
        logging.disable(logging.NOTSET)
        own.disabled = was_disabled


def _with_model_index(folder: Path, **entries) -> None:
    import json

    index = json.loads((folder / "model_index.json").read_text("utf-8"))
    index.update(entries)
    (folder / "model_index.json").write_text(json.dumps(index), "utf-8")


def test_a_model_folder_naming_its_own_code_is_refused_at_plan_time(tiny_engines, tmp_path: Path) -> None:
    """A folder whose model_index.json names code shipped with it (a custom UNet class, a custom pipeline) loads only
    with diffusers' trust_remote_code, which idcli never passes: the render loaded the other components, then said
    "the folder is not a complete diffusers model". Named at plan time, and never run."""
    from idcli.engine.build import load_pretrained_pipeline
    from idcli.models import ModelIdentity

    tiny = tiny_engines("tiny-sd").pipe
    component, pipeline, library = tmp_path / "component", tmp_path / "pipeline", tmp_path / "library"
    for folder in (component, pipeline, library):
        tiny.save_pretrained(folder, safe_serialization=True)
    _with_model_index(component, unet=["my_unet", "MyUNet"])
    (component / "unet" / "my_unet.py").write_text("raise SystemExit('custom code ran')\n", "utf-8")
    _with_model_index(pipeline, _class_name=["pipeline_mine", "MyPipeline"])
    (pipeline / "pipeline_mine.py").write_text("raise SystemExit('custom code ran')\n", "utf-8")
    for folder, named in ((component, "for unet (my_unet.py, MyUNet)"), (pipeline, "for pipeline (pipeline_mine.py")):
        with pytest.raises(ModelUnavailableError, match="trust_remote_code") as refused:
            resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32")
        assert f"names custom code {named}" in str(refused.value), refused.value
        assert "not a complete" not in str(refused.value)
    # As the render meets it (a hub model is not read before loading): the same words, not "incomplete folder".
    _with_model_index(library, unet=["mystery_lib", "UNet"])
    for folder in (component, library):
        identity = ModelIdentity("sd15", "sd", "local", str(folder), None, "test", "float32", False)
        with pytest.raises(ModelUnavailableError, match=r"names custom code.*trust_remote_code") as refused:
            load_pretrained_pipeline(identity, None)
        assert "not a complete" not in str(refused.value)


@pytest.mark.parametrize("model_id", [None, "someone/my-sd15"])
def test_a_hub_model_not_cached_offline_names_commands_that_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  model_id: str | None) -> None:
    """HF_HUB_OFFLINE=1 and nothing cached: the advice named `huggingface-cli download`, which huggingface_hub 1.x
    no longer installs, never idcli's own fetch, and repeated diffusers' "the root cause in the stacktrace above.."
    though no stacktrace is printed."""
    from idcli.engine.build import load_pretrained_pipeline

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    identity = resolve_model(ModelSpec(preset="sd15", id=model_id), tmp_path, "float32")
    with pytest.raises(ModelUnavailableError) as refused:
        load_pretrained_pipeline(identity, None)
    text = str(refused.value)
    assert f"`hf download {identity.id}`" in text and "huggingface-cli" not in text, text
    assert ("`idcli models fetch sd15`" in text) == (model_id is None), text
    assert "stacktrace" not in text and ".." not in text, text
    assert shutil.which("hf", path=str(Path(sys.executable).parent)), "the named command exists"


def test_comfyuis_clip_vision_file_as_the_image_encoder_says_how_to_make_the_folder(write_shotlist, tmp_path: Path
                                                                                     ) -> None:
    """A ComfyUI user names models/clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors: the error asked for a
    folder with config.json and model.safetensors, which they do not have; that file is h94's model.safetensors
    renamed, so the error says which config goes beside it."""
    from typer.testing import CliRunner

    from idcli.cli import app

    clip_vision = tmp_path / "clip_vision"
    clip_vision.mkdir()
    (clip_vision / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors").write_bytes(b"weights")
    shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, adapter: {variant: faceid-plusv2, image_encoder: "
                                                    "clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors}}"))
    result = CliRunner().invoke(app, ["validate", str(shots)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "shots.yaml:3:" in text, text
    assert "as model.safetensors beside that folder's config.json" in text and "h94/IP-Adapter" in text, text


def test_a_render_from_folders_laid_out_as_users_keep_them(write_shotlist, h94_folder: Path, tmp_path: Path,
                                                           synthetic_face_models: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """What held up on the tour, kept: a base model under a path with spaces and non-ASCII letters reached through
    a link, h94's published pickle allowed (weights-only), and buffalo_l's two files where insightface keeps them
    (~/.insightface/models/buffalo_l, the real presets' default)."""
    import json

    from typer.testing import CliRunner

    from idcli.cli import app

    deep = tmp_path / "my models" / "Ünïcode 模型"
    deep.mkdir(parents=True)
    shutil.move(tmp_path / "base", deep / "sd15")
    (tmp_path / "sd15-link").symlink_to(deep / "sd15", target_is_directory=True)
    buffalo = tmp_path / "home" / ".insightface" / "models" / "buffalo_l"
    buffalo.mkdir(parents=True)
    shutil.copy(synthetic_face_models / "det_synthetic.onnx", buffalo / "det_10g.onnx")
    shutil.copy(synthetic_face_models / "w600k_synthetic.onnx", buffalo / "w600k_r50.onnx")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IDCLI_FACE_MODELS")
    shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, id: sd15-link, allow_pickle: true, adapter: "
                                         "{variant: faceid, id: IP-Adapter-FaceID, weight_name: "
                                         "ip-adapter-faceid_sd15.bin}}"))
    out = tmp_path / "renders out"
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((out / "m1" / "m1_t1.json").read_text("utf-8"))
    text = json.dumps(sidecar, ensure_ascii=False)
    assert "ip-adapter-faceid_sd15.bin" in text and '"det_10g.onnx"' in text and '"w600k_r50.onnx"' in text
    assert str(deep / "sd15") in text  # the model as resolved through the link


@pytest.mark.parametrize(("source", "weight", "fetch"), [
    ("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sd15.bin", "`idcli models fetch sd15 --variant faceid`"),
    ("h94/IP-Adapter-FaceID", "ip-adapter-faceid-plusv2_sdxl.bin", "`idcli models fetch sdxl`"),
    ("someone/faceid", "ip-adapter-faceid_sd15.safetensors", None)])
def test_a_hub_adapter_not_cached_offline_says_so_not_that_the_repository_lacks_it(
        tiny_engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, weight: str,
        fetch: str | None) -> None:
    """HF_HUB_OFFLINE=1 and the adapter not in the cache: the error said "h94/IP-Adapter-FaceID does not appear to
    have a file named ip-adapter-faceid_sd15.bin" (it does) and gave no way forward."""
    import copy

    from idcli.engine.faceid_loading import load_faceid_adapter

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    pipe = copy.deepcopy(tiny_engines("tiny-sd").pipe)
    with pytest.raises(ModelUnavailableError) as refused:
        load_faceid_adapter(pipe, source, weight, allow_pickle=True)
    text = str(refused.value)
    assert "does not appear to have" not in text, text
    assert f"'{weight}' from '{source}'" in text and "not in the Hugging Face cache" in text, text
    assert "HF_HUB_OFFLINE" in text and f"`hf download {source} {weight}`" in text, text
    assert (fetch in text) if fetch else "idcli models fetch" not in text, text
    # Without allow_pickle a hub pickle is refused first: `idcli models fetch` is named only where it converts it.
    if weight.endswith(".bin"):
        assert fetch is not None  # every pickle case above names the command that converts it
        with pytest.raises(ModelUnavailableError) as refused:
            load_faceid_adapter(pipe, source, weight)
        assert fetch in str(refused.value) and "model.allow_pickle: true" in str(refused.value), refused.value
        with pytest.raises(ModelUnavailableError) as refused:
            load_faceid_adapter(pipe, "someone/faceid", weight)
        assert "models fetch" not in str(refused.value) and ".safetensors copy" in str(refused.value), refused.value


@pytest.mark.parametrize(("tiny", "preset"), [("tiny-sd", "sd15"), ("tiny-sdxl", "sdxl")])
def test_a_folder_without_the_feature_extractor_idcli_never_uses_loads(tiny_engines, tmp_path: Path, tiny: str,
                                                                       preset: str) -> None:
    """SD1.5's model_index.json names a safety checker and a feature extractor; people drop both folders (idcli never
    runs the checker, `idcli models fetch` skips it). The feature extractor was still loaded, so such a copy failed
    with "Can't load image processor ... preprocessor_config.json" and "the folder is not a complete diffusers
    model". It is not loaded: the image is the one the tiny pipeline gives."""
    import numpy as np
    from test_engine import requests

    from idcli.engine import Engine
    from idcli.runtime import Runtime

    engine_of_tiny = tiny_engines(tiny)
    folder = tmp_path / "trimmed"
    engine_of_tiny.pipe.save_pretrained(folder, safe_serialization=True)
    _with_model_index(folder, feature_extractor=["transformers", "CLIPImageProcessor"],
                      **({"safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]} if preset == "sd15"
                         else {}))
    assert not (folder / "feature_extractor").exists() and not (folder / "safety_checker").exists()
    engine = Engine(resolve_model(ModelSpec(preset=preset, id=str(folder)), tmp_path, "float32"),
                    Runtime("cpu", "float32"))
    request = requests()[0]
    assert np.array_equal(engine.render([request])[0].image, engine_of_tiny.render([request])[0].image)


def test_a_pickle_renamed_safetensors_is_named_as_such_not_as_damaged(h94_folder: Path) -> None:
    """Renaming ip-adapter-faceid_sd15.bin to .safetensors (taken for a conversion) was reported as a damaged
    file to download again."""
    from idcli.engine.faceid_loading import read_faceid_checkpoint

    renamed = h94_folder / "ip-adapter-faceid_sd15.safetensors"
    shutil.copy(h94_folder / "ip-adapter-faceid_sd15.bin", renamed)
    with pytest.raises(ModelUnavailableError) as refused:
        read_faceid_checkpoint(renamed)
    text = str(refused.value)
    assert "is a pickle (torch.save) named .safetensors" in text and "model.allow_pickle: true" in text, text
    assert "download it again" not in text
    renamed.write_bytes(renamed.read_bytes()[:100])  # a cut pickle is still a pickle by its start
    with pytest.raises(ModelUnavailableError, match="is a pickle"):
        read_faceid_checkpoint(renamed)
    renamed.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")  # damaged safetensors: as before
    with pytest.raises(ModelUnavailableError, match="download it again"):
        read_faceid_checkpoint(renamed)


def test_the_vit_biggg_encoder_given_for_plusv2_is_refused_before_any_job(write_shotlist, tiny_engines,
                                                                         tmp_path: Path) -> None:
    """h94/IP-Adapter holds models/image_encoder (ViT-H) and sdxl_models/image_encoder (ViT-bigG); an SDXL user picks
    the second for the SDXL Plus v2 file, trained with ViT-H. Every job failed on its own (exit 1, "CLIP features
    [1, 257, W], the adapter reads ..."); the render now stops before any (exit 4) saying which encoder to use."""
    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.engine.faceid_plus import write_random_image_encoder, write_random_plusv2_adapter
    from idcli.presets import RANDOM_IMAGE_ENCODERS

    tiny = tiny_engines("tiny-sd").pipe
    tiny.save_pretrained(tmp_path / "base", safe_serialization=True)
    vit_h = RANDOM_IMAGE_ENCODERS["tiny-sd"]
    write_random_plusv2_adapter(tiny.unet, tmp_path / "IP-Adapter-FaceID" / "plusv2.safetensors", vit_h["hidden_size"])
    repo = tmp_path / "IP-Adapter"
    write_random_image_encoder(repo / "models" / "image_encoder", vit_h, seed=3)
    wider = {**vit_h, "hidden_size": vit_h["hidden_size"] + 16, "intermediate_size": 2 * (vit_h["hidden_size"] + 16)}
    write_random_image_encoder(repo / "sdxl_models" / "image_encoder", wider, seed=4)
    model = ("{preset: sd15, id: base, adapter: {variant: faceid-plusv2, id: IP-Adapter-FaceID, weight_name: "
             "plusv2.safetensors, image_encoder: IP-Adapter, image_encoder_subfolder: SUB}}")
    # The clone given as it is, without the subfolder: the error names the folder inside it.
    clone = write_shotlist(SHOTS.replace("{MODEL}", model.replace(", image_encoder_subfolder: SUB", "")), "clone.yaml")
    result = CliRunner().invoke(app, ["plan", str(clone)])
    assert result.exit_code == 4 and "set model.adapter.image_encoder_subfolder: models/image_encoder" in " ".join(
        result.output.split()), result.output
    shots = write_shotlist(SHOTS.replace("{MODEL}", model.replace("SUB", "sdxl_models/image_encoder")))
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 4, result.output
    text = " ".join(result.output.split())
    assert f"gives features {wider['hidden_size']} wide" in text and f"reads {vit_h['hidden_size']}" in text, text
    assert "image_encoder_subfolder: models/image_encoder" in text and "failed" not in text, text
    shots.write_text(shots.read_text("utf-8").replace("sdxl_models/image_encoder", "models/image_encoder"), "utf-8")
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_faceid_portrait_is_refused_naming_what_it_is(tiny_engines, tmp_path: Path) -> None:
    """ip-adapter-faceid-portrait_sd15.bin has FaceID's keys with 16 tokens per face and no LoRA; diffusers loads it
    as a 16-token FaceID, so it rendered from one face without a word. Refused at load, naming it."""
    import copy

    import torch

    from idcli.engine.faceid_layout import faceid_adapter_shapes
    from idcli.engine.faceid_loading import load_faceid_adapter

    pipe = copy.deepcopy(tiny_engines("tiny-sd").pipe)
    cad = int(pipe.unet.config.cross_attention_dim)
    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, shape in faceid_adapter_shapes(pipe.unet).items():
        if key.startswith("image_proj.proj.2."):
            shape = (16 * cad, *shape[1:])
        group, rest = key.split(".", 1)
        nested[group][rest] = torch.randn(shape) * 0.02
    torch.save(nested, tmp_path / "ip-adapter-faceid-portrait_sd15.bin")
    with pytest.raises(ModelUnavailableError, match=r"16 identity tokens per face, not FaceID's 4.*FaceID-Portrait"):
        load_faceid_adapter(pipe, str(tmp_path), "ip-adapter-faceid-portrait_sd15.bin", allow_pickle=True)


def _tokenizer_files(folder: Path, files: str) -> None:
    """``folder``'s tokenizer files replaced by ``files`` of the tiny tokenizer: the hub's SD1.5 layout
    (vocab.json, merges.txt) and transformers 5's (tokenizer.json), each beside tokenizer_config.json."""
    import json

    from idcli.engine.tokenizer import build_tiny_tokenizer, tiny_vocab_and_merges

    saved = folder.with_name(folder.name + "-saved")
    build_tiny_tokenizer().save_pretrained(saved)
    vocab, merges = tiny_vocab_and_merges()
    written = {"tokenizer.json": (saved / "tokenizer.json").read_text("utf-8"),
               "tokenizer_config.json": (saved / "tokenizer_config.json").read_text("utf-8"),
               "vocab.json": json.dumps(vocab),
               "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)}
    shutil.rmtree(saved)
    for file in folder.iterdir():
        file.unlink()
    for name in files.split():
        (folder / name).write_text(written[name], "utf-8")


@pytest.mark.parametrize(("tiny", "preset", "part"), [("tiny-sd", "sd15", "tokenizer"),
                                                      ("tiny-sdxl", "sdxl", "tokenizer_2")])
def test_a_tokenizer_folder_without_its_files_is_refused_not_rendered_with_an_empty_tokenizer(
        tiny_engines, tmp_path: Path, tiny: str, preset: str, part: str) -> None:
    """A copy whose tokenizer/ lost its files: transformers 5 builds an empty CLIPTokenizer instead of raising (it
    knows only its special tokens), so the folder was keyed and rendered, every prompt one unknown token per word:
    images that mean nothing, and no word said. Without tokenizer_config.json too, the render stopped on an internal
    OverflowError (no window size). The layout check names the folder and what is missing; the loader refuses such
    a tokenizer, for a hub snapshot the check does not read."""
    from idcli.engine.build import load_pretrained_pipeline
    from idcli.models import ModelIdentity

    folder = tmp_path / "copy"
    tiny_engines(tiny).pipe.save_pretrained(folder, safe_serialization=True)
    spec = ModelSpec(preset=preset, id=str(folder))
    for kept, missing in (("tokenizer_config.json", "tokenizer.json (or vocab.json and merges.txt)"),
                          ("vocab.json tokenizer_config.json", "merges.txt"),
                          ("tokenizer.json", "tokenizer_config.json"), ("", "tokenizer.json (or vocab.json and")):
        _tokenizer_files(folder / part, kept)
        for hash_contents in (True, False):  # plan and render; validate
            with pytest.raises(ModelUnavailableError) as refused:
                resolve_model(spec, tmp_path, "float32", hash_contents=hash_contents)
            assert f"'{folder}' is incomplete: its {part}/ lacks {missing}" in str(refused.value), refused.value
        if kept == "tokenizer_config.json" or kept == "tokenizer.json":
            identity = ModelIdentity(preset, "sd" if preset == "sd15" else "sdxl", "local", str(folder), None,
                                     "test", "float32", False)
            with pytest.raises(ModelUnavailableError) as refused:
                load_pretrained_pipeline(identity, None)
            assert f"its {part} was built without its files" in str(refused.value), refused.value
    for layout in ("vocab.json merges.txt tokenizer_config.json", "tokenizer.json tokenizer_config.json"):
        _tokenizer_files(folder / part, layout)
        identity = resolve_model(spec, tmp_path, "float32")
        assert len(getattr(load_pretrained_pipeline(identity, None), part)) == len(tiny_engines(tiny).pipe.tokenizer)


@pytest.mark.parametrize(("kept", "missing"), [("vocab.json", "merges.txt"), ("merges.txt", "vocab.json")])
def test_a_hub_snapshot_with_half_a_tokenizer_names_the_missing_file(tiny_engines, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch, kept: str,
                                                                     missing: str) -> None:
    """A partial download (vocab.json without merges.txt): tokenizers' "`vocab` and `merges` must be both be from
    memory or both filenames" was passed on as the reason, saying neither which file nor what to do. A hub snapshot
    is not read before loading (a local folder's layout is checked at plan time): the loader names it."""
    from test_validate_models import add_to_cache

    from idcli.engine.build import load_pretrained_pipeline

    cache = tmp_path / "hub"
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    saved = tmp_path / "saved"
    tiny_engines("tiny-sd").pipe.save_pretrained(saved, safe_serialization=True)
    snapshot = add_to_cache(cache, "someone/my-sd15", {str(p.relative_to(saved)): p.read_bytes()
                                                       for p in saved.rglob("*") if p.is_file()})
    _tokenizer_files(snapshot / "tokenizer", f"{kept} tokenizer_config.json")
    identity = resolve_model(ModelSpec(preset="sd15", id="someone/my-sd15"), tmp_path, "float32")
    with pytest.raises(ModelUnavailableError) as refused:
        load_pretrained_pipeline(identity, None)
    text = str(refused.value)
    assert (f"cannot load model 'someone/my-sd15' for preset 'sd15': its cached snapshot's tokenizer/ has {kept} but "
            f"no {missing} (a partial download)") in text, text
    assert "`hf download someone/my-sd15`" in text and "both filenames" not in text, text
    assert refused.value.exit_code == 4


def test_idcli_plan_refuses_a_model_folder_whose_tokenizer_lost_its_files(write_shotlist, tiny_engines,
                                                                         tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    tiny_engines("tiny-sd").pipe.save_pretrained(tmp_path / "base", safe_serialization=True)
    (tmp_path / "base" / "tokenizer" / "tokenizer.json").unlink()
    shots = write_shotlist("""\
version: 1
project: tour
model: {preset: sd15, id: base}
shots:
  - {id: harbour, prompt: "an empty harbour at dawn"}
""")
    for command in ("plan", "validate"):
        result = CliRunner().invoke(app, [command, str(shots)])
        text = " ".join(result.output.split())
        assert result.exit_code == (4 if command == "plan" else 2), result.output
        assert "is incomplete: its tokenizer/ lacks tokenizer.json (or vocab.json and merges.txt)" in text, text


def _wrong_adapter_file(kind: str, folder: Path, unet) -> tuple[str, str, str]:
    """An adapter file of the wrong kind as users end up with one in ComfyUI's models/ipadapter: (the variant the
    shot list names, the file name, what the refusal says)."""
    from safetensors.torch import save_file

    from idcli.engine.faceid_layout import write_random_faceid_adapter
    from idcli.engine.faceid_plus import write_random_plusv2_adapter
    from idcli.presets import RANDOM_IMAGE_ENCODERS

    faceid, plus = "ip-adapter-faceid_sd15.safetensors", "ip-adapter-faceid-plusv2_sd15.safetensors"
    if kind == "plus v2 named as faceid":
        write_random_plusv2_adapter(unet, folder / plus, RANDOM_IMAGE_ENCODERS["tiny-sd"]["hidden_size"])
        return "faceid", plus, "holds IP-Adapter FaceID-Plus (a perceiver resampler over CLIP image features; to " \
                               "use it set model.adapter.variant: faceid-plusv2)"
    if kind == "faceid named as plus v2":
        write_random_faceid_adapter(unet, folder / faceid)
        return "faceid-plusv2", faceid, "holds IP-Adapter FaceID (an MLP over the ArcFace embedding, no CLIP " \
                                        "resampler), but model.adapter.variant is faceid-plusv2"
    if kind == "the lora alone":
        import torch

        save_file({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight":
                   torch.zeros(4, 32)}, folder / "ip-adapter-faceid_sd15_lora.safetensors")
        return "faceid", "ip-adapter-faceid_sd15_lora.safetensors", "holds only a LoRA"
    if kind == "faceid-portrait":
        from safetensors.torch import load_file

        flat = load_file(write_random_faceid_adapter(unet, folder / "flat.safetensors"))
        (folder / "flat.safetensors").unlink()
        cad = int(unet.config.cross_attention_dim)
        for key in ("image_proj.proj.2.weight", "image_proj.proj.2.bias"):
            flat[key] = flat[key].repeat(4, *[1] * (flat[key].ndim - 1))  # 16 tokens of cad, not 4
        assert flat["image_proj.proj.2.weight"].shape[0] == 16 * cad
        save_file(flat, folder / "ip-adapter-faceid-portrait_sd15.safetensors")
        return "faceid", "ip-adapter-faceid-portrait_sd15.safetensors", "holds 16 identity tokens per face"
    assert kind == "truncated"
    whole = write_random_faceid_adapter(unet, folder / faceid).read_bytes()
    (folder / faceid).write_bytes(whole[:len(whole) // 2])  # a download cut half-way
    return "faceid", faceid, "the file is damaged or truncated"


def _refused_by_validate_and_plan(shots: Path, adapter_file: Path, says: str) -> None:
    """validate refuses the shot list (exit 2) and plan (exit 4), each naming the adapter file and what it holds."""
    from typer.testing import CliRunner

    from idcli.cli import app

    for command, code in (("validate", 2), ("plan", 4)):
        result = CliRunner().invoke(app, [command, str(shots)])
        text = " ".join(result.output.split())
        assert result.exit_code == code, result.output
        assert f"{adapter_file}'" in text and says in text, text
        assert "Traceback" not in text, text


@pytest.mark.parametrize("kind", ["plus v2 named as faceid", "faceid named as plus v2", "the lora alone",
                                  "faceid-portrait", "truncated"])
def test_an_adapter_file_of_the_wrong_kind_is_refused_by_plan_and_validate(write_shotlist, h94_folder: Path,
                                                                          tiny_engines, kind: str) -> None:
    """A local adapter file of the wrong kind — a Plus v2 file named as FaceID, the reverse, the LoRA h94 publishes
    alone, a cut download — passed `validate` and `plan` and was refused only by the render, after it had loaded
    the base model (on a farm, by every worker). Its header (a few kilobytes; no weight is read) tells each apart:
    plan refuses it (exit 4) and validate names it at model.adapter (exit 2), in the render's words."""
    from typer.testing import CliRunner

    from idcli.cli import app

    variant, weight, says = _wrong_adapter_file(kind, h94_folder, tiny_engines("tiny-sd").pipe.unet)
    encoder = ", image_encoder: enc" if variant == "faceid-plusv2" else ""
    shots = write_shotlist(SHOTS.replace("{MODEL}", f"{{preset: sd15, id: base, adapter: {{variant: {variant}, "
                                                    f"id: IP-Adapter-FaceID, weight_name: {weight}{encoder}}}}}"))
    _refused_by_validate_and_plan(shots, h94_folder / weight, says)
    assert "shots.yaml:3:" in " ".join(CliRunner().invoke(app, ["validate", str(shots)]).output.split())


def test_plan_offline_without_the_image_encoder_says_it_is_not_cached_and_which_fetch(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real preset's default (FaceID-Plus v2) planned offline with nothing fetched: the first thing plan needs is the
    CLIP image encoder, and its refusal said transformers' "We couldn't connect to 'https://huggingface.co'" (there was
    no connection to try: HF_HUB_OFFLINE=1) and `idcli models fetch PRESET`, where `validate` names the preset and the
    cache. plan (and so render) now says it as validate does."""
    from typer.testing import CliRunner

    from idcli.cli import app

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    # As with HF_HUB_OFFLINE=1 set before the start (huggingface_hub reads it once, when first imported: conftest's
    # setenv comes too late for a worker that imported it earlier).
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15}"))
    result = CliRunner().invoke(app, ["plan", str(shots)])
    text = " ".join(result.output.split())
    assert result.exit_code == 4, result.output
    assert "the CLIP image encoder 'h94/IP-Adapter' (models/image_encoder)" in text, text
    assert f"is not in the Hugging Face cache ({tmp_path / 'empty-cache'}), and HF_HUB_OFFLINE=1 forbids" in text, text
    assert "`idcli models fetch sd15`" in text and "PRESET" not in text and "couldn't connect" not in text, text
    # An encoder of the user's own on the hub: `models fetch` does not get it; `hf download` does.
    shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, adapter: {variant: faceid-plusv2, image_encoder: "
                                                    "someone/clip-vit-h, image_encoder_subfolder: vision}}"))
    text = " ".join(CliRunner().invoke(app, ["plan", str(shots)]).output.split())
    assert "the CLIP image encoder 'someone/clip-vit-h' (vision) that FaceID-Plus v2 reads face crops with is not in " \
        "the Hugging Face cache" in text, text
    assert "`hf download someone/clip-vit-h --include 'vision/*'`" in text and "models fetch" not in text, text


def _narrow_recogniser(synthetic_face_models: Path, target: Path, width: int, named: bool) -> None:
    """The synthetic ArcFace with its embedding cut to ``width`` values: a recogniser insightface routes as ArcFace
    (a square input of 112) whose embedding is not FaceID's 512 (a MobileFaceNet-style 128 or 256). ``named``: the
    file states the width as a named dimension, not a number."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(synthetic_face_models / "w600k_synthetic.onnx"))
    out = model.graph.output[0]
    batch = out.type.tensor_type.shape.dim[0]
    model.graph.initializer.extend(helper.make_tensor(name, TensorProto.INT64, [1], [value])
                                   for name, value in (("cut_start", 0), ("cut_end", width), ("cut_axis", 1)))
    model.graph.node.append(helper.make_node("Slice", [out.name, "cut_start", "cut_end", "cut_axis"], ["cut"]))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(
        "cut", TensorProto.FLOAT, [batch.dim_param or batch.dim_value, "width" if named else width]))
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


@pytest.mark.parametrize("named", [False, True])
def test_a_recogniser_whose_embedding_is_not_512_values_is_refused_naming_it(
        tmp_path: Path, synthetic_face_models: Path, selfies: Path, named: bool) -> None:
    """A face-model folder whose recogniser gives 256 values (insightface takes any square-input model of 112 px or
    more for ArcFace): encode-identity wrote the pack, then refused it as "identity pack is incomplete (missing a
    512-value embedding)", and a render failed every shot of the character the same way, blaming a pack in the
    identity cache. The folder is refused when it loads, naming the recogniser and the 512 FaceID reads; no pack."""
    from typer.testing import CliRunner

    from idcli.cli import app

    folder = tmp_path / "my-pack"
    folder.mkdir()
    shutil.copy(synthetic_face_models / "det_synthetic.onnx", folder / "det_10g.onnx")
    _narrow_recogniser(synthetic_face_models, folder / "w600k_r50.onnx", 256, named)
    result = CliRunner().invoke(app, ["encode-identity", str(selfies / "mara_1.jpg"), "--name", "mara", "-o",
                                      str(tmp_path / "mara.idpack"), "--face-models", str(folder)])
    text = " ".join(result.output.split())
    assert result.exit_code == 4, result.output
    assert f"face models in {folder}: the recogniser w600k_r50.onnx gives 256-value embeddings" in text, text
    assert "512" in text and "incomplete" not in text and "Traceback" not in text, text
    assert not (tmp_path / "mara.idpack").exists()


def test_models_list_says_which_adapter_each_file_is_from_its_header(h94_folder: Path, tiny_engines) -> None:
    """`idcli models list --models-dir` called every adapter file "IP-Adapter weights": a FaceID file, a Plus v2 one
    named for FaceID, the LoRA alone under an adapter's name, FaceID-Portrait and a cut download all read alike. Each
    is now told from its safetensors header (no weight read); a pickle, whose keys would mean unpickling it, is not."""
    from idcli.model_folders import describe_folder

    unet = tiny_engines("tiny-sd").pipe.unet
    said = {}
    for kind in ("plus v2 named as faceid", "faceid named as plus v2", "the lora alone", "faceid-portrait",
                 "truncated"):
        folder = h94_folder.parent / kind.replace(" ", "-")
        folder.mkdir()
        _wrong_adapter_file(kind, folder, unet)
        [entry], _whole = describe_folder(folder, "--models-dir")
        assert entry["kind"] in ("IP-Adapter weights", "FaceID LoRA"), entry  # the JSON field keeps its values
        said[kind] = entry["detail"]
    assert said["plus v2 named as faceid"].startswith("FaceID-Plus (v1 and v2 alike): model.adapter.variant: "
                                                      "faceid-plusv2"), said
    assert said["faceid named as plus v2"].startswith("FaceID: model.adapter.variant: faceid"), said
    assert said["the lora alone"].startswith("the LoRA alone"), said
    assert said["faceid-portrait"].startswith("FaceID-Portrait (16 identity tokens per face): idcli does not run "
                                              "it"), said
    assert said["truncated"].startswith("damaged or truncated (its header places"), said
    lora_named_as_adapter = h94_folder.parent / "renamed"
    lora_named_as_adapter.mkdir()
    (h94_folder.parent / "the-lora-alone" / "ip-adapter-faceid_sd15_lora.safetensors").rename(
        lora_named_as_adapter / "ip-adapter-faceid_sd15.safetensors")
    [entry], _whole = describe_folder(lora_named_as_adapter, "--models-dir")
    assert entry["detail"].startswith("the LoRA alone, not an adapter"), entry
    [entry], _whole = describe_folder(h94_folder, "--models-dir")  # the published pickle: not opened
    assert entry["detail"].startswith("pickle: loads with model.allow_pickle: true"), entry


def _hub_cached(monkeypatch: pytest.MonkeyPatch, cache: Path, repo_id: str) -> Path:
    """The snapshot folder ``refs/main`` names in a hub cache at ``cache`` (huggingface_hub pointed at it), for files
    a shot list names by hub id as `idcli models fetch` or diffusers would have left them."""
    commit = "c" * 40
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    return repo / "snapshots" / commit


def test_models_list_says_which_adapter_a_shot_lists_cached_hub_file_is(write_shotlist, tiny_engines, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`models list --shotlist` named a hub adapter "IP-Adapter weights (hub file …)" whatever the cached file held."""
    from idcli.model_folders import shotlist_folders

    snapshot = _hub_cached(monkeypatch, tmp_path / "hub", "someone/faceid-files")
    unet = tiny_engines("tiny-sd").pipe.unet
    _variant, weight, _says = _wrong_adapter_file("plus v2 named as faceid", snapshot, unet)
    shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, adapter: {variant: faceid, id: "
                                                    f"someone/faceid-files, weight_name: {weight}}}}}"))
    [entry] = [e for e in shotlist_folders(shots) if e["kind"] == "IP-Adapter weights"]
    assert entry["detail"] == f"hub file {weight}; FaceID-Plus (v1 and v2 alike): model.adapter.variant: " \
                              "faceid-plusv2", entry


@pytest.mark.parametrize("kind", ["plus v2 named as faceid", "faceid named as plus v2", "truncated"])
def test_a_cached_hub_adapter_of_the_wrong_kind_is_refused_by_plan_and_validate(
        write_shotlist, h94_folder: Path, tiny_engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        kind: str) -> None:
    """A local adapter file's header is checked by plan and validate; the same file named by hub id, already in the
    Hugging Face cache, was not: plan said the shot list was fine and the render refused it after loading the base
    model. A cached `.safetensors` file is now checked the same way (nothing is downloaded: one not cached is left
    to the render, as before)."""
    from typer.testing import CliRunner

    from idcli.cli import app

    snapshot = _hub_cached(monkeypatch, tmp_path / "hub", "someone/faceid-files")
    variant, weight, says = _wrong_adapter_file(kind, snapshot, tiny_engines("tiny-sd").pipe.unet)
    encoder = ", image_encoder: enc" if variant == "faceid-plusv2" else ""
    shots = write_shotlist(SHOTS.replace("{MODEL}", f"{{preset: sd15, id: base, adapter: {{variant: {variant}, "
                                                    f"id: someone/faceid-files, weight_name: {weight}{encoder}}}}}"))
    _refused_by_validate_and_plan(shots, snapshot / weight, says)
    (snapshot / weight).unlink()  # not cached: planned by its hub id as before, nothing fetched
    result = CliRunner().invoke(app, ["validate", str(shots)])
    assert says not in " ".join(result.output.split()), result.output


def test_models_list_says_what_is_wrong_with_a_face_model_folder(synthetic_face_models: Path, tmp_path: Path) -> None:
    """`models list --models-dir` called any folder with an .onnx file an "insightface face-model pack … present":
    one holding only the detector (its recogniser left behind in a copy) and one whose recogniser download was cut
    read as whole packs, and the render refused them. The detail now says what is wrong, as the render would:
    which file is missing its role or cannot be read; a whole pack reads as before."""
    from idcli.model_folders import describe_folder

    whole = tmp_path / "whole"
    shutil.copytree(synthetic_face_models, whole)
    [entry], _ = describe_folder(whole, "--models-dir")
    assert entry["kind"] == "insightface face-model pack" and entry["present"], entry
    assert "det_synthetic.onnx" in entry["detail"] and "not usable" not in entry["detail"], entry
    detector_only = tmp_path / "detector-only"
    shutil.copytree(synthetic_face_models, detector_only)
    (detector_only / "w600k_synthetic.onnx").unlink()
    [entry], _ = describe_folder(detector_only, "--models-dir")
    assert "not usable: no ArcFace recognition model (a square 112x112-input ONNX file such as w600k_r50.onnx)" \
        in entry["detail"], entry
    cut = tmp_path / "cut"
    shutil.copytree(synthetic_face_models, cut)
    data = (cut / "w600k_synthetic.onnx").read_bytes()
    (cut / "w600k_synthetic.onnx").write_bytes(data[:len(data) // 2])
    [entry], _ = describe_folder(cut, "--models-dir")
    assert "not usable: w600k_synthetic.onnx is damaged or truncated" in entry["detail"], entry
    assert "download it again" in entry["detail"], entry


def test_a_faceid_file_without_its_lora_is_said_once_not_refused(write_shotlist, h94_folder: Path, tiny_engines
                                                                  ) -> None:
    """h94's published FaceID files carry their LoRA (`ip_adapter.{k}.to_q_lora…`, which the authors say identity
    consistency needs); a file without it (a conversion that kept only the adapter keys) rendered without a word.
    validate notes it at model.adapter and plan warns once, naming the file and what to use; nothing is refused and
    the job keys are those of the same file with no note (the note reads the header, nothing else)."""
    import json

    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.engine.faceid_layout import write_random_faceid_adapter

    unet = tiny_engines("tiny-sd").pipe.unet
    write_random_faceid_adapter(unet, h94_folder / "ip-adapter-faceid_sd15.safetensors", lora=False)
    write_random_faceid_adapter(unet, h94_folder / "with-lora.safetensors")
    says = "carries no LoRA (no ip_adapter.*_lora.* keys)"
    for weight, noted in (("ip-adapter-faceid_sd15.safetensors", True), ("with-lora.safetensors", False)):
        shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, id: base, adapter: {variant: faceid, "
                                                        f"id: IP-Adapter-FaceID, weight_name: {weight}}}}}"))
        result = CliRunner().invoke(app, ["validate", str(shots)])
        text = " ".join(result.output.split())
        assert result.exit_code == 0, result.output
        assert ("shots.yaml:3:" in text and says in text and f"{h94_folder / weight}'" in text) == noted, text
        result = CliRunner().invoke(app, ["plan", str(shots), "--json"])
        assert result.exit_code == 0, result.output
        warnings = [w for w in json.loads(result.stdout).get("warnings", []) if says in w]
        assert len(warnings) == (1 if noted else 0), result.stdout


def test_a_pickled_faceid_file_without_its_lora_is_said_once_at_render(
        write_shotlist, h94_folder: Path, tmp_path: Path, synthetic_face_models: Path, tiny_engines,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A `.safetensors` FaceID file without its LoRA is noted by validate and plan (its header read); a pickled
    `.bin` one, loaded with `model.allow_pickle: true`, rendered without a word: its keys are known only once the
    engine has loaded it (weights-only). The render now warns once, in the same words, and renders as before (the
    published pickle, which carries the LoRA, says nothing)."""
    import json

    import torch
    from typer.testing import CliRunner

    from idcli.cli import app

    monkeypatch.setenv("IDCLI_FACE_MODELS", str(synthetic_face_models))
    published = torch.load(h94_folder / "ip-adapter-faceid_sd15.bin", weights_only=True)
    cut = {"image_proj": published["image_proj"],
           "ip_adapter": {k: v for k, v in published["ip_adapter"].items() if "_lora." not in k}}
    assert len(cut["ip_adapter"]) < len(published["ip_adapter"])
    torch.save(cut, h94_folder / "no-lora.bin")
    says = "carries no LoRA (no ip_adapter.*_lora.* keys)"
    for weight, noted in (("no-lora.bin", True), ("ip-adapter-faceid_sd15.bin", False)):
        shots = write_shotlist(SHOTS.replace("takes: 1", "takes: 2").replace(
            "{MODEL}", "{preset: sd15, id: base, allow_pickle: true, adapter: {variant: faceid, "
                       f"id: IP-Adapter-FaceID, weight_name: {weight}}}}}"), name=f"{weight}.yaml")
        plan = CliRunner().invoke(app, ["plan", str(shots), "--json"])
        assert plan.exit_code == 0, plan.output
        assert not any(says in w for w in json.loads(plan.stdout).get("warnings", [])), plan.stdout  # a pickle: unread
        out = tmp_path / f"out-{weight}"
        result = CliRunner().invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu",
                                          "--batch-size", "1"])
        assert result.exit_code == 0, result.output
        text = " ".join(result.stderr.split())
        assert text.count(says) == (1 if noted else 0), text  # two batches, said once
        if noted:
            assert f"warning: the adapter '{h94_folder / weight}' {says}" in text, text
        assert len(list(out.rglob("*.png"))) == 2


def test_an_engine_warning_reaches_quiet_json_and_python_callers(
        write_shotlist, h94_folder: Path, tmp_path: Path, synthetic_face_models: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the engine finds only while rendering (a pickled FaceID file without its LoRA; `--compile` giving up)
    went to the progress display alone: `render --quiet`, whose help promises warnings are still printed, said
    nothing; `render --json` did not list it under `warnings`; a Python caller's report never held it. It is now a
    warning of the run: in the report's `warnings` (said once), printed by `--quiet`, in the `--json` document."""
    import json

    import torch
    from typer.testing import CliRunner

    import idcli
    from idcli.cli import app

    monkeypatch.setenv("IDCLI_FACE_MODELS", str(synthetic_face_models))
    published = torch.load(h94_folder / "ip-adapter-faceid_sd15.bin", weights_only=True)
    torch.save({"image_proj": published["image_proj"],
                "ip_adapter": {k: v for k, v in published["ip_adapter"].items() if "_lora." not in k}},
               h94_folder / "no-lora.bin")
    says = "carries no LoRA (no ip_adapter.*_lora.* keys)"
    shots = write_shotlist(SHOTS.replace("takes: 1", "takes: 2").replace(
        "{MODEL}", "{preset: sd15, id: base, allow_pickle: true, adapter: {variant: faceid, "
                   "id: IP-Adapter-FaceID, weight_name: no-lora.bin}}"))
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "quiet"), "--device", "cpu",
                                      "--batch-size", "1", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    warnings = [w for w in json.loads(result.stdout)["warnings"] if says in w]
    assert len(warnings) == 1, result.stdout
    assert " ".join(result.stderr.split()).count(says) == 1, result.stderr
    report = idcli.render(shots, tmp_path / "python", device="cpu", batch_size=1)
    assert [w for w in report.warnings if says in w] == warnings, report.warnings
    assert report.rendered == 2


def test_a_faceid_plus_v1_file_is_noted_by_its_name(write_shotlist, h94_folder: Path, tiny_engines) -> None:
    """FaceID-Plus v1 (``ip-adapter-faceid-plus_sd15.bin``) and v2 (``…-plusv2_…``) hold the same keys and shapes: the
    IP-Adapter repository builds one ``ProjPlusModel`` for both and v2 only turns its shortcut on at inference
    (``shortcut=True``), diffusers one ``IPAdapterFaceIDPlusImageProjection`` (``shortcut`` False until a caller sets
    it), and ComfyUI_IPAdapter_plus tells v2 by ``'plusv2' in file.lower()``. So a v1 file given as
    ``variant: faceid-plusv2`` rendered as v2 (with the shortcut) without a word. Nothing in the weights tells them
    apart; its name does: validate notes it at model.adapter, plan warns once, `models list` says it; nothing is
    refused, and a v2 name is not noted."""
    import json

    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.engine.faceid_plus import write_random_plusv2_adapter
    from idcli.model_folders import describe_folder
    from idcli.presets import RANDOM_IMAGE_ENCODERS

    unet = tiny_engines("tiny-sd").pipe.unet
    says = "is named as IP-Adapter FaceID-Plus v1"
    for weight, noted in (("ip-adapter-faceid-plus_sd15.safetensors", True),
                          ("ip-adapter-faceid-plusv2_sd15.safetensors", False)):
        write_random_plusv2_adapter(unet, h94_folder / weight, RANDOM_IMAGE_ENCODERS["tiny-sd"]["hidden_size"])
        shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, id: base, adapter: {variant: faceid-plusv2, "
                                                        f"id: IP-Adapter-FaceID, weight_name: {weight}, "
                                                        "image_encoder: enc}}"), name=f"{weight}.yaml")
        result = CliRunner().invoke(app, ["validate", str(shots)])
        text = " ".join(result.output.split())
        assert result.exit_code == 0, result.output
        assert (f"{weight}.yaml:3:" in text and says in text) == noted, text
        result = CliRunner().invoke(app, ["plan", str(shots), "--json"])
        assert result.exit_code == 0, result.output
        warnings = [w for w in json.loads(result.stdout).get("warnings", []) if says in w]
        assert len(warnings) == (1 if noted else 0), result.stdout
        if noted:
            assert warnings == [
                f"the adapter '{weight}' from '{h94_folder.resolve()}' {says} (ip-adapter-faceid-plus_…), which idcli "
                "renders as v2 (model.adapter.variant: faceid-plusv2: the shortcut on, shortcut_scale 1): v1 and v2 "
                "hold the same keys and shapes, so nothing in the file tells them apart (docs/models.md, \"FaceID-Plus "
                "v1 or v2\"). If it is v1, its images are not what v1 gives elsewhere; for v2, point model.adapter "
                "at ip-adapter-faceid-plusv2_sd15 or _sdxl (`idcli models fetch` gets it)"]
    import shutil

    shutil.copy(h94_folder / "ip-adapter-faceid_sd15.bin", h94_folder / "ip-adapter-faceid-plus_sd15.bin")  # by name
    details = {entry["path"].rsplit("/", 1)[-1]: entry["detail"] for entry in describe_folder(h94_folder,
                                                                                              "--models-dir")[0]}
    assert details["ip-adapter-faceid-plus_sd15.bin"].endswith(
        "; named FaceID-Plus v1, which idcli renders as v2 (v1 and v2 hold the same keys)"), details
    assert "named FaceID-Plus v1" not in details["ip-adapter-faceid_sd15.bin"], details
    assert details["ip-adapter-faceid-plus_sd15.safetensors"].startswith(
        "FaceID-Plus, named v1 (v1 and v2 hold the same keys: idcli renders it as v2): model.adapter.variant: "
        "faceid-plusv2"), details
    assert details["ip-adapter-faceid-plusv2_sd15.safetensors"].startswith("FaceID-Plus (v1 and v2 alike)"), details


def test_comfyuis_clip_vision_folder_as_the_image_encoder_says_what_it_holds(write_shotlist, tmp_path: Path) -> None:
    """A ComfyUI user names the folder, models/clip_vision, not the file: the error said the folder has no
    config.json and to run `idcli models fetch PRESET --variant faceid-plusv2`, a placeholder for a command, and
    nothing of the file they have. It now names the file in the folder as h94's encoder weights renamed, says which
    config goes beside it, and names the preset's own fetch command."""
    from typer.testing import CliRunner

    from idcli.cli import app

    clip_vision = tmp_path / "ComfyUI" / "models" / "clip_vision"
    clip_vision.mkdir(parents=True)
    (clip_vision / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors").write_bytes(b"weights")
    shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sdxl, adapter: {variant: faceid-plusv2, image_encoder: "
                                                    "ComfyUI/models/clip_vision}}"))
    for command, code in ((["validate", str(shots)], 2), (["plan", str(shots), "--device", "cpu"], 4)):
        result = CliRunner().invoke(app, command)
        text = " ".join(result.output.split())
        assert result.exit_code == code, text
        assert "has no config.json" in text and "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors" in text, text
        assert "as model.safetensors beside" in text and "models/image_encoder/config.json" in text, text
        assert "PRESET" not in text and "`idcli models fetch sdxl`" in text, text


def test_models_list_names_comfyuis_clip_vision_files(tmp_path: Path) -> None:
    """`idcli models list --models-dir ComfyUI/models` listed the ipadapter and loras files and said nothing of
    clip_vision's, the encoder FaceID-Plus v2 needs: a ComfyUI user could not tell they already have it, nor that the
    bigG file beside it is the wrong one. Each is listed with what it is and what model.adapter.image_encoder takes."""
    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.model_folders import scan_models_dir

    clip_vision = tmp_path / "ComfyUI" / "models" / "clip_vision"
    clip_vision.mkdir(parents=True)
    for name in ("CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors", "CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors"):
        (clip_vision / name).write_bytes(b"weights")
    (clip_vision / "notes.txt").write_text("not a model")
    found = {Path(e["path"]).name: e for e in scan_models_dir(tmp_path / "ComfyUI" / "models")}
    assert set(found) == {"CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors",
                          "CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors"}, found
    vit_h = found["CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"]
    assert vit_h["kind"] == "CLIP image encoder weights" and vit_h["present"] and vit_h["size_bytes"] == 7
    assert "models/image_encoder/model.safetensors renamed" in vit_h["detail"]
    assert "model.safetensors beside" in vit_h["detail"] and "config.json" in vit_h["detail"]
    assert "not what FaceID-Plus v2 reads" in found["CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors"]["detail"]
    listed = CliRunner().invoke(app, ["models", "list", "--models-dir", str(tmp_path / "ComfyUI" / "models")])
    assert listed.exit_code == 0 and "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors" in listed.output, listed.output


# The local folder ``base`` (h94_folder: real-weight files in the published layouts) with its FaceID adapter.
BASE_WITH_FACEID = ("{preset: sd15, id: base, allow_pickle: true, adapter: {variant: faceid, id: IP-Adapter-FaceID, "
                    "weight_name: ip-adapter-faceid_sd15.bin}}")


def _render_real_model_with_synthetic_faces(write_shotlist: Any, out: Path) -> None:
    """m1_t1 rendered by ``base`` with the session's synthetic faces (``$IDCLI_FACE_MODELS``)."""
    from typer.testing import CliRunner

    from idcli.cli import app

    result = CliRunner().invoke(app, ["render", str(write_shotlist(SHOTS.replace("{MODEL}", BASE_WITH_FACEID))),
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_render_quiet_from_a_model_folder_draws_no_library_progress_bar(
        write_shotlist, h94_folder: Path, tmp_path: Path, synthetic_face_models: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A base model loaded from a folder drew diffusers' `Loading pipeline components...` bar (and transformers'
    `Loading weights` ones) on stderr, under `render --quiet` too, whose help promises no progress: the load was
    quieted for the libraries' log notices but not for their bars. Nothing but idcli's own lines is written."""
    from typer.testing import CliRunner

    from idcli.cli import app

    monkeypatch.setenv("IDCLI_FACE_MODELS", str(synthetic_face_models))
    shots = write_shotlist(SHOTS.replace("{MODEL}", BASE_WITH_FACEID))
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu",
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Loading" not in result.stderr and "it/s" not in result.stderr, result.stderr


def test_a_real_model_given_synthetic_faces_is_marked_random_everywhere(write_shotlist, h94_folder: Path,
                                                                         tmp_path: Path) -> None:
    """A real-weight model folder with identities from the synthetic face pack (the session's $IDCLI_FACE_MODELS):
    the review page and deliver's report called the take random weights, but its PNG had no
    ``idcli-random-weights`` chunk (only a random MODEL added it), so the delivered copy had none either. One rule
    now (idcli/random_mark.py): the PNG, the delivered PNG and the review badge all say so, naming the face models;
    the pixels are those of the unmarked render."""
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.delivery import deliver
    from idcli.delivery_record import pixel_data

    out, dest = tmp_path / "out", tmp_path / "delivered"
    _render_real_model_with_synthetic_faces(write_shotlist, out)
    sidecar = json.loads((out / "m1" / "m1_t1.json").read_text("utf-8"))
    assert sidecar["model"]["random_weights"] is False and sidecar["identity"][0]["random_face_models"] is True
    taken = Image.open(out / "m1" / "m1_t1.png")
    assert taken.info.get("idcli-random-weights") == ("true: identities encoded by random-weight test face models "
                                                      "(no likeness); the model's weights are real"), taken.info.keys()
    report = deliver(out, dest)
    [item] = report.images
    assert item.random_weights
    delivered = Image.open(dest / item.image)
    assert delivered.info.get("idcli-random-weights") == taken.info["idcli-random-weights"], delivered.info.keys()
    assert pixel_data((dest / item.image).read_bytes()) == pixel_data((out / "m1" / "m1_t1.png").read_bytes())
    result = CliRunner().invoke(app, ["review", str(out)])
    assert result.exit_code == 0, result.output
    assert "random weights: not for review" in (out / "review" / "index.html").read_text("utf-8")


def test_a_take_written_unmarked_before_the_rule_reproduces_identical(write_shotlist, h94_folder: Path,
                                                                       tmp_path: Path) -> None:
    """Until 2026-12-03 a real model's take with synthetic-pack identities was written without the
    ``idcli-random-weights`` chunk. Re-encoded with today's rule its bytes differ (pixels equal): reproduce said
    ``pixels-identical``. It now also encodes as idcli then did when that is the recorded sha256: ``identical``, said
    how; a take written today is ``identical`` with no such note."""
    import hashlib
    import json
    import struct

    from idcli.reproduce import reproduce

    out = tmp_path / "out"
    _render_real_model_with_synthetic_faces(write_shotlist, out)
    today = reproduce(out / "m1" / "m1_t1.json")
    assert today.status == "identical" and not [n for n in today.notes if "before 2026-12-03" in n], today.notes
    # The take as an earlier idcli wrote it: the same PNG without the mark's tEXt chunk, its sidecar's sha256 its own.
    png = (out / "m1" / "m1_t1.png").read_bytes()
    chunks, at = [png[:8]], 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        end = at + 12 + length
        if not (kind == b"tEXt" and png[at + 8:at + 8 + length].startswith(b"idcli-random-weights\0")):
            chunks.append(png[at:end])
        at = end
    earlier = b"".join(chunks)
    assert len(earlier) < len(png)
    (out / "m1" / "m1_t1.png").write_bytes(earlier)
    sidecar_path = out / "m1" / "m1_t1.json"
    sidecar = json.loads(sidecar_path.read_text("utf-8"))
    sidecar["image"]["sha256"] = hashlib.sha256(earlier).hexdigest()
    sidecar_path.write_text(json.dumps(sidecar), "utf-8")
    report = reproduce(sidecar_path)
    assert report.status == "identical", (report.status, report.notes)
    assert any("as idcli wrote a real model's take with random-weight face models before 2026-12-03" in note
               for note in report.notes), report.notes
