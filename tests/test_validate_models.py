"""``idcli validate`` resolves the shot list's models as ``plan`` does, cheaply: a local model folder must exist
and have the pipeline layout, a hub id must be in the local Hugging Face cache (offline), each at its line and
field like validate's other problems; no weight is read or hashed and the hub is never asked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idcli.cli import app

COMMIT = "a" * 40
SHOTS = """\
version: 1
project: models
model: {MODEL}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: a010, prompt: "a hall"}
  - {id: a020, prompt: "{mara} in a hall"}
"""


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache that huggingface_hub looks in (``add_to_cache`` fills it)."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # as with HF_HUB_OFFLINE=1
    return cache


def add_to_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A repository snapshot as `hf download` leaves it: snapshots/COMMIT/FILES and refs/main naming COMMIT."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    for name, data in files.items():
        (repo / "snapshots" / COMMIT / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / COMMIT / name).write_bytes(data)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return repo / "snapshots" / COMMIT


def fetch_sd15_adapter(cache: Path) -> None:
    """What `idcli models fetch sd15` leaves: the FaceID-Plus v2 adapter converted, its image encoder cached."""
    from idcli.model_setup import converted_folder

    converted_folder("h94/IP-Adapter-FaceID").mkdir(parents=True)
    (converted_folder("h94/IP-Adapter-FaceID") / "ip-adapter-faceid-plusv2_sd15.safetensors").write_bytes(b"x")
    add_to_cache(cache, "h94/IP-Adapter", {"models/image_encoder/config.json": b"{}",
                                           "models/image_encoder/model.safetensors": b"x"})


def pipeline_folder(folder: Path) -> Path:
    """The layout of a diffusers pipeline folder, without weights worth loading (validate reads none)."""
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "scheduler": ["diffusers", "DDIMScheduler"]}
    (folder / "unet").mkdir(parents=True)
    (folder / "scheduler").mkdir()
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "unet" / "config.json").write_text("{}")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not read by validate")
    (folder / "scheduler" / "scheduler_config.json").write_text("{}")
    return folder


def with_whole_unet(folder: Path) -> Path:
    """``pipeline_folder``'s UNet weights made whole (the tiny preset's): plan refuses a file that is no safetensors
    file as cut or damaged, where validate reads none."""
    from idcli.engine.build import build_tiny_pipeline

    build_tiny_pipeline("tiny-sd").unet.save_pretrained(folder / "unet", safe_serialization=True)
    return folder


def validate(write_shotlist, model: str, *extra: str):
    shots = write_shotlist(SHOTS.replace("{MODEL}", model))
    return shots, CliRunner().invoke(app, ["validate", str(shots), *extra])


@pytest.fixture
def no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validate reads no weight: hashing one (what plan keys a local folder by) fails the test."""
    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("validate hashed a model file")

    monkeypatch.setattr("idcli.models.sha256_file_cached", refuse)
    monkeypatch.setattr("idcli.adapters.sha256_file_cached", refuse)


@pytest.mark.parametrize(("case", "model", "field", "fragments"), [
    ("a local folder that is not there", "{preset: sd15, id: models/my-sd15}", "model.id",
     ("'models/my-sd15' is no folder here", "and not in the Hugging Face cache", "HF_HUB_OFFLINE=1",
      "`hf download models/my-sd15`")),
    ("a folder without the pipeline layout", "{preset: sd15, id: empty}", "model.id",
     ("is not a diffusers model folder (no model_index.json)",)),
    ("an incomplete folder", "{preset: sd15, id: incomplete}", "model.id",
     ("is incomplete: model_index.json names unet, but there is no unet/config.json",)),
    ("the preset's hub model, not cached", "{preset: sd15}", "model.preset",
     ("'stable-diffusion-v1-5/stable-diffusion-v1-5' is not in the Hugging Face cache", "`idcli models fetch sd15`")),
])
def test_validate_refuses_a_model_the_render_could_not_load(write_shotlist, tmp_path, hub_cache, no_hashing, case,
                                                            model, field, fragments) -> None:
    (tmp_path / "empty").mkdir()
    pipeline_folder(tmp_path / "incomplete")
    (tmp_path / "incomplete" / "unet" / "config.json").unlink()
    shots, result = validate(write_shotlist, model)
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.stderr.splitlines() if fragments[0] in line]
    assert f"{shots}:3:" in line and f": {field}: " in line, line
    assert all(fragment in line for fragment in fragments), line
    assert "Traceback" not in result.output


def test_validate_passes_a_cached_hub_model_and_a_local_pipeline_folder(write_shotlist, tmp_path, hub_cache,
                                                                        no_hashing) -> None:
    add_to_cache(hub_cache, "someone/my-sd15", {"model_index.json": b"{}"})
    fetch_sd15_adapter(hub_cache)  # the FaceID-Plus v2 adapter and image encoder the preset renders characters with
    pipeline_folder(tmp_path / "models" / "mine")
    for model in ("{preset: sd15, id: someone/my-sd15}", "{preset: sd15, id: models/mine}"):
        _, result = validate(write_shotlist, model)
        assert result.exit_code == 0, result.output
        assert "valid" in result.stdout and "Hugging Face cache" not in result.output


def test_validate_names_the_adapter_the_render_could_not_load(write_shotlist, tmp_path, hub_cache, no_hashing
                                                              ) -> None:
    # The base model is there; the adapter a character needs is not (offline, not cached).
    pipeline_folder(tmp_path / "models" / "mine")
    shots, result = validate(write_shotlist, "{preset: sd15, id: models/mine, adapter: {variant: faceid}}")
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.stderr.splitlines() if "adapter" in line]
    assert f"{shots}:3:" in line and ": model.adapter: " in line, line
    assert "'ip-adapter-faceid_sd15.bin' from 'h94/IP-Adapter-FaceID'" in line and \
        "`idcli models fetch sd15 --variant faceid`" in line, line


def test_online_validate_notes_what_the_render_downloads_first(write_shotlist, tmp_path, hub_cache, no_hashing,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    pipeline_folder(tmp_path / "models" / "mine")
    fetch_sd15_adapter(hub_cache)
    _, result = validate(write_shotlist, "{preset: sd15, id: someone/my-sd15}", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    [note] = [n for n in document["notes"] if n["path"] == "model.id"]
    assert note["line"] == 3 and "the render downloads it first" in note["message"]
    assert "`hf download someone/my-sd15`" in note["message"]


def test_online_validate_says_a_preset_adapters_pickle_needs_allow_pickle(write_shotlist, tmp_path, hub_cache,
                                                                           no_hashing,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The preset's published adapter is a pickle: "the render downloads it first" said nothing of the render then
    refusing it without model.allow_pickle (docs/models.md); with allow_pickle the download alone is said."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    pipeline_folder(tmp_path / "models" / "mine")
    _, result = validate(write_shotlist, "{preset: sd15, id: models/mine, adapter: {variant: faceid}}", "--json")
    assert result.exit_code == 0, result.output
    [note] = [n["message"] for n in json.loads(result.stdout)["notes"] if n["path"] == "model.adapter"]
    assert "'ip-adapter-faceid_sd15.bin' from 'h94/IP-Adapter-FaceID'" in note and \
        "the render downloads it first, and it is a pickle (.bin), which the render loads only with " \
        "model.allow_pickle: true; or convert it to safetensors once with `idcli models fetch sd15 --variant " \
        "faceid`" in note, note
    _, allowed = validate(write_shotlist, "{preset: sd15, id: models/mine, adapter: {variant: faceid}, "
                          "allow_pickle: true}", "--json")
    [note] = [n["message"] for n in json.loads(allowed.stdout)["notes"] if n["path"] == "model.adapter"]
    assert note.endswith("the render downloads it first") and "allow_pickle" not in note, note


def test_validate_json_gives_a_model_problem_its_line_and_field(write_shotlist, hub_cache, no_hashing) -> None:
    shots, result = validate(write_shotlist, "{preset: sd15, id: models/gone}", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    [problem] = [p for p in error["problems"] if p["field"] == "model.id"]
    assert (problem["file"], problem["line"], problem["field"]) == (str(shots), 3, "model.id")
    assert "is no folder here" in problem["message"]


def test_a_cached_hub_pickle_adapter_is_refused_at_plan_and_validate_time(write_shotlist, tmp_path, hub_cache
                                                                          ) -> None:
    """A hub adapter the cache holds only as `.bin`, without model.allow_pickle, was refused only when the render had
    encoded every selfie and loaded the base model. With the repository in the cache, plan and validate see it and
    refuse with the render's words; not cached, plan keys it by its hub id as before (an offline plan still works)."""
    from idcli.errors import ModelUnavailableError
    from idcli.planning import plan_shotlist

    with_whole_unet(pipeline_folder(tmp_path / "models" / "mine"))
    model = "{preset: sd15, id: models/mine, adapter: {variant: faceid}}"
    shots = write_shotlist(SHOTS.replace("{MODEL}", model))
    plan, _ = plan_shotlist(shots, device="cpu")  # nothing cached: planned as before, refused by the render
    assert plan.adapter is not None and plan.adapter.source == "hub"
    add_to_cache(hub_cache, "h94/IP-Adapter-FaceID", {"ip-adapter-faceid_sd15.bin": b"a pickle"})
    words = ("refusing to load the FaceID adapter 'ip-adapter-faceid_sd15.bin' from 'h94/IP-Adapter-FaceID': it is "
             "not a .safetensors file, and pickle checkpoints (.bin, .pt, .ckpt) are loaded only when allowed — set "
             "allow_pickle (model.allow_pickle: true) to load it (read with torch.load(weights_only=True)), or "
             "convert it to safetensors once with `idcli models fetch sd15 --variant faceid`")
    with pytest.raises(ModelUnavailableError) as refused:
        plan_shotlist(shots, device="cpu")
    assert str(refused.value) == words
    _, result = validate(write_shotlist, model)
    assert result.exit_code == 2 and f"model.adapter: {words}" in " ".join(result.stderr.split()), result.output
    # Allowed, it is planned (and loaded weights-only by the render).
    allowed = write_shotlist(SHOTS.replace("{MODEL}", model.replace("adapter:", "allow_pickle: true, adapter:")))
    assert plan_shotlist(allowed, device="cpu")[0].adapter.source == "hub"


def test_the_cache_lookup_follows_refs_and_commits_and_stays_in_the_cache(hub_cache) -> None:
    from idcli.model_setup import hub_file_cached

    add_to_cache(hub_cache, "org/name", {"model_index.json": b"{}", "unet/config.json": b"{}"})
    assert hub_file_cached("org/name", "model_index.json", None) and hub_file_cached("org/name", "unet/config.json")
    assert hub_file_cached("org/name", "model_index.json", COMMIT)  # a pinned commit
    assert not hub_file_cached("org/name", "model_index.json", "b" * 40)  # another commit, not cached
    assert not hub_file_cached("org/name", "model_index.json", "v2")  # a branch the cache has no ref for
    assert not hub_file_cached("org/other", "model_index.json")
    (hub_cache / "outside.json").write_text("{}")
    assert not hub_file_cached("org/name", "../../../outside.json")
    assert not hub_file_cached("org/name", "model_index.json", "../../../outside.json")


def test_a_hub_pickle_adapter_is_refused_at_plan_time_only_when_cached_at_its_revision(write_shotlist, tmp_path,
                                                                                       hub_cache) -> None:
    """The cache holding one snapshot of the adapter's repository (main) said nothing of the revision the shot list
    pins: a pickle pinned at a commit or branch the cache does not hold was refused as if it were there, and an
    offline plan (a laptop planning for the farm) stopped. Only the named revision counts, as for model files."""
    from idcli.errors import ModelUnavailableError
    from idcli.model_setup import hub_repo_cached
    from idcli.planning import plan_shotlist

    with_whole_unet(pipeline_folder(tmp_path / "models" / "mine"))
    repo = add_to_cache(hub_cache, "h94/IP-Adapter-FaceID", {"ip-adapter-faceid_sd15.bin": b"a pickle"}).parent.parent
    (repo / "refs" / "v1").write_text(COMMIT)  # a branch the cache has a ref for (to the snapshot it holds)

    def shots_at(revision: str) -> Path:
        adapter = ("{variant: faceid, id: h94/IP-Adapter-FaceID, weight_name: ip-adapter-faceid_sd15.bin, "
                   f"revision: '{revision}'}}")
        return write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, id: models/mine, adapter: " + adapter + "}"))

    for revision in ("b" * 40, "v2"):  # a commit, and a branch, the cache does not hold: planned by hub id
        assert not hub_repo_cached("h94/IP-Adapter-FaceID", revision)
        plan, _ = plan_shotlist(shots_at(revision), device="cpu")
        assert plan.adapter is not None and (plan.adapter.source, plan.adapter.revision) == ("hub", revision)
    for revision in (COMMIT, "v1", "main"):  # cached at that revision: refused with the render's words
        assert hub_repo_cached("h94/IP-Adapter-FaceID", revision)
        with pytest.raises(ModelUnavailableError, match="refusing to load the FaceID adapter"):
            plan_shotlist(shots_at(revision), device="cpu")
    assert hub_repo_cached("h94/IP-Adapter-FaceID")  # no revision: main, as the render reads it
    (repo / "refs" / "main").unlink()
    assert not hub_repo_cached("h94/IP-Adapter-FaceID")
    assert not hub_repo_cached("h94/IP-Adapter-FaceID", "../../../outside")


SD15_INDEX = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"]}
SDXL_INDEX = SD15_INDEX | {"_class_name": "StableDiffusionXLPipeline", "tokenizer_2": ["transformers", "CLIPTokenizer"],
                           "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}
TOKENIZER = {"vocab.json": b"{}", "merges.txt": b"#version: 0.2\n", "tokenizer_config.json": b"{}"}


def cached_pipeline(cache: Path, repo_id: str, index: Mapping[str, object], drop: tuple[str, ...]) -> Path:
    """A cached hub snapshot of a pipeline whose tokenizer folders hold their files, less those in ``drop``."""
    files = {"model_index.json": json.dumps(index).encode()}
    for name in ("tokenizer", "tokenizer_2"):
        if name in index:
            files |= {f"{name}/{file}": data for file, data in TOKENIZER.items() if f"{name}/{file}" not in drop}
    return add_to_cache(cache, repo_id, files)


@pytest.mark.parametrize(("preset", "index", "drop", "lacks"), [
    ("sd15", SD15_INDEX, ("tokenizer/merges.txt",), "its tokenizer/ lacks merges.txt"),
    ("sd15", SD15_INDEX, ("tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json"),
     "its tokenizer/ lacks tokenizer.json (or vocab.json and merges.txt) and tokenizer_config.json"),
    ("sdxl", SDXL_INDEX, ("tokenizer_2/tokenizer_config.json",), "its tokenizer_2/ lacks tokenizer_config.json"),
])
def test_validate_refuses_a_cached_hub_snapshot_whose_tokenizer_lacks_its_files(
        write_shotlist, hub_cache, no_hashing, monkeypatch: pytest.MonkeyPatch, preset, index, drop, lacks) -> None:
    """A half-downloaded snapshot (model_index.json there, a tokenizer's files not) passed validate and failed at
    render after loading the pipeline; a local folder like it was already refused. Offline it is refused at model.id
    with a local folder's words; online the render downloads the missing files first, which validate notes."""
    snapshot = cached_pipeline(hub_cache, "someone/my-model", index, drop)
    words = (f"'someone/my-model' is incomplete in the Hugging Face cache ({snapshot}): {lacks}; transformers would "
             "build a tokenizer that cannot encode the prompts (every word unknown, or no window size)")
    shots, result = validate(write_shotlist, f"{{preset: {preset}, id: someone/my-model}}")
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.stderr.splitlines() if "is incomplete" in line]
    assert f"{shots}:3:" in line and ": model.id: " in line, line
    joined = " ".join(line.split())
    assert words in joined and "HF_HUB_OFFLINE=1 forbids downloading the missing files" in joined, line
    assert "`hf download someone/my-model`" in joined, line
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    _, result = validate(write_shotlist, f"{{preset: {preset}, id: someone/my-model}}", "--json")
    assert result.exit_code == 0, result.output
    [note] = [n for n in json.loads(result.stdout)["notes"] if n["path"] == "model.id"]
    assert words in note["message"] and "the render downloads the missing files first" in note["message"]


def test_validate_passes_a_cached_hub_snapshot_with_whole_tokenizers(write_shotlist, hub_cache, no_hashing) -> None:
    cached_pipeline(hub_cache, "someone/my-sd15", SD15_INDEX, ())
    fetch_sd15_adapter(hub_cache)
    _, result = validate(write_shotlist, "{preset: sd15, id: someone/my-sd15}")
    assert result.exit_code == 0, result.output
    # tokenizer.json alone (a fast tokenizer's one file) stands for vocab.json and merges.txt, as for a local folder
    cached_pipeline(hub_cache, "someone/fast", SD15_INDEX, ("tokenizer/vocab.json", "tokenizer/merges.txt"))
    add_to_cache(hub_cache, "someone/fast", {"tokenizer/tokenizer.json": b"{}"})
    _, result = validate(write_shotlist, "{preset: sd15, id: someone/fast}")
    assert result.exit_code == 0, result.output


@pytest.fixture
def no_face_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without insightface's face models where a real preset reads them (~/.insightface/models/buffalo_l);
    hashing a face model (what plan keys a pack by) fails the test: validate reads none."""
    monkeypatch.delenv("IDCLI_FACE_MODELS")  # the suite's synthetic pack stands in for it otherwise
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("validate hashed a face model")

    monkeypatch.setattr("idcli.identity.faces.sha256_file_cached", refuse)
    return tmp_path / "home" / ".insightface" / "models" / "buffalo_l"


def test_validate_notes_face_models_the_render_could_not_find(write_shotlist, tmp_path, hub_cache, no_hashing,
                                                              no_face_models) -> None:
    """A real preset's shots name a character: plan and render read insightface's face models (never downloaded).
    validate said "valid" where they were not, and plan stopped with exit 4. It notes it at `characters`
    (a note, exit 0: the document is valid, and a CI machine checking shot lists need not hold the models)."""
    pipeline_folder(tmp_path / "models" / "mine")
    fetch_sd15_adapter(hub_cache)
    shots, result = validate(write_shotlist, "{preset: sd15, id: models/mine}")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{shots}: valid"), result.stdout
    [line] = [line for line in result.stdout.splitlines() if "face models" in line]
    assert line.startswith(f"idcli: note: {shots}:5:3: characters: plan and render read face models"), line
    assert f"{no_face_models} (default) does not exist" in line and \
        "idcli models fetch PRESET --accept-insightface-license" in line, line
    document = json.loads(validate(write_shotlist, "{preset: sd15, id: models/mine}", "--json")[1].stdout)
    [note] = [n for n in document["notes"] if n["path"] == "characters"]
    assert note["line"] == 5 and f"{no_face_models} (default) does not exist" in note["message"]
    # The models where the render finds them (--face-models, $IDCLI_FACE_MODELS, the default folder): nothing said.
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "w600k_r50.onnx").write_bytes(b"not read by validate")
    _, result = validate(write_shotlist, "{preset: sd15, id: models/mine}", "--face-models", str(pack))
    assert result.exit_code == 0 and "face models" not in result.output, result.output
    # No character named by a shot: no face is encoded, nothing said.
    shots = write_shotlist(SHOTS.replace("{MODEL}", "{preset: sd15, id: models/mine}").replace("{mara} in", "in"))
    result = CliRunner().invoke(app, ["validate", str(shots)])
    assert result.exit_code == 0 and "face models" not in result.output, result.output


def test_validate_selfies_json_carries_the_face_models_note(write_shotlist, tmp_path, hub_cache, no_hashing,
                                                            no_face_models) -> None:
    """`validate --selfies` on a machine without the face models said that the selfies were not checked on stderr
    only: its --json document said nothing of it. The note is at `characters`, in --json's notes as every note of
    validate is, and beside the other notes without --json."""
    pipeline_folder(tmp_path / "models" / "mine")
    fetch_sd15_adapter(hub_cache)
    shots, result = validate(write_shotlist, "{preset: sd15, id: models/mine}", "--selfies", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    [note] = [n for n in document["notes"] if n["path"] == "characters"]
    assert (note["line"], note["column"]) == (5, 3) and note["message"].startswith("the selfies were not checked: ")
    assert f"{no_face_models} (default) does not exist" in note["message"], note
    _, result = validate(write_shotlist, "{preset: sd15, id: models/mine}", "--selfies")
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if "face models" in line]
    assert line.startswith(f"idcli: note: {shots}:5:3: characters: the selfies were not checked: "), line
    assert "face models" not in result.stderr, result.stderr
