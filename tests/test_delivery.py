"""``idcli deliver``: frames a studio can send out without its disk layout (docs/delivery.md).

Real renders (tiny preset, CPU), real PNG chunks, real c2pa-python signing and reading with the test CA the
signing tests build. The project sits in a folder with a distinctive name; nothing delivered may carry it.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT, SIGNAL_HOOK, cli_env, render_argv, render_on_cpu
from PIL import Image
from review_helpers import cli as cli_in_process

from idcli.delivery import DELIVERY_ASSERTION, DeliveryError, deliver
from idcli.delivery_record import (
    delivery_record,
    looks_absolute,
    parameters_without_paths,
    png_chunks,
    text_chunk,
)
from idcli.errors import InputError
from idcli.hashing import sha256_file
from idcli.provenance import read_png_record
from idcli.review.selects import select
from idcli.verify import verify_folder

c2pa = pytest.importorskip("c2pa")

SECRET = "PROJECT_X_SECRET_4471"
SHOTS = """\
version: 1
project: delivery-test
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - {id: sc01_sh010, prompt: "an empty street at night, rain", seeds: [42]}
  - {id: sc01_sh020, prompt: "{mara} waits at a bar, medium shot", framing: medium, expression: hope, takes: 2}
  - {id: sc01_sh030, prompt: "{mara} and {theo} on a street", plate: plates/two_people.png, plate_strength: 0.6}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A shot list with its selfies and plate in a folder whose name must never leave the studio."""
    folder = tmp_path / "studio" / SECRET
    shutil.copytree(ROOT / "recipes" / "selfies", folder / "selfies")
    (folder / "plates").mkdir()
    shutil.copy(ROOT / "recipes" / "plates" / "two_people.png", folder / "plates")
    (folder / "shots.yaml").write_text(SHOTS, "utf-8")
    return folder


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):  # a C2PA store's "hash" values are base64, which may begin with "/"
        return [s for k, v in value.items() for s in [k, *([] if k == "hash" else _strings(v))]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _assert_no_local_path(document: Any, where: str) -> None:
    absolute = [s for s in _strings(document) if looks_absolute(s)]
    assert not absolute, f"{where}: absolute paths {absolute[:3]}"


def _manifest_store(data: bytes) -> dict[str, Any]:
    with c2pa.Reader("image/png", io.BytesIO(data)) as reader:
        return json.loads(reader.json())


def test_a_delivery_names_no_local_folder_keeps_pixels_verifies_and_its_signed_chain_validates(
        project, engine_factory, signing_env) -> None:
    out, dest = project / "renders", project.parent.parent / "to-client"
    report = render_on_cpu(project / "shots.yaml", out, engine_factory, sign=True)
    assert report.rendered == 4
    assert SECRET.encode() in (out / "sc01_sh020" / "sc01_sh020_t1.png").read_bytes()  # the take itself names it
    select(out, ["sc01_sh020=1"])  # the director's pick; the other shots deliver their newest take
    delivered = deliver(out, dest)
    names = [i.image for i in delivered.images]
    assert names == ["sc01_sh010_take1.png", "sc01_sh020_take1.png", "sc01_sh030_take1.png"]  # shot-list order
    assert [i.selected for i in delivered.images] == [False, True, False]
    assert {i.signature for i in delivered.images} == {"carried"}
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [*names, *(n.replace(".png", ".json") for n in names), "delivery.json"])
    # The decisive check: no delivered byte names the project's folder or any absolute path.
    for path in dest.iterdir():
        data = path.read_bytes()
        assert SECRET.encode() not in data and str(project).encode() not in data, path.name
        if path.suffix == ".json":
            _assert_no_local_path(json.loads(data), path.name)
            continue
        _assert_no_local_path(read_png_record(data), f"{path.name} idcli chunk")
        store = _manifest_store(data)  # the C2PA manifest store as c2pa's Reader returns it, the parent's included
        assert SECRET not in json.dumps(store, ensure_ascii=False)
        _assert_no_local_path(store, f"{path.name} manifest store")
        parameters = text_chunk(data, "parameters")
        assert parameters and "Steps: 2, Sampler: DPM++ 2M" in parameters and "/" not in parameters.splitlines()[-1]
    assert "idcli plate: two_people.png" in (text_chunk((dest / "sc01_sh030_take1.png").read_bytes(), "parameters")
                                             or "")
    for item in delivered.images:
        original, copy = Path(item.source["image"]["abs_path"]), dest / item.image
        with Image.open(original) as a, Image.open(copy) as b:  # exactly the rendered pixels
            assert a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()
        record = json.loads((dest / item.sidecar).read_text())
        source = json.loads(original.with_suffix(".json").read_text())
        # Hashes kept, so the studio matches the frame to its take; where it came from; that it is a copy.
        assert record["job_key"] == source["job_key"] and record["seed"] == source["seed"]
        assert record["delivery"]["kind"] == "idcli-delivery-copy" and record["delivery"]["signature"] == "carried"
        assert record["delivery"]["source"]["sha256"] == sha256_file(original) == source["image"]["sha256"]
        assert record["delivery"]["source"]["image"] == original.name
        assert record["image"]["sha256"] == sha256_file(copy)
        assert record["model"]["random_weights"] is True  # random-weight renders stay marked as such
        assert "idcli-random-weights" in Image.open(copy).info
        for theirs, ours in zip(source["identity"], record["identity"], strict=True):
            assert ours["selfie_sha256"] == theirs["selfie_sha256"] and ours["identity_key"] == theirs["identity_key"]
            assert ours["face_models"]["hash"] == theirs["face_models"]["hash"] and "folder" not in ours["face_models"]
            assert "pack_path" not in ours and all(set(f) == {"sha256"} for f in ours["selfie_files"])
        # The signed chain: a new manifest (opened, then only metadata edited) over the signed take.
        store = _manifest_store(copy.read_bytes())
        active = store["manifests"][store["active_manifest"]]
        actions = next(a for a in active["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
        assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited.metadata"]
        ours = next(a for a in active["assertions"] if a["label"] == DELIVERY_ASSERTION)["data"]
        assert ours["job_key"] == source["job_key"] and ours["source_sha256"] == source["image"]["sha256"]
        [parent] = [i for i in active["ingredients"] if i["relationship"] == "parentOf"]
        parent_manifest = store["manifests"][parent["active_manifest"]]
        render = next(a for a in parent_manifest["assertions"] if a["label"] == "org.idcli.render")["data"]
        assert render["job_key"] == source["job_key"]
        # The AI marking in the active manifest too, the take's own repeated on c2pa.opened: a reader that summarises
        # the active manifest alone (c2pa-js's createL2ManifestStore, behind the Content Credentials pop-up) found
        # it only in the ingredient, and said nothing of AI (until 2026-12-02).
        created = next(a for a in parent_manifest["assertions"] if a["label"].startswith("c2pa.actions")
                       )["data"]["actions"][0]
        assert created["action"] == "c2pa.created"
        assert actions[0].get("digitalSourceType") == created["digitalSourceType"] == (
            "http://cv.iptc.org/newscodes/digitalsourcetype/"
            + ("compositeWithTrainedAlgorithmicMedia" if item.image == "sc01_sh030_take1.png"
               else "trainedAlgorithmicMedia")), item.image
        with c2pa.Reader("image/png", io.BytesIO(copy.read_bytes()),
                         context=c2pa.Context.from_dict({"trust": {"user_anchors": signing_env.root.read_text()}})
                         ) as reader:
            assert reader.get_validation_state() == "Trusted"
    listing = json.loads((dest / "delivery.json").read_text())
    assert [e["image"] for e in listing["images"]] == names and listing["project"] == "delivery-test"
    checked = verify_folder(dest, signing_env.root)
    assert checked.failed == 0 and {(i.c2pa or {}).get("state") for i in checked.images} == {"Trusted"}
    assert len(checked.images) == 3
    # One flipped byte fails both the sidecar's hash and the signature.
    copy = dest / "sc01_sh020_take1.png"
    flipped = bytearray(copy.read_bytes())
    flipped[len(flipped) // 2] ^= 1
    copy.write_bytes(bytes(flipped))
    bad = [i for i in verify_folder(dest).images if not i.ok]
    assert [i.image["path"] for i in bad] == ["sc01_sh020_take1.png"]
    assert any("sha256" in p for p in bad[0].problems) and any("Invalid" in p for p in bad[0].problems)


def test_signed_takes_are_refused_without_credentials_unless_unsigned(project, engine_factory, signing_env,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out, dest = project / "renders", project.parent / "out-going"
    render_on_cpu(project / "shots.yaml", out, engine_factory, sign=True, only=["sc01_sh010"])
    monkeypatch.delenv("IDCLI_C2PA_CERT")
    monkeypatch.delenv("IDCLI_C2PA_KEY")
    with pytest.raises(DeliveryError, match="pass unsigned=True to deliver") as caught:  # named as Python names it
        deliver(out, dest)
    assert caught.value.exit_code == 2 and not dest.exists()  # nothing written
    run = subprocess.run([sys.executable, "-m", "idcli", "deliver", str(out), str(dest), "--json"],
                         capture_output=True, text=True, env=cli_env(), timeout=120)
    document = json.loads(run.stdout)
    assert run.returncode == 2 and document["exit_code"] == 2 and document["error"]["type"] == "DeliveryError"
    assert "pass --unsigned to deliver" in document["error"]["message"]  # and as the command line names it
    run = subprocess.run([sys.executable, "-m", "idcli", "deliver", str(out), str(project.parent / "by-cli"),
                          "--unsigned", "--json"], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert any("WITHOUT their C2PA signature (--unsigned)" in n for n in json.loads(run.stdout)["notes"]), run.stdout
    report = deliver(out, dest, unsigned=True)
    [item] = report.images
    assert item.signature == "not-carried" and any("WITHOUT their C2PA signature (unsigned=True)" in n
                                                   for n in report.notes), report.notes
    record = json.loads((dest / item.sidecar).read_text())
    assert record["delivery"]["signature"] == "not-carried" and "c2pa" not in record
    assert json.loads((dest / "delivery.json").read_text())["images"][0]["signature"] == "not-carried"
    assert b"caBX" not in (dest / item.image).read_bytes()
    assert verify_folder(dest).failed == 0


def test_a_manifest_signed_with_a_plate_folder_is_not_carried_out(project, engine_factory, signing_env,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Takes signed before org.idcli.render named files only carry the plate's path with its folder; their manifest
    # would travel whole as the copy's parent ingredient.
    import idcli.signing

    # The folder's name has a space: the advice is pasted into a shell.
    out = project / "old renders"
    with monkeypatch.context() as patch:
        patch.setattr(idcli.signing, "manifest_file_name", lambda path: path)
        render_on_cpu(project / "shots.yaml", out, engine_factory, sign=True, only=["sc01_sh030"])
    with pytest.raises(DeliveryError, match=r"names 'plates/two_people.png'.*deliver with unsigned=True") as caught:
        deliver(out, project.parent / "d1", shots="sc01_sh030")
    assert not (project.parent / "d1").exists()
    assert deliver(out, project.parent / "d2", shots="sc01_sh030", unsigned=True).images[0].signature == "not-carried"
    # The advice is a command that works pasted: this shot list rendered into this folder (without --out it rendered
    # into renders/<project>, another folder), and the delivery goes out signed after it.
    [command] = re.findall(r"\((idcli render .*?): this idcli signs file names only\)", str(caught.value))
    argv = shlex.split(command)
    assert argv == ["idcli", "render", str(project / "shots.yaml"), "--out", str(out), "--only", "sc01_sh030",
                    "--force", "--sign"], command
    run = subprocess.run([sys.executable, "-m", "idcli", *argv[1:]], capture_output=True, text=True, env=cli_env(),
                         cwd=project.parent, timeout=600)
    assert run.returncode == 0, run.stderr
    assert deliver(out, project.parent / "d1", shots="sc01_sh030").images[0].signature == "carried"


def test_where_a_delivery_may_go_and_what_it_never_overwrites(project, engine_factory) -> None:
    out = project / "renders"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010", "sc01_sh020"])
    for inside in (out, out / "client", out / "sc01_sh010"):
        with pytest.raises(DeliveryError, match="inside the output folder"):
            deliver(out, inside)
    with pytest.raises(DeliveryError, match="holds the output folder"):
        deliver(out, project)
    with pytest.raises(DeliveryError, match=r"no such shot.*did you mean 'sc01_sh020'"):
        deliver(out, project.parent / "d", shots="sc01_sh02O")
    with pytest.raises(DeliveryError, match="not rendered yet"):
        deliver(out, project.parent / "d", shots="sc01_sh030")
    dest = project.parent / "d"
    first = deliver(out, dest, shots="sc01_sh020")  # no select: the first take QA did not flag (QA is off here)
    assert [(i.image, i.status, i.selected) for i in first.images] == [("sc01_sh020_take1.png", "written", False)]
    again = deliver(out, dest, all_takes=True)
    assert [(i.image, i.status) for i in again.images] == [
        ("sc01_sh010_take1.png", "written"), ("sc01_sh020_take1.png", "unchanged"), ("sc01_sh020_take2.png", "written")]
    assert any("not rendered yet, not delivered: sc01_sh030 (" in n for n in again.notes)
    # A file there that is not this delivery's is never replaced without force.
    other = dest / "sc01_sh010_take1.png"
    other.write_bytes(b"the client's own file")
    with pytest.raises(DeliveryError, match="force=True replaces them"):
        deliver(out, dest)
    assert other.read_bytes() == b"the client's own file"
    assert [i.status for i in deliver(out, dest, force=True).images] == ["replaced", "unchanged"]
    # An interrupted delivery (image written, killed before its sidecar) is finished, not refused; a dead
    # writer's temporary is removed.
    (dest / "sc01_sh010_take1.json").unlink()
    dead = dest / ".sc01_sh010_take1.png.999999-1.0123abcd.idcli-tmp"
    dead.write_bytes(b"partial")
    assert [i.status for i in deliver(out, dest).images] == ["written", "unchanged"]
    assert not dead.exists()
    listing = json.loads((dest / "delivery.json").read_text())
    assert [e["image"] for e in listing["images"]] == [  # earlier entries whose files are there are kept
        "sc01_sh010_take1.png", "sc01_sh020_take1.png", "sc01_sh020_take2.png"]
    assert verify_folder(dest).failed == 0
    # A retouched take is not delivered with the render's record.
    take = out / "sc01_sh010" / "sc01_sh010_t1.png"
    with Image.open(take) as image:
        image.convert("L").convert("RGB").save(take)
    with pytest.raises(DeliveryError, match="changed since it was committed"):
        deliver(out, project.parent / "e")


def test_a_delivery_into_another_output_folder_is_refused(project, engine_factory) -> None:
    """DEST an idcli output folder (another scene's renders): its delivery.json made idcli verify check only the
    delivered copies there, never its own renders again."""
    out, other = project / "renders", project.parent / "other-scene"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010"])
    shutil.copytree(out, other)
    with pytest.raises(DeliveryError, match=r"an idcli output folder.*idcli verify"):
        deliver(out, other)
    assert not (other / "delivery.json").exists() and verify_folder(other).images[0].image["path"].startswith(
        "sc01_sh010/")


def test_a_render_into_a_delivery_folder_is_refused(project, engine_factory) -> None:
    """The mirror of the test above: takes rendered into a delivery folder were never checked by idcli verify
    (its delivery.json makes it check the delivered copies only). Refused before anything is written (exit 2)."""
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010"])
    deliver(out, dest)
    before = sorted(p.relative_to(dest) for p in dest.rglob("*"))
    with pytest.raises(InputError, match=r"a delivery folder.*delivery\.json.*idcli verify") as caught:
        render_on_cpu(project / "shots.yaml", dest, engine_factory, only=["sc01_sh020"])
    assert caught.value.exit_code == 2 and caught.value.field == "out_dir"
    run = subprocess.run([sys.executable, "-m", "idcli", *render_argv(project / "shots.yaml", dest), "--dry-run"],
                         capture_output=True, text=True, env=cli_env(), timeout=120)
    assert run.returncode == 2 and "a delivery folder" in run.stderr, run.stderr
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == before  # nothing written, not even .idcli/
    assert verify_folder(dest).failed == 0


def test_verify_fails_a_delivery_edited_after_it_went_out(project, engine_factory) -> None:
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010", "sc01_sh020"])
    deliver(out, dest)
    sidecar = dest / "sc01_sh020_take1.json"
    record = json.loads(sidecar.read_text())
    record["identity"][0]["pack_path"] = str(project / "pack.idpack")
    sidecar.write_text(json.dumps(record))
    (dest / "sc01_sh010_take1.json").unlink()
    checks = {i.image["path"]: i for i in verify_folder(dest).images}
    assert not checks["sc01_sh010_take1.png"].ok and "no sidecar" in checks["sc01_sh010_take1.png"].problems[0]
    problems = checks["sc01_sh020_take1.png"].problems
    assert any("record is not its sidecar's" in p for p in problems)
    assert any("local path at identity[0].pack_path" in p for p in problems)
    run = subprocess.run([sys.executable, "-m", "idcli", "verify", str(dest), "--json"], capture_output=True,
                         text=True, env=cli_env(), timeout=120)
    assert run.returncode == 6 and json.loads(run.stdout)["counts"]["failed"] == 2


def test_reproduce_of_a_delivered_frame_finds_its_take_in_the_studio(project, engine_factory,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from idcli.reproduce import ReproduceError, reproduce

    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])
    [item] = deliver(out, dest).images
    frame = dest / item.image
    made = reproduce(frame, delivered_from=out, engine_factory=engine_factory)
    assert made.identical and made.image == str(out / "sc01_sh020" / "sc01_sh020_t1.png")
    assert any("delivery copy of" in n for n in made.notes) and any("unchanged" in n for n in made.notes)
    monkeypatch.chdir(project.parent)  # no renders/PROJECT here: it says how
    with pytest.raises(ReproduceError, match=r"take sc01_sh020_t1 .*reproduce\('.*sc01_sh020_take1\.png', "
                                             r"delivered_from=OUT\)"):  # as Python calls it
        reproduce(frame, engine_factory=engine_factory)
    said = cli_in_process("reproduce", frame, "--json")  # and as the command line is typed
    assert said.exit_code == 2 and f"idcli reproduce {frame} --from OUT" in json.loads(said.stdout)["error"]["message"]
    monkeypatch.chdir(project)  # render's default --out, renders/PROJECT, is found without --from
    (project / "renders").rename(project / "renders-tmp")
    (project / "renders").mkdir()
    (project / "renders-tmp").rename(project / "renders" / "delivery-test")
    assert reproduce(frame, engine_factory=engine_factory).identical


def test_a_select_the_shot_list_no_longer_has_is_not_delivered_as_the_shot(project, engine_factory) -> None:
    """The director picked take 2, then the shot list cut the shot to one take: take 2 is an orphan (select
    refuses to pick one). deliver sent it as the shot's select anyway, while --all-takes left it out."""
    out = project / "renders"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])
    select(out, ["sc01_sh020=2"])
    (project / "shots.yaml").write_text(SHOTS.replace("expression: hope, takes: 2", "expression: hope"), "utf-8")
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])  # take 1 done: nothing rendered
    dest = project.parent / "d"
    with pytest.raises(DeliveryError, match=r"sc01_sh020.*select.*take 2.*no longer in the shot list"):
        deliver(out, dest)
    assert not dest.exists()
    assert [(i.image, i.selected) for i in deliver(out, dest, all_takes=True).images] == [
        ("sc01_sh020_take1.png", False)]


def test_a_hand_edited_delivery_listing_is_kept_not_a_traceback(project, engine_factory) -> None:
    """An earlier delivery.json whose entry has a take written as text or a shot id that is no text (a hand edit,
    another tool) was sorted with this delivery's entries: TypeError, a traceback, and nothing delivered."""
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])
    deliver(out, dest, all_takes=True)
    for edit in ({"take": "1"}, {"shot_id": ["sc01_sh020"]}, {"shot_id": None, "take": [1]}):
        listing = json.loads((dest / "delivery.json").read_text())
        kept = next(e for e in listing["images"] if e["image"] == "sc01_sh020_take2.png")  # not delivered below
        kept.update(edit)
        (dest / "delivery.json").write_text(json.dumps(listing))
        again = deliver(out, dest, shots="sc01_sh020")
        assert [(i.image, i.status) for i in again.images] == [("sc01_sh020_take1.png", "unchanged")]
        entries = json.loads((dest / "delivery.json").read_text())["images"]
        assert sorted(e["image"] for e in entries) == ["sc01_sh020_take1.png", "sc01_sh020_take2.png"]


@pytest.mark.parametrize("shot", ["/etc", "../../secrets", "sc01/sh010", "sc01_sh0*", ""])
def test_reproduce_of_a_delivered_frame_whose_record_names_no_shot_id_builds_no_path_from_it(
        tmp_path: Path, shot: str) -> None:
    """A frame comes back from outside: its record's shot id (and project) become paths under OUT and a glob,
    so one that is no idcli id is a clear error, not a read outside OUT or a traceback (an absolute one was
    pathlib's NotImplementedError)."""
    from idcli.reproduce import ReproduceError, reproduce

    (tmp_path / "out").mkdir()
    frame = tmp_path / "dest" / "sc01_sh010_take1.json"
    frame.parent.mkdir()
    frame.write_text(json.dumps({
        "job_key": "idcli-job-v2:" + "ab" * 32, "project": "../../etc", "image": {"path": "sc01_sh010_take1.png"},
        "delivery": {"source": {"shot_id": shot, "take": 1, "sha256": "cd" * 32,
                                "job_key": "idcli-job-v2:" + "ab" * 32}}}))
    with pytest.raises(ReproduceError, match="no idcli shot id"):
        reproduce(frame, delivered_from=tmp_path / "out")
    with pytest.raises(ReproduceError, match="no idcli shot id"):
        reproduce(frame)


def test_the_delivery_record_reduces_every_path_kind_to_a_name() -> None:
    sidecar = {
        "job_key": "idcli-job-v2:abc", "shot_id": "s", "take": 1, "prompt": "a street, 1/2 moon",
        "model": {"source": "local", "id": "/Users/jane/models/my-finetune", "hash": "idcli-local-v1:1"},
        "identity": [{"name": "mara", "pack_path": "/Users/jane/.cache/idcli/identities/x.idpack",
                      "pack_file": "packs/mara.idpack", "selfie_files": [
                          {"path": "cast/Jane Doe.jpg", "abs_path": "/Users/jane/cast/Jane Doe.jpg", "sha256": "aa"}],
                      "face_models": {"folder": "C:\\models\\buffalo_l", "hash": "h", "files": {"det.onnx": "bb"}},
                      "clip_features": {"cache": "/Users/jane/.cache/c.safetensors", "sha256": "cc"},
                      "adapter": {"source": "local", "id": "D:\\adapters\\faceid.safetensors", "weight_sha256": "dd",
                                  "image_encoder": {"source": "local", "id": "/Users/jane/enc", "content_hash": "e"}}}],
        "plate": {"path": "../plates/p.png", "abs_path": "/Users/jane/plates/p.png", "sha256": "ff",
                  "mask": "s/s_t1.mask.png"},
        "image": {"path": "s/s_t1.png", "abs_path": "/o/s/s_t1.png", "width": 8, "height": 8, "sha256": "00"},
        "software": {"python": "3.11"}, "future_field": "/Users/jane/somewhere/file.bin",
        "batch": {"job_keys": []}, "timing": {}, "executor": {"host": "render-07"}, "qa": {}, "fusion": {},
    }
    record = delivery_record(sidecar, delivered_name="s_take1.png", source_name="s_t1.png", source_sha256="00",
                             signature="none")
    _assert_no_local_path(record, "record")
    assert "/" not in json.dumps(record).replace("1/2 moon", "").replace("idcli-", "")  # no folder anywhere
    assert record["model"]["id"] == "my-finetune" and record["plate"] == {"path": "p.png", "sha256": "ff"}
    character = record["identity"][0]
    assert character["selfie_files"] == [{"sha256": "aa"}] and "pack_file" not in character
    assert character["face_models"] == {"hash": "h", "files": {"det.onnx": "bb"}}
    assert character["adapter"]["id"] == "faceid.safetensors" and character["adapter"]["image_encoder"]["id"] == "enc"
    assert character["clip_features"] == {"sha256": "cc"}
    assert record["future_field"] == "file.bin" and record["prompt"] == "a street, 1/2 moon"
    assert not {"batch", "timing", "executor", "qa", "fusion"} & set(record)
    assert record["image"] == {"path": "s_take1.png", "width": 8, "height": 8}
    line = ("a street\nSteps: 2, Sampler: Euler, Size: 8x8, Model hash: 1, Model: my-finetune, "
            "idcli plate: ../plates/p.png, Version: idcli 0.1.0")
    assert parameters_without_paths(line, sidecar).endswith("Model: my-finetune, idcli plate: p.png, "
                                                            "Version: idcli 0.1.0")
    # What a signed render's manifest says travels with every copy: file names, no folders.
    from idcli.signing import manifest_for

    manifest = manifest_for(sidecar)
    assert "/Users/jane" not in json.dumps(manifest) and "../plates" not in json.dumps(manifest)
    render = next(a for a in manifest["assertions"] if a["label"] == "org.idcli.render")["data"]
    assert render["model"]["id"] == "my-finetune" and render["plate"]["path"] == "p.png"


def test_a_delivered_png_keeps_its_pixel_chunks_and_drops_unknown_text(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    from idcli.delivery_record import delivered_png

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a prompt ünïcode ✓\nSteps: 1, Model: m, Version: idcli 0.1.0")
    info.add_itxt("idcli", json.dumps({"image": {"width": 4, "height": 3}, "abs_path": "/secret"}))
    info.add_text("Comment", "made in /home/jane/secret")
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 3), (1, 2, 3, 4)).save(buffer, format="PNG", pnginfo=info)
    original = buffer.getvalue()
    record = {"image": {"path": "x.png", "width": 4, "height": 3}, "delivery": {"kind": "idcli-delivery-copy"}}
    parameters = text_chunk(original, "parameters")
    assert parameters and parameters.startswith("a prompt ünïcode ✓")  # written as iTXt by Pillow, read back
    copy = delivered_png(original, record, parameters)
    assert b"/secret" not in copy and b"/home/jane" not in copy
    assert read_png_record(copy) == record and text_chunk(copy, "parameters") == parameters
    assert [k for k, _ in png_chunks(copy) if k in (b"IHDR", b"IDAT", b"IEND")] == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(copy)) as b:
        assert a.mode == b.mode == "RGBA" and a.tobytes() == b.tobytes()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the hook names descriptors via /proc")
def test_a_delivery_killed_mid_write_leaves_nothing_partial_and_finishes_when_run_again(project, engine_factory
                                                                                        ) -> None:
    from idcli.store import TMP_SUFFIX

    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010", "sc01_sh020"])
    args = ["deliver", str(out), str(dest), "--all-takes", "--json"]

    def run(hook: tuple[str, int, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", SIGNAL_HOOK, *map(str, hook), *args] if hook else \
            [sys.executable, "-m", "idcli", *args]
        return subprocess.run(argv, capture_output=True, text=True, env=cli_env(), timeout=120)

    killed = run((str(dest), 2, "KILL"))  # the first image is in place; its sidecar's temporary fsynced, never renamed
    assert killed.returncode == -9, killed.stderr
    assert sorted(p.name for p in dest.iterdir() if not p.name.endswith(TMP_SUFFIX)) == ["sc01_sh010_take1.png"]
    assert len(list(dest.glob(f"*{TMP_SUFFIX}"))) == 1
    assert verify_folder(out).failed == 0  # OUT untouched
    stopped = run((str(dest), 3, "TERM"))  # the next image's write stopped by SIGTERM: finished or removed
    assert stopped.returncode == 143 and json.loads(stopped.stdout)["error"]["type"] == "Interrupted"
    assert not list(dest.glob(f"*{TMP_SUFFIX}"))
    again = run()
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert [i["image"]["path"] for i in document["images"]] == [
        "sc01_sh010_take1.png", "sc01_sh020_take1.png", "sc01_sh020_take2.png"]
    assert not list(dest.glob(f"*{TMP_SUFFIX}")) and verify_folder(dest).failed == 0


def test_the_json_counts_name_every_status_even_at_zero() -> None:
    """A wrapper reads ``counts["written"]`` after a delivery that only found files unchanged (docs/delivery.md)."""
    from idcli.delivery import Delivered, DeliveryReport

    item = Delivered(shot_id="sh010", take=1, selected=False, image="sh010_take1.png", sidecar="sh010_take1.json",
                     sha256="0" * 64, signature="none", random_weights=True, status="unchanged",
                     source={"job_key": "k", "image": {"path": "sh010/sh010_t1.png", "abs_path": "/x"}, "sha256": "1"})
    report = DeliveryReport(out_dir="/out", dest="/dest", project="p", images=[item])
    assert report.as_dict()["counts"] == {"written": 0, "replaced": 0, "unchanged": 1}
    assert DeliveryReport(out_dir="/out", dest="/dest", project="p").as_dict()["counts"] == {
        "written": 0, "replaced": 0, "unchanged": 0}


@pytest.mark.parametrize("bad", [{"shots": 5}, {"shots": [1]}, {"shots": {"sc01_sh010": 1}},
                                 {"credentials": "nope"}, {"credentials": 0}])
def test_deliver_from_python_refuses_arguments_of_the_wrong_type(tmp_path: Path, bad: dict[str, Any]) -> None:
    """``deliver(..., shots=5)`` was a TypeError, ``credentials="nope"`` passed unchecked: every public function
    raises InputError (exit 2) naming the argument (README, From Python); checked before the folders are read."""
    with pytest.raises(InputError, match=next(iter(bad))) as caught:
        deliver(tmp_path / "out", tmp_path / "dest", **bad)
    assert caught.value.exit_code == 2 and not (tmp_path / "dest").exists()


def test_deliver_from_python_takes_shots_as_any_collection_of_ids() -> None:
    """As ``render(only=...)``: one id, ids separated by commas, or a list, tuple or set of them."""
    from idcli.delivery import parse_shots

    assert parse_shots("a,b") == parse_shots(["a", "b"]) == parse_shots(("a", "b")) == ["a", "b"]
    assert sorted(parse_shots({"a", "b"}) or []) == ["a", "b"]


def test_a_shot_whose_every_take_qa_flagged_is_delivered_with_a_note(project, engine_factory) -> None:
    """No select and every take flagged by identity QA: deliver sent the first take (as the page and the animatic
    show it) without a word, so frames where QA found no face of the character went to the director unsaid. The
    note names each such shot, what QA found, and the two ways out; a picked take is the director's, not noted.
    The re-roll is a command to run as it stands: the folder's shot list and its --out (it said `idcli render FILE
    --retake-flagged`, which run with the shot list re-rolled into renders/<project>, not this folder)."""
    out = project / "renders"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010", "sc01_sh020"])
    flags = [json.loads((out / "sc01_sh020" / f"sc01_sh020_t{t}.json").read_text("utf-8"))["qa"]["flags"]
             for t in (1, 2)]
    assert all(flags), flags  # random weights: QA finds no face of mara in either take
    report = deliver(out, project.parent / "d")
    assert [i.image for i in report.images] == ["sc01_sh010_take1.png", "sc01_sh020_take1.png"]
    [note] = [n for n in report.notes if "QA flagged" in n]
    assert note == ("1 shot(s) delivered with a take identity QA flagged, none of their takes passing and none "
                    "picked: sc01_sh020 take 1 (no face found for mara); pick a take (idcli select "
                    f"{out} SHOT=N) or re-roll them (idcli render {project / 'shots.yaml'} --out {out} "
                    "--retake-flagged), then deliver again")
    select(out, ["sc01_sh020=2"])
    assert not [n for n in deliver(out, project.parent / "e").notes if "QA flagged" in n]


def test_shots_not_rendered_yet_are_named_in_one_note(project, engine_factory) -> None:
    """Shots of the shot list not rendered yet are left out with a note (docs/delivery.md): one note naming them, ten
    then a count, as export's gaps and deliver's other notes do (it was a line per shot: a film's first delivery of
    its opening scenes printed hundreds), with the render that makes them."""
    out = project / "renders"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010"])
    notes = [n for n in deliver(out, project.parent / "d").notes if "not rendered" in n]
    assert notes == [f"2 shot(s) of the shot list not rendered yet, not delivered: sc01_sh020, sc01_sh030 (idcli "
                     f"render {project / 'shots.yaml'} --out {out} renders them)"], notes


def test_a_select_of_a_shot_renamed_since_is_said_not_delivered(project, engine_factory) -> None:
    """The director picked take 2; at 2 a.m. the shot's misspelt id was fixed (a rename) and rendered. review and
    export said the pick of a shot no longer in the shot list is left out; deliver sent the renamed shot's first take
    in its place without a word."""
    out = project / "renders"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])
    select(out, ["sc01_sh020=2"])
    (project / "shots.yaml").write_text(SHOTS.replace("id: sc01_sh020", "id: sc01_sh025"), "utf-8")
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh025"])
    report = deliver(out, project.parent / "d")
    assert [(i.image, i.selected) for i in report.images] == [("sc01_sh025_take1.png", False)]
    assert (f"1 select(s) of shots no longer in the shot list (renamed or removed) are not delivered: sc01_sh020=t2 "
            f"(renamed: pick again under the new id, idcli select {out} SHOT=N; removed: SHOT=none clears the "
            "pick)") in report.notes, report.notes


def test_deliver_shots_of_a_renamed_shot_names_the_pick_made_under_its_old_id(project, engine_factory) -> None:
    """As above, delivered with ``--shots`` naming the new id: the note on picks of shots no longer in the shot list
    was for a delivery of every shot, so the renamed shot's default take went out unsaid, the pick made under its old
    id never mentioned. Its seeds written out, the rename reuses the picked image (job keys leave the shot id out):
    the note names both ids, the take holding that image and what to run."""
    out = project / "renders"
    seeded = SHOTS.replace("expression: hope, takes: 2}", "expression: hope, seeds: [3, 4]}")
    (project / "shots.yaml").write_text(seeded, "utf-8")
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])
    select(out, ["sc01_sh020=2"])
    (project / "shots.yaml").write_text(seeded.replace("id: sc01_sh020", "id: sc01_sh025"), "utf-8")
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh025"])
    report = deliver(out, project.parent / "d", shots="sc01_sh025")
    assert [(i.image, i.selected) for i in report.images] == [("sc01_sh025_take1.png", False)]
    assert [n for n in report.notes if "sc01_sh020" in n] == [
        f"sc01_sh025: no select under its new id; the director picked sc01_sh020 take 2 before the shot was renamed, "
        f"whose image is sc01_sh025 take 2 now: pick it there (idcli select {out} sc01_sh025=2), then deliver again"
    ], report.notes


def test_deliver_shots_says_picks_of_shots_gone_when_a_shot_asked_for_has_none(project, engine_factory) -> None:
    """Renamed with derived seeds (the seed comes from the id), the renamed shot renders other images: nothing ties it
    to the old pick. Delivered with ``--shots`` naming it, unpicked, the picks of shots no longer in the shot list are
    named as for a whole delivery, and the shot that may be one of them; a shot asked for with its own pick is not
    told of them."""
    out = project / "renders"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010", "sc01_sh020"])
    select(out, ["sc01_sh020=2", "sc01_sh010=1"])
    (project / "shots.yaml").write_text(SHOTS.replace("id: sc01_sh020", "id: sc01_sh025"), "utf-8")
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh025"])
    report = deliver(out, project.parent / "d", shots="sc01_sh025")
    assert [n for n in report.notes if "sc01_sh020" in n] == [
        f"1 select(s) of shots no longer in the shot list (renamed or removed) are not delivered: sc01_sh020=t2 "
        f"(renamed: pick again under the new id, idcli select {out} SHOT=N; removed: SHOT=none clears the pick); "
        "sc01_sh025, delivered without a select, may be one renamed"], report.notes
    picked = deliver(out, project.parent / "e", shots="sc01_sh010")
    assert not [n for n in picked.notes if "sc01_sh020" in n], picked.notes
