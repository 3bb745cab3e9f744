"""``idcli reproduce``: re-rendering committed images from their records, and what it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import render_on_cpu
from PIL import Image
from typer.testing import CliRunner

from idcli.cli import app
from idcli.reproduce import ReproduceError, reproduce
from idcli.versions import ENGINE_ALGORITHM

ROOT = Path(__file__).resolve().parents[1]

SHOTS = """\
version: 1
project: reproduce-test
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {identity: theo.idpack}
shots:
  - {id: mara, prompt: "{mara} on a wet street", framing: wide, expression: worry}
  - {id: theo, prompt: "{theo} in a bar", method: single, size: 72x64}  # a batch of its own
"""


@pytest.fixture
def theo_pack(tmp_path: Path, synthetic_face_models: Path) -> Path:
    from idcli.identity.build import build_identity
    from idcli.identity.faces import FaceAnalyzer, resolve_face_models

    pack = tmp_path / "theo.idpack"
    build_identity("theo", [ROOT / "recipes" / "selfies" / "theo_1.jpg"],
                   FaceAnalyzer(resolve_face_models(synthetic_face_models)), pack)
    return pack


@pytest.fixture
def rendered(write_shotlist, tmp_path, engine_factory, theo_pack):
    report = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory)
    assert report.rendered == 2
    return {job.shot_id: job for job in report.jobs}


@pytest.mark.slow  # about 90 s on 2 cores: 9 renders, then each image's batch again
def test_every_quickstart_image_reproduces_identically(tmp_path, engine_factory) -> None:
    recipe = tmp_path / "recipe"
    shutil.copytree(ROOT / "recipes", recipe)
    report = render_on_cpu(recipe / "quickstart.yaml", tmp_path / "qs", engine_factory)
    assert report.rendered == 9
    for job in report.jobs:
        result = reproduce(job.sidecar if job.take % 2 else job.image, engine_factory=engine_factory)
        assert result.status == "identical", (job.shot_id, job.take, result.as_dict())
        assert result.sha256 == json.loads(Path(job.sidecar).read_text())["image"]["sha256"]
        assert result.environment == [] and result.max_pixel_difference == 0


def test_images_of_one_batch_reproduce_identically_in_their_batch(write_shotlist, tmp_path, engine_factory,
                                                                   theo_pack) -> None:
    # Text, dual-line and single in one batch of three (as in the quickstart, at a tenth of the cost).
    shots = SHOTS.replace(", size: 72x64}  # a batch of its own", "}") + '  - {id: text, prompt: "an empty bar"}\n'
    report = render_on_cpu(write_shotlist(shots), tmp_path / "out", engine_factory, batch_size=3)
    assert engine_factory.calls == [3]
    for job in report.jobs:
        result = reproduce(job.sidecar, engine_factory=engine_factory)
        assert result.identical and result.notes == [], (job.shot_id, result.as_dict())
    assert engine_factory.calls == [3, 3, 3, 3]  # each reproduction rendered the whole batch again
    # Without its batch (a neighbour's sidecar gone) it is rendered alone, and says so.
    Path(report.jobs[2].sidecar).unlink()
    alone = reproduce(report.jobs[0].sidecar, engine_factory=engine_factory)
    assert engine_factory.calls[-1] == 1 and "rendered alone" in alone.notes[0]
    assert alone.max_pixel_difference is not None
    assert alone.max_pixel_difference <= 1  # float32 rounding of another batch shape, at most 1/255


def test_a_batch_member_superseded_by_an_edit_still_rebuilds_the_batch(write_shotlist, tmp_path, engine_factory,
                                                                        theo_pack) -> None:
    # The everyday case: one shot of a batch is edited and re-rendered; its old take moves to
    # .idcli/superseded/. Its neighbours' batch is still known, so they still reproduce exactly.
    shots = SHOTS.replace(", size: 72x64}  # a batch of its own", "}") + '  - {id: text, prompt: "an empty bar"}\n'
    first = render_on_cpu(write_shotlist(shots), tmp_path / "out", engine_factory, batch_size=3)
    assert engine_factory.calls == [3]
    render_on_cpu(write_shotlist(shots.replace("an empty bar", "an empty harbour")), tmp_path / "out",
                  engine_factory, batch_size=3)
    assert list((tmp_path / "out" / ".idcli" / "superseded" / "text").glob("text_t1.*.json"))
    neighbour = next(job for job in first.jobs if job.shot_id == "mara")
    result = reproduce(neighbour.sidecar, engine_factory=engine_factory)
    assert result.identical and result.notes == [], result.as_dict()
    assert engine_factory.calls[-1] == 3  # rendered in its batch of three again
    # and the superseded take itself reproduces in its batch too
    old = next((tmp_path / "out" / ".idcli" / "superseded" / "text").glob("text_t1.*.json"))
    again = reproduce(old, engine_factory=engine_factory)
    assert again.identical and again.notes == [], again.as_dict()


def test_reproduce_writes_the_image_and_reads_a_png_without_its_sidecar(rendered, tmp_path, engine_factory) -> None:
    job = rendered["mara"]
    result = reproduce(job.image, out_dir=tmp_path / "again", engine_factory=engine_factory)
    assert result.identical and result.output is not None
    assert Path(result.output).read_bytes() == Path(job.image).read_bytes()
    Path(job.sidecar).unlink()  # the PNG's own record is enough
    alone = reproduce(job.image, engine_factory=engine_factory)
    assert alone.identical and alone.sidecar is None


def test_out_never_writes_over_the_committed_image(rendered, engine_factory) -> None:
    # `--out` naming the image's own folder (`cd renders/qs/mara && idcli reproduce mara_t1.png --out .`)
    # would put the re-render, unsigned and perhaps different, in place of the committed image.
    job = rendered["mara"]
    before = Path(job.image).read_bytes()
    with pytest.raises(ReproduceError, match=r"out_dir=.* the image being reproduced"):
        reproduce(job.sidecar, out_dir=Path(job.image).parent, engine_factory=engine_factory)
    assert Path(job.image).read_bytes() == before and engine_factory.calls == [1, 1]  # nothing rendered again
    result = CliRunner().invoke(app, ["reproduce", job.image.abs_path, "--out", str(Path(job.image).parent)])
    assert result.exit_code == 2 and Path(job.image).read_bytes() == before
    assert "--out " in result.output and "the image being reproduced" in result.output  # the command's flag


def test_a_changed_selfie_or_a_missing_pack_is_named(rendered, selfies, tmp_path, theo_pack,
                                                     engine_factory) -> None:
    shutil.copy(ROOT / "recipes" / "selfies" / "theo_1.jpg", selfies / "mara_2.jpg")
    with pytest.raises(ReproduceError, match=r"selfie .*mara_2\.jpg of 'mara' changed since the render"):
        reproduce(rendered["mara"].sidecar, engine_factory=engine_factory)
    (selfies / "mara_1.jpg").unlink()
    with pytest.raises(ReproduceError, match=r"selfie .*mara_1\.jpg of 'mara' is missing"):
        reproduce(rendered["mara"].sidecar, engine_factory=engine_factory)
    theo_pack.unlink()
    result = CliRunner().invoke(app, ["reproduce", rendered["theo"].sidecar.abs_path])
    assert result.exit_code == 2
    assert f"identity pack {theo_pack} of 'theo' is missing" in result.output
    assert engine_factory.calls == [1, 1]  # the two renders of the fixture; no reproduction started


def test_a_future_engine_or_schema_is_refused(rendered, engine_factory) -> None:
    path = Path(rendered["theo"].sidecar)
    sidecar = json.loads(path.read_text())
    path.write_text(json.dumps({**sidecar, "engine": "idcli-engine/99", "tool": {"name": "idcli", "version": "9.0"}}))
    with pytest.raises(ReproduceError, match=r"made by engine idcli-engine/99 \(idcli 9\.0\).*use idcli 9\.0") as e:
        reproduce(path, engine_factory=engine_factory)
    assert ENGINE_ALGORITHM in str(e.value)
    path.write_text(json.dumps({**sidecar, "schema": 99}))
    with pytest.raises(ReproduceError, match=r"sidecar schema 99.*upgrade idcli"):
        reproduce(path, engine_factory=engine_factory)


def test_a_different_image_reports_the_pixel_difference_and_the_environment(rendered, engine_factory) -> None:
    from idcli.hashing import sha256_file
    from idcli.provenance import encode_png, read_png_record

    job = rendered["theo"]
    # As if rendered elsewhere: other pixels (one channel of one pixel off by 7) and another torch.
    path = Path(job.image)
    record = read_png_record(path.read_bytes())
    assert record is not None
    pixels = np.asarray(Image.open(path).convert("RGB")).copy()
    pixels[3, 5, 1] = (int(pixels[3, 5, 1]) + 7) % 256
    from idcli.models import resolve_model
    from idcli.plan import Job
    from idcli.render_request import RenderRequest
    from idcli.shotlist import ModelSpec

    stub = Job(record["job_key"], record["shot_id"], 1, RenderRequest("p", "", 1, 72, 64, 2, 4.0, "ddim"), None,
               None, (), "g1")
    path.write_bytes(encode_png(pixels, stub, resolve_model(ModelSpec(), Path("."), "float32"), record))
    sidecar = json.loads(Path(job.sidecar).read_text())
    sidecar["image"]["sha256"] = sha256_file(path)
    sidecar["software"]["torch"] = "1.0.0"
    Path(job.sidecar).write_text(json.dumps(sidecar))
    result = reproduce(job.sidecar, engine_factory=engine_factory)
    assert result.status == "different" and not result.identical
    assert result.max_pixel_difference == min(7, 256 - 7) and result.differing_pixels == 1
    assert {"name": "torch", "recorded": "1.0.0", "now": result.environment[0]["now"]} in result.environment
    cli = CliRunner().invoke(app, ["reproduce", job.sidecar.abs_path, "--json"])
    assert cli.exit_code == 6  # EXIT_CHECK_FAILED
    document = json.loads(cli.stdout)
    assert document["ok"] is False and document["error"]["type"] == "NotReproduced"
    assert document["max_pixel_difference"] == 7 and document["status"] == "different"


def test_a_sidecar_from_before_engine_versions_and_selfie_files_still_reproduces(rendered, engine_factory) -> None:
    """An earlier idcli's sidecar (no engine, identity key or selfie files): the cached identity it was
    rendered from serves, and the engine version is assumed and said."""
    path = Path(rendered["mara"].sidecar)
    sidecar = json.loads(path.read_text())
    del sidecar["engine"]
    for character in sidecar["identity"]:
        del character["identity_key"], character["selfie_files"]
    path.write_text(json.dumps(sidecar))
    result = reproduce(path, engine_factory=engine_factory)
    assert result.identical and f"assumed {ENGINE_ALGORITHM}" in result.notes[0]


def test_a_record_without_its_batch_ignores_neighbours_whose_batch_is_not_a_list_of_keys(tmp_path: Path) -> None:
    """A recovered sidecar's batch is looked up in its neighbours' ``batch.job_keys``. A neighbour whose ``batch``
    was not an object stopped reproduce with an internal error, and one whose ``job_keys`` was a string containing
    the key (a substring match, its index a character offset) made a batch of unrelated images."""
    from idcli.reproduce import batch_members

    out = tmp_path / "out"
    for shot in ("a", "b", "c"):
        (out / shot).mkdir(parents=True)
    timing = {"started": "2026-11-30T05:00:00+00:00", "finished": "2026-11-30T05:00:09+00:00"}
    recovered = {"job_key": "k-a", "shot_id": "a", "recovered": True, "batch": {"size": None}}
    (out / "a" / "a_t1.json").write_text(json.dumps(recovered))
    (out / "b" / "b_t1.json").write_text(json.dumps({"job_key": "k-b", "batch": ["k-a"], "timing": timing}))
    assert batch_members(out / "a" / "a_t1.json", recovered) is None
    (out / "b" / "b_t1.json").write_text(json.dumps(
        {"job_key": "k-b", "batch": {"size": 2, "index": 1, "job_keys": "k-ak-b"}, "timing": timing}))
    (out / "c" / "c_t1.json").write_text(json.dumps(
        {"job_key": "k-c", "batch": {"size": 2, "index": 0, "job_keys": "k-ak-b"}, "timing": timing}))
    assert batch_members(out / "a" / "a_t1.json", recovered) is None


def test_an_image_recovered_after_a_kill_reproduces_in_the_batch_its_neighbours_name(write_shotlist, tmp_path,
                                                                                    engine_factory, theo_pack) -> None:
    # A kill between an image and its sidecar: the next render rebuilds the sidecar from the PNG's record, which
    # cannot say which batch the image was in. Its neighbours' sidecars still name it in their batch, so the
    # batch is rebuilt from theirs; rendered alone it came out 'different' by 1/255 (exit 6), a false alarm.
    shots = SHOTS.replace(", size: 72x64}  # a batch of its own", "}") + '  - {id: text, prompt: "an empty bar"}\n'
    shotlist, out = write_shotlist(shots), tmp_path / "out"
    report = render_on_cpu(shotlist, out, engine_factory, batch_size=3)
    middle = report.jobs[1]
    Path(middle.sidecar).unlink()
    again = render_on_cpu(shotlist, out, engine_factory, batch_size=3)
    assert again.count("recovered") == 1
    recovered = json.loads(Path(middle.sidecar).read_text())
    assert recovered["recovered"] is True and recovered["batch"]["size"] is None
    calls = len(engine_factory.calls)
    result = reproduce(middle.image, engine_factory=engine_factory)
    assert result.identical and result.notes == [], result.as_dict()
    assert engine_factory.calls[calls:] == [3]  # its batch of three again, in its order
    # The image alone, its record the PNG's own (a sidecar lost): the same.
    Path(middle.sidecar).unlink()
    assert reproduce(middle.image, engine_factory=engine_factory).status == "identical"
    assert engine_factory.calls[-1] == 3
    # With its neighbours gone too, it is rendered alone and says why.
    for job in (report.jobs[0], report.jobs[2]):
        Path(job.sidecar).unlink()
    alone = reproduce(middle.image, engine_factory=engine_factory)
    assert engine_factory.calls[-1] == 1
    assert any("the image's own" in note and "does not say which batch" in note for note in alone.notes), alone.notes


def test_auto_keeps_a_cpu_image_on_the_cpu_where_a_gpu_is_present(rendered, engine_factory, monkeypatch) -> None:
    """On a GPU machine `reproduce` (device auto, the default) re-rendered a CPU-recorded image on the GPU, whose
    kernels sum in another order, so it could never be identical. It keeps the recorded CPU and says so."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, as the device choice sees it
    devices: list[str] = []

    def factory(identity, runtime, adapter=None):
        devices.append(runtime.device)
        return engine_factory(identity, runtime, adapter)

    job = rendered["theo"]
    result = reproduce(job.sidecar, engine_factory=factory)
    assert devices == ["cpu"] and result.identical, result.as_dict()
    assert result.notes == ["rendered on the CPU: re-rendered on the CPU too, not on this machine's GPU "
                            "(device='auto' keeps the recorded device; device='cuda' re-renders on the GPU, whose "
                            "pixels differ)"]
    cli = CliRunner().invoke(app, ["reproduce", job.sidecar.abs_path])
    text = " ".join(cli.output.split())
    assert cli.exit_code == 0 and ": identical" in text, text
    assert "(--device auto keeps the recorded device; --device cuda re-renders on the GPU" in text, text


def test_a_mismatch_on_another_device_says_how_to_ask_for_the_recorded_one(rendered, engine_factory,
                                                                            monkeypatch) -> None:
    """`--device cuda` asked for: the re-render runs there, and when it differs the report said only `device:
    recorded cpu, now cuda`. It says the devices' arithmetic differs and how to ask for the recorded one."""
    import dataclasses

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # `--device cuda` is checked against the count

    def on_gpu(identity, runtime, adapter=None):
        """A GPU stand-in: the CPU's engine, one value moved as another device's sums would move it."""
        assert runtime.device == "cuda"
        inner = engine_factory(identity, dataclasses.replace(runtime, device="cpu"), adapter)

        class Gpu:
            adapter_record = inner.adapter_record

            def render(self, requests, **kwargs):
                results = inner.render(requests, **kwargs)
                for result in results:
                    result.image = result.image.copy()
                    result.image[0, 0, 0] = 1.0 - result.image[0, 0, 0]
                return results

        return Gpu()

    result = reproduce(rendered["theo"].sidecar, device="cuda", engine_factory=on_gpu)
    assert result.status == "different"
    assert {"name": "device", "recorded": "cpu", "now": "cuda"} in result.environment
    assert ("rendered on cpu, re-rendered on cuda: the devices' float arithmetic differs, so 8-bit values may; "
            "device='cpu' re-renders on the recorded device") in result.notes, result.notes


@pytest.mark.parametrize("recorded, now", [("cuda", "cuda:0"), ("cuda:0", "cuda")])
def test_the_first_gpu_by_either_name_is_not_another_device(recorded: str, now: str) -> None:
    """A record's `cuda` re-rendered with `--device cuda:0` (or the reverse) runs on the same GPU, yet a mismatch
    was blamed on "the devices' float arithmetic", sending the user to a device they were already on. Another GPU
    and the CPU are still said."""
    from idcli.reproduce import other_device_note

    assert other_device_note({"model": {"device": recorded}}, now) is None
    assert "float arithmetic differs" in (other_device_note({"model": {"device": recorded}}, "cuda:1") or "")
    assert "float arithmetic differs" in (other_device_note({"model": {"device": recorded}}, "cpu") or "")
