"""Identity-conditioned renders: per-sample identities, keys that follow embeddings, caching, sidecars."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import plan_on_cpu, render_on_cpu
from PIL import Image

import idcli

pytest.importorskip("insightface", exc_type=ImportError)

ROOT = Path(__file__).resolve().parents[1]

SHOTS = """\
version: 1
project: identity-test
model: {preset: tiny-sd}
defaults: {size: 96x96, steps: 3, guidance: 4.0, sampler: ddim, takes: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], identity_strength: 0.8}
shots:
  - {id: m1, prompt: "{mara} on a wet street at night"}
  - {id: t1, prompt: "{theo} on a wet street at night"}
  - {id: both, prompt: "{theo} and {mara} at a table"}
  - {id: empty, prompt: "an empty street at night"}
"""


def _pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_two_characters_in_one_batch_equal_each_rendered_alone(write_shotlist, tmp_path, tiny_engines) -> None:
    """Per-sample identities: no image sees another character's embedding (diffusers issue 9813)."""
    plan = plan_on_cpu(write_shotlist(SHOTS))
    engine = tiny_engines("tiny-sd", plan.adapter)
    jobs = [j for j in plan.jobs if j.take == 1]
    assert {j.subject for j in jobs} == {"mara", "theo", None}
    batched = engine.render([j.request for j in jobs])
    for job, result in zip(jobs, batched, strict=True):
        alone = engine.render([job.request])[0]
        assert np.abs(result.image - alone.image).max() < 1e-5, job.shot_id
    # The identity has an effect: same prompt and seed, other character -> other image.
    m1 = next(j for j in jobs if j.shot_id == "m1").request
    swapped = type(m1)(**{**m1.__dict__, "identity_embedding": next(
        j for j in jobs if j.shot_id == "t1").request.identity_embedding})
    assert np.abs(engine.render([m1])[0].image - engine.render([swapped])[0].image).mean() > 1e-4


def test_strength_zero_and_no_character_are_text_only(write_shotlist, tiny_engines) -> None:
    plan = plan_on_cpu(write_shotlist(SHOTS.replace("identity_strength: 0.8", "identity_strength: 0.0")))
    t1 = next(j for j in plan.jobs if j.shot_id == "t1" and j.take == 1)
    assert t1.request.identity_embedding is None and t1.key_material["method"] == {"name": "text"}
    with_adapter = tiny_engines("tiny-sd", plan.adapter).render([t1.request])[0].image
    without = tiny_engines("tiny-sd").render([t1.request])[0].image
    assert np.array_equal(with_adapter, without)


def test_sidecars_record_every_character_and_the_adapter(write_shotlist, tmp_path, engine_factory) -> None:
    report = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory)
    assert report.rendered == 8
    both = json.loads(Path(next(o.sidecar.abs_path for o in report.jobs if o.shot_id == "both")).read_text())
    names = [c["name"] for c in both["identity"]]
    assert sorted(names) == ["mara", "theo"]
    theo = next(c for c in both["identity"] if c["name"] == "theo")
    mara = next(c for c in both["identity"] if c["name"] == "mara")
    # Dual-line: every named character conditions, each in its own region (test_multi_character.py).
    assert theo["conditions_image"] and mara["conditions_image"]
    assert [c["name"] for c in both["method"]["characters"]] == ["theo", "mara"]
    assert theo["strength"] == 0.8 and len(theo["selfie_sha256"]) == 1 and len(mara["selfie_sha256"]) == 2
    assert theo["adapter"]["random_weights"] and len(theo["adapter"]["weight_sha256"]) == 64
    assert theo["face_models"]["synthetic"] is True and theo["face_models"]["hash"].startswith("idcli-face-models")
    assert both["method"]["name"] == "dual-line"  # the default method
    # Keyed by what made the identity (selfies, face models, encoder), recorded with its embedding's hash.
    assert both["method"]["identity"]["identity_key"] == theo["identity_key"]
    assert theo["identity_key"].startswith("idcli-identity-v2:") and len(theo["embedding_sha256"]) == 64
    assert both["method"]["params"]["fusion_start"] == 0.3 and both["method"]["params"]["aggregation"] == "mean"
    empty = json.loads(Path(next(o.sidecar.abs_path for o in report.jobs if o.shot_id == "empty")).read_text())
    assert empty["identity"] == [] and empty["method"] == {"name": "text"}


def test_selfies_are_encoded_once_and_reencoding_changes_nothing(write_shotlist, tmp_path, engine_factory,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_shotlist(SHOTS)
    encoded: list[str] = []
    plan1, _ = idcli.plan_shotlist(idcli.load_shotlist(path), device="cpu", on_encode=encoded.append)
    assert sorted(encoded) == ["mara", "theo"]
    plan2, _ = idcli.plan_shotlist(idcli.load_shotlist(path), device="cpu", on_encode=encoded.append)
    assert sorted(encoded) == ["mara", "theo"], "the second plan encoded again"
    # Throwing the cache away re-encodes, and the same selfies give the same keys.
    from idcli.paths import state_dir

    shutil.rmtree(state_dir() / "identities")
    plan3, _ = idcli.plan_shotlist(idcli.load_shotlist(path), device="cpu", on_encode=encoded.append)
    assert len(encoded) == 4
    assert [j.key for j in plan1.jobs] == [j.key for j in plan2.jobs] == [j.key for j in plan3.jobs]


def test_a_relative_idcli_home_is_one_cache_when_the_host_changes_folder(write_shotlist, tmp_path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative IDCLI_HOME is made absolute once, against the folder it was first read in: a pipeline that changes
    folder per shot (os.chdir) kept a cache in each folder, and encoded the same selfies again in each."""
    from idcli.paths import state_dir

    path = write_shotlist(SHOTS)
    first, second = tmp_path / "shot1", tmp_path / "shot2"
    first.mkdir(), second.mkdir()
    monkeypatch.setenv("IDCLI_HOME", "relative-home")
    monkeypatch.chdir(first)
    encoded: list[str] = []
    idcli.plan_shotlist(idcli.load_shotlist(path), device="cpu", on_encode=encoded.append)
    assert sorted(encoded) == ["mara", "theo"] and state_dir() == first / "relative-home"
    monkeypatch.chdir(second)
    idcli.plan_shotlist(idcli.load_shotlist(path), device="cpu", on_encode=encoded.append)
    assert sorted(encoded) == ["mara", "theo"], "the second folder encoded again"
    assert state_dir() == first / "relative-home" and not (second / "relative-home").exists()
    assert any((first / "relative-home" / "identities").iterdir())


def test_changing_a_selfie_rerenders_exactly_that_characters_shots(write_shotlist, tmp_path, selfies,
                                                                    engine_factory) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(path, out, engine_factory)
    # theo's selfie is replaced by another photo of theo (the second recipe selfie).
    shutil.copy(ROOT / "recipes" / "selfies" / "theo_2.jpg", selfies / "theo_1.jpg")
    report = render_on_cpu(path, out, engine_factory)
    rendered = sorted({o.shot_id for o in report.jobs if o.status == "rendered"})
    assert rendered == ["both", "t1"], rendered  # 'both' is conditioned on theo, its first character
    assert report.count("skipped") == 4


def test_identity_pack_characters(write_shotlist, tmp_path, engine_factory, synthetic_face_models) -> None:
    from idcli.identity.build import build_identity
    from idcli.identity.faces import FaceAnalyzer, resolve_face_models

    pack = tmp_path / "theo.idpack"
    build_identity("theo", [ROOT / "recipes" / "selfies" / "theo_1.jpg"],
                   FaceAnalyzer(resolve_face_models(synthetic_face_models)), pack)
    via_selfies = plan_on_cpu(write_shotlist(SHOTS))
    via_pack = plan_on_cpu(write_shotlist(
        SHOTS.replace("theo: {selfies: [selfies/theo_1.jpg], identity_strength: 0.8}",
                      "theo: {identity: theo.idpack, identity_strength: 0.8}"), "pack.yaml"))
    # The same face through a pack or through selfies gives the same embedding (so the same pixels), but a
    # pack is keyed by its own embedding and selfies by what made them: only theo's shots change keys.
    by_selfies = {j.shot_id: j for j in via_selfies.jobs}
    by_pack = {j.shot_id: j for j in via_pack.jobs}
    changed = sorted(s for s in by_pack if by_pack[s].key != by_selfies[s].key)
    assert changed == ["both", "t1"], changed
    theo = by_pack["t1"].identities[0]
    assert theo.source == "pack" and theo.pack_path.endswith("theo.idpack")
    assert theo.embedding_sha256 == by_selfies["t1"].identities[0].embedding_sha256


def test_tiny_preset_builds_its_synthetic_face_pack_on_first_use(write_shotlist, monkeypatch) -> None:
    from idcli.paths import state_dir

    monkeypatch.delenv("IDCLI_FACE_MODELS")
    plan = plan_on_cpu(write_shotlist(SHOTS))
    pack_json = state_dir() / "face-models" / "models" / "idcli-synthetic" / "PACK.json"
    assert json.loads(pack_json.read_text())["synthetic"] is True
    assert plan.jobs[0].identities[0].random_face_models


def test_face_models_option_overrides_and_missing_models_exit_4(write_shotlist, tmp_path) -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    result = CliRunner().invoke(app, ["plan", str(write_shotlist(SHOTS)), "--device", "cpu",
                                      "--face-models", str(tmp_path / "no-models"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 4 and "non-commercial" in result.stderr and "no-models" in result.stderr


def test_a_selfie_without_a_face_blocks_only_its_shots_with_its_path(write_shotlist, selfies) -> None:
    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "theo_1.jpg", format="JPEG")
    plan, _ = idcli.plan_shotlist(idcli.load_shotlist(write_shotlist(SHOTS)), device="cpu")
    assert [p.path for p in plan.problems] == ["characters.theo.selfies[0]"]
    assert re.search(r"character 'theo' cannot be used: selfies/theo_1\.jpg: no face found", plan.problems[0].message)
    assert {b.shot_id for b in plan.blocked} == {"t1", "both"}
    assert {j.shot_id for j in plan.jobs} == {"m1", "empty"}


def test_a_real_preset_with_the_synthetic_face_models_is_warned_about(tiny_engines, tmp_path: Path,
                                                                      selfies: Path) -> None:
    """The quickstart's `--face-models synthetic` (or $IDCLI_FACE_MODELS) kept when switching to sd15: the images
    look real but every identity comes from random-weight face models. The tiny presets say RANDOM already."""
    from idcli.engine.faceid_layout import write_random_faceid_adapter

    tiny_engines("tiny-sd").pipe.save_pretrained(tmp_path / "base", safe_serialization=True)
    write_random_faceid_adapter(tiny_engines("tiny-sd").pipe.unet, tmp_path / "faceid" / "a.safetensors", seed=1)
    shots = tmp_path / "real.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: sd15, id: base, adapter: {variant: faceid, id: faceid, "
                     "weight_name: a.safetensors}}\ndefaults: {size: 64x64, steps: 2}\ncharacters:\n  mara: "
                     "{selfies: [selfies/mara_1.jpg]}\nshots:\n  - {id: a010, prompt: '{mara} in a hall'}\n"
                     "  - {id: a020, prompt: an empty hall}\n", "utf-8")
    warned = [w for w in plan_on_cpu(shots).warnings if "SYNTHETIC" in w]
    assert len(warned) == 1 and "'mara'" in warned[0] and "Point face_models (or $IDCLI_FACE_MODELS)" in warned[0]
    from review_helpers import cli

    printed = cli("plan", shots, "--device", "cpu")  # the command names its flag
    assert printed.exit_code == 0 and "Point --face-models (or $IDCLI_FACE_MODELS)" in printed.output, printed.output
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(shots.read_text("utf-8").replace(
        "{preset: sd15, id: base, adapter: {variant: faceid, id: faceid, weight_name: a.safetensors}}",
        "{preset: tiny-sd}"), "utf-8")
    assert not [w for w in plan_on_cpu(tiny).warnings if "SYNTHETIC" in w]
