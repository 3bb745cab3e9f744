"""FaceID-Plus v2 CLIP features carried in identity packs (``idcli encode-identity --variant faceid-plusv2``):
a pack renders alone (no selfies, no image encoder) as its selfies do; FaceID packs stay as they were; a pack
without features for the run's encoder is recomputed from its crops, or fails its shots at its line when it
cannot be."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from idcli.cli import app
from idcli.engine.build import build_tiny_pipeline
from idcli.engine.faceid_plus import write_random_image_encoder, write_random_plusv2_adapter
from idcli.identity.pack import REQUIRED_TENSORS, read_pack
from idcli.presets import RANDOM_IMAGE_ENCODERS

pytest.importorskip("insightface", exc_type=ImportError)

CLIP_HIDDEN = RANDOM_IMAGE_ENCODERS["tiny-sd"]["hidden_size"]

SHOTS = """\
version: 1
project: pack-clip
model: {preset: PRESET, adapter: {variant: VARIANT}}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: MARA
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
  - {id: empty, prompt: "an empty street at night"}
"""
FROM_SELFIES = "{selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}"
FROM_PACK = "{identity: packs/mara.idpack}"


def shots(tmp_path: Path, mara: str, variant: str = "faceid-plusv2", preset: str = "tiny-sd",
          name: str = "shots.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SHOTS.replace("PRESET", preset).replace("VARIANT", variant).replace("MARA", mara), "utf-8")
    return path


def encode(tmp_path: Path, *options: str, name: str = "mara.idpack"):
    selfies = [str(tmp_path / "selfies" / f"mara_{i}.jpg") for i in (1, 2)]
    return CliRunner().invoke(app, ["encode-identity", *selfies, "--name", "mara", "-o",
                                    str(tmp_path / "packs" / name), *options])


def render(shot_list: Path, out: Path):
    return CliRunner().invoke(app, ["render", str(shot_list), "--out", str(out), "--device", "cpu"])


def pixels(out: Path, shot: str) -> np.ndarray:
    return np.asarray(Image.open(out / shot / f"{shot}_t1.png").convert("RGB"))


def sidecar(out: Path, shot: str) -> dict:
    return json.loads((out / shot / f"{shot}_t1.json").read_text())


def no_encoder_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any load of a CLIP image encoder fails the test: the features must come from the pack."""
    import idcli.engine.faceid_plus as plus_module

    def refuse(*args, **kwargs):
        raise AssertionError("an image encoder was loaded")

    monkeypatch.setattr(plus_module, "load_image_encoder", refuse)
    monkeypatch.setattr(plus_module, "crop_features", refuse)


def test_a_pack_with_features_renders_alone_as_its_selfies_do(selfies: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from idcli.reproduce import reproduce

    result = encode(tmp_path, "--variant", "faceid-plusv2", "--preset", "tiny-sd")
    assert result.exit_code == 0, result.output
    pack = read_pack(tmp_path / "packs" / "mara.idpack")
    [entry] = pack.meta["clip_features"]
    assert "builtin" in entry["image_encoder"] and entry["shape"] == [3, 257, CLIP_HIDDEN]  # aggregate + 2 kept
    assert pack.tensors[entry["tensors"]["aggregate"]].shape == (257, CLIP_HIDDEN)
    assert pack.tensors[entry["tensors"]["selfies"]].shape == (2, 257, CLIP_HIDDEN)

    from_selfies = tmp_path / "out-selfies"
    result = render(shots(tmp_path, FROM_SELFIES), from_selfies)
    assert result.exit_code == 0, result.output

    # Another machine: no selfies, an empty identity cache, no image encoder.
    shutil.rmtree(selfies)
    monkeypatch.setenv("IDCLI_HOME", str(tmp_path / "elsewhere"))
    no_encoder_here(monkeypatch)
    from_pack = tmp_path / "out-pack"
    result = render(shots(tmp_path, FROM_PACK, name="pack.yaml"), from_pack)
    assert result.exit_code == 0, result.output

    assert pixels(from_pack, "m1").tobytes() == pixels(from_selfies, "m1").tobytes()
    [selfie_id], [pack_id] = sidecar(from_selfies, "m1")["identity"], sidecar(from_pack, "m1")["identity"]
    assert pack_id["source"] == "pack" and pack_id["clip_features"]["pack"].endswith("mara.idpack")
    assert "cache" not in pack_id["clip_features"]  # nothing computed, nothing written to the cache
    assert pack_id["clip_features"]["sha256"] == selfie_id["clip_features"]["sha256"] == entry["sha256"]
    assert not list((tmp_path / "elsewhere").rglob("*.clip.safetensors"))
    assert reproduce(from_pack / "m1" / "m1_t1.json").identical  # still without selfies or encoder

    # identity show names the features.
    shown = CliRunner().invoke(app, ["identity", "show", str(tmp_path / "packs" / "mara.idpack")])
    assert shown.exit_code == 0 and "CLIP features" in shown.output and "[3, 257" in shown.output


def test_a_faceid_only_pack_is_as_before_and_a_plus_pack_renders_faceid_alike(
        selfies: Path, tmp_path: Path) -> None:
    assert encode(tmp_path).exit_code == 0
    assert encode(tmp_path, "--variant", "faceid-plusv2", "--preset", "tiny-sd", name="plus.idpack").exit_code == 0
    plain, plus = read_pack(tmp_path / "packs" / "mara.idpack"), read_pack(tmp_path / "packs" / "plus.idpack")
    # A FaceID pack holds what packs always held: the same tensors, no feature entry, the same schema.
    assert set(plain.tensors) == set(REQUIRED_TENSORS) and "clip_features" not in plain.meta
    assert plain.meta["schema"] == plus.meta["schema"] == 1
    assert set(plus.tensors) - set(REQUIRED_TENSORS) and np.array_equal(plain.embedding, plus.embedding)

    out_plain, out_plus = tmp_path / "out-plain", tmp_path / "out-plus"
    assert render(shots(tmp_path, FROM_PACK, variant="faceid"), out_plain).exit_code == 0
    with_plus = shots(tmp_path, "{identity: packs/plus.idpack}", variant="faceid", name="plus.yaml")
    assert render(with_plus, out_plus).exit_code == 0
    # FaceID renders read the embedding only: the features change neither the image nor its job key.
    assert pixels(out_plain, "m1").tobytes() == pixels(out_plus, "m1").tobytes()
    assert sidecar(out_plain, "m1")["job_key"] == sidecar(out_plus, "m1")["job_key"]
    assert "clip_features" not in json.dumps(sidecar(out_plain, "m1")["identity"])

    # A FaceID pack in a Plus v2 run: the features are computed from its crops, as they were before.
    out = tmp_path / "out-computed"
    assert render(shots(tmp_path, FROM_PACK, name="computed.yaml"), out).exit_code == 0
    record = sidecar(out, "m1")["identity"][0]["clip_features"]
    assert record["cache"].endswith(".clip.safetensors") and "pack" not in record


def test_a_pack_for_another_tiny_preset_is_not_used(selfies: Path, tmp_path: Path) -> None:
    assert encode(tmp_path, "--variant", "faceid-plusv2", "--preset", "tiny-sd").exit_code == 0
    out = tmp_path / "out"
    result = render(shots(tmp_path, FROM_PACK, preset="tiny-sdxl"), out)
    assert result.exit_code == 0, result.output
    record = sidecar(out, "m1")["identity"][0]["clip_features"]
    assert "pack" not in record and record["cache"]  # computed for tiny-sdxl's encoder, not the pack's
    [entry] = read_pack(tmp_path / "packs" / "mara.idpack").meta["clip_features"]
    assert record["image_encoder"] != entry["image_encoder"]


# -- real presets (local folders): the encoder a pack was made for, another one, one that is not here -------

REAL = """\
version: 1
project: pack-clip-real
model:
  preset: sd15
  id: base
  adapter: {variant: faceid-plusv2, id: plus, weight_name: plus.safetensors, ENCODER}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara:
    identity: packs/mara.idpack
shots:
  - {id: m1, prompt: "{mara} on a wet street at night", method: single}
  - {id: empty, prompt: "an empty street at night"}
"""


@pytest.fixture
def real_folders(tmp_path: Path, tiny_engines, selfies: Path) -> Path:
    """A tiny pipeline as a diffusers folder, a Plus v2 adapter, and two different CLIP image encoders."""
    tiny_engines("tiny-sd").pipe.save_pretrained(tmp_path / "base", safe_serialization=True)
    write_random_plusv2_adapter(build_tiny_pipeline("tiny-sd").unet, tmp_path / "plus" / "plus.safetensors",
                                CLIP_HIDDEN, seed=5, lora=True)
    for name, seed in (("encoder-a", 3), ("encoder-b", 4)):
        write_random_image_encoder(tmp_path / name, RANDOM_IMAGE_ENCODERS["tiny-sd"], seed=seed)
    return tmp_path


def real_render(root: Path, encoder: str, out: str):
    path = root / f"{out}.yaml"
    path.write_text(REAL.replace("ENCODER", encoder), "utf-8")
    return render(path, root / out)


def test_real_preset_packs_use_their_encoders_features_only(real_folders: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = real_folders
    result = encode(root, "--variant", "faceid-plusv2", "--preset", "sd15", "--image-encoder",
                    str(root / "encoder-a"))
    assert result.exit_code == 0, result.output
    [entry] = read_pack(root / "packs" / "mara.idpack").meta["clip_features"]
    assert "local" in entry["image_encoder"]
    shutil.rmtree(root / "selfies")

    # The encoder it was made for, under another name: the features are read from the pack.
    with monkeypatch.context() as patched:
        no_encoder_here(patched)
        result = real_render(root, "image_encoder: encoder-a", "out-a")
        assert result.exit_code == 0, result.output
    assert sidecar(root / "out-a", "m1")["identity"][0]["clip_features"]["sha256"] == entry["sha256"]

    # Another encoder that is here: computed from the pack's crops, recorded as such (never the pack's).
    result = real_render(root, "image_encoder: encoder-b", "out-b")
    assert result.exit_code == 0, result.output
    record = sidecar(root / "out-b", "m1")["identity"][0]["clip_features"]
    assert "pack" not in record and record["sha256"] != entry["sha256"]

    # An encoder that is not here (the hub, offline): her shots fail at her pack's line with how to fix it, as
    # any unusable character's do (exit 1); the shots not naming her still render.
    result = real_render(root, "image_encoder: h94/IP-Adapter, image_encoder_subfolder: models/image_encoder",
                         "out-hub")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "out-hub.yaml:10:" in text and "packs/mara.idpack" in text  # the line of `identity: packs/…`
    assert "re-encode the pack" in text and "--variant faceid-plusv2 --preset sd15" in text
    assert "--image-encoder h94/IP-Adapter" in text and "features only for" in text
    assert (root / "out-hub" / "empty" / "empty_t1.png").is_file()
    assert not (root / "out-hub" / "m1" / "m1_t1.png").exists()


def hub_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))


def test_a_fetched_encoders_features_serve_a_machine_without_it(real_folders: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The preset's encoder in the hub cache (as `idcli models fetch` leaves it) is keyed by its content; where
    it is not, by its hub id: the pack's features made from that snapshot of main serve both."""
    root = real_folders
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / "hf" / "models--h94--IP-Adapter"
    shutil.copytree(root / "encoder-a", repo / "snapshots" / commit / "models" / "image_encoder")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    hub_cache(monkeypatch, root / "hf")
    result = encode(root, "--variant", "faceid-plusv2", "--preset", "sd15", "--preset", "sdxl")
    assert result.exit_code == 0, result.output
    [entry] = read_pack(root / "packs" / "mara.idpack").meta["clip_features"]  # one encoder for both presets
    assert "local" in entry["image_encoder"]
    main = {"hub": {"id": "h94/IP-Adapter", "revision": "main", "subfolder": "models/image_encoder"}}
    assert entry["hub_names"] == [{"hub": {**main["hub"], "revision": commit}}, main]
    # No model.adapter.image_encoder: the preset's (h94/IP-Adapter models/image_encoder), here from the cache.
    fetched = real_render(root, "shortcut_scale: 1.0", "out-fetched")
    assert fetched.exit_code == 0, fetched.output

    # Another machine: no selfies, an empty hub cache and identity cache, no encoder at all.
    shutil.rmtree(root / "selfies")
    hub_cache(monkeypatch, root / "empty-hf")
    monkeypatch.setenv("IDCLI_HOME", str(root / "elsewhere"))
    no_encoder_here(monkeypatch)
    result = real_render(root, "shortcut_scale: 1.0", "out-elsewhere")
    assert result.exit_code == 0, result.output
    record = sidecar(root / "out-elsewhere", "m1")["identity"][0]["clip_features"]
    assert record["image_encoder"] == main and record["made_with"] == entry["image_encoder"]
    assert record["sha256"] == entry["sha256"]
    assert pixels(root / "out-elsewhere", "m1").tobytes() == pixels(root / "out-fetched", "m1").tobytes()

    # main moved on since the fetch: the snapshot is not what `main` names, so the pack is not used for it.
    (repo / "refs" / "main").write_text("f" * 40)
    from idcli.identity.clip_features import hub_names

    encoder = local_encoder(repo / "snapshots" / commit / "models" / "image_encoder")
    assert hub_names(encoder) == [{"hub": {**main["hub"], "revision": commit}}]


def local_encoder(folder: Path):
    from idcli.adapters import ImageEncoderIdentity

    return ImageEncoderIdentity("local", str(folder.resolve()), "", None, "test")


def test_damaged_pack_features_fail_at_the_characters_line(selfies: Path, tmp_path: Path) -> None:
    from idcli.identity.pack import pack_bytes

    assert encode(tmp_path, "--variant", "faceid-plusv2", "--preset", "tiny-sd").exit_code == 0
    path = tmp_path / "packs" / "mara.idpack"
    pack = read_pack(path)
    [entry] = pack.meta["clip_features"]
    tensors = dict(pack.tensors)
    tensors[entry["tensors"]["aggregate"]] = tensors[entry["tensors"]["aggregate"]] + 1.0
    path.write_bytes(pack_bytes(pack.meta, tensors))
    result = render(shots(tmp_path, FROM_PACK), tmp_path / "out")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "shots.yaml:6:" in text and "do not match their recorded hash" in text and "re-encode" in text

    # Rows that hash as recorded but are not one per kept selfie (a pack made by hand): refused too.
    from idcli.identity.clip_features import plus_adapter_for, rows_sha256, stored_pack_features
    from idcli.identity.pack import PackError, parse_pack

    tensors[entry["tensors"]["selfies"]] = pack.tensors[entry["tensors"]["selfies"]][:1]
    rows = np.concatenate([pack.tensors[entry["tensors"]["aggregate"]][None], tensors[entry["tensors"]["selfies"]]])
    tensors[entry["tensors"]["aggregate"]] = pack.tensors[entry["tensors"]["aggregate"]]
    meta = {**pack.meta, "clip_features": [{**entry, "sha256": rows_sha256(rows)}]}
    with pytest.raises(PackError, match="not one row per kept selfie"):
        stored_pack_features(parse_pack(pack_bytes(meta, tensors), path), plus_adapter_for("tiny-sd"))


def test_encode_identity_options_are_checked(selfies: Path, tmp_path: Path) -> None:
    result = encode(tmp_path, "--preset", "tiny-sd")
    assert result.exit_code == 2 and "--variant faceid-plusv2" in result.output
    result = encode(tmp_path, "--variant", "faceid-plusv2")
    assert result.exit_code == 2 and "needs --preset" in result.output
    result = encode(tmp_path, "--variant", "faceid-plus")
    assert result.exit_code == 2 and "allowed are faceid, faceid-plusv2" in result.output
    assert not (tmp_path / "packs").exists()  # nothing written


def test_encode_identity_without_its_image_encoder_names_the_options_that_fix_it(selfies: Path,
                                                                               tmp_path: Path) -> None:
    """The encoder's own error names shot-list fields; encode-identity's fix is --image-encoder or models fetch."""
    (tmp_path / "empty").mkdir()
    result = encode(tmp_path, "--variant", "faceid-plusv2", "--preset", "sd15", "--image-encoder",
                    str(tmp_path / "empty"))
    assert result.exit_code == 4, result.output
    assert "has no config.json" in result.output and "Traceback" not in result.output
    assert "with encode-identity: give --image-encoder" in result.output
    assert "idcli models fetch sd15 --variant faceid-plusv2" in result.output
    assert not (tmp_path / "packs").exists()  # nothing written


@pytest.mark.parametrize("ref", [b"\xff\xfe" + b"0" * 40, b"../../../outside", b""])
def test_hub_names_reads_a_damaged_or_planted_refs_main_as_no_main(tmp_path: Path, ref: bytes) -> None:
    """refs/main is read by the one reader of the hub cache's refs (model_setup.hub_cache_commit): one that is not
    UTF-8, names a path or is empty neither stops the pack's encoding nor names the snapshot `main`."""
    from idcli.identity.clip_features import hub_names

    commit = "0" * 40
    repo = tmp_path / "hf" / "models--h94--IP-Adapter"
    folder = repo / "snapshots" / commit / "models" / "image_encoder"
    folder.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_bytes(ref)
    named = {"hub": {"id": "h94/IP-Adapter", "revision": commit, "subfolder": "models/image_encoder"}}
    assert hub_names(local_encoder(folder)) == [named]
    (repo / "refs" / "main").write_text(commit + "\n")  # as huggingface_hub writes it
    assert hub_names(local_encoder(folder)) == [named, {"hub": {**named["hub"], "revision": "main"}}]
