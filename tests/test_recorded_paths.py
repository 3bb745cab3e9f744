"""Recorded input paths survive moving the whole project folder (shot list, selfies, renders) to
another place or machine: sidecars record each selfie as the shot list gives it (relative to the shot
list) beside the path it resolved to, the run manifest records where the shot list is from the output
folder, and reproduce and export find the files through them (docs/provenance.md, docs/file-formats.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import idcli
from idcli.reproduce import reproduce
from idcli.store import OutputStore

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SHOTS = """\
version: 1
project: moving
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1, guidance: 1.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
shots:
  - {id: face, prompt: "{mara} on a street", takes: 1}
"""


@pytest.fixture
def rendered(tmp_path: Path, selfies: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """'a project/' (shot list, selfies, renders), rendered with paths relative to the cwd."""
    project = tmp_path / "a project"
    project.mkdir()
    shutil.copytree(selfies, project / "selfies")
    (project / "shots.yaml").write_text(SHOTS, "utf-8")
    monkeypatch.chdir(tmp_path)
    report = idcli.render(idcli.load_shotlist("a project/shots.yaml"), "a project/renders", device="cpu",
                          engine_factory=engine_factory)
    assert report.rendered == 1
    return project


def _moved(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "another machine" / "moved project"
    target.parent.mkdir()
    shutil.move(str(project), str(target))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return target


def test_sidecars_record_selfies_as_the_shot_list_gives_them(rendered: Path) -> None:
    sidecar = json.loads((rendered / "renders/face/face_t1.json").read_text("utf-8"))
    files = sidecar["identity"][0]["selfie_files"]
    assert [f["path"] for f in files] == ["selfies/mara_1.jpg", "selfies/mara_2.jpg"]
    assert [f["abs_path"] for f in files] == [str((rendered / p).absolute()) for p in
                                              ("selfies/mara_1.jpg", "selfies/mara_2.jpg")]
    manifest = OutputStore(rendered / "renders").read_manifest()
    assert manifest is not None
    assert manifest["file"] == "a project/shots.yaml" and manifest["file_relpath"] == "../shots.yaml"


def test_reproduce_finds_the_selfies_after_the_project_moved(rendered: Path, tmp_path: Path, engine_factory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    moved = _moved(rendered, tmp_path, monkeypatch)
    report = reproduce(moved / "renders/face/face_t1.json", engine_factory=engine_factory)
    assert report.status == "identical"
    # a selfie edited after the move is still found changed, not silently used
    (moved / "selfies/mara_2.jpg").write_bytes((moved / "selfies/mara_1.jpg").read_bytes())
    with pytest.raises(idcli.IdcliError, match=r"mara_2.jpg of 'mara' changed since the render"):
        reproduce(moved / "renders/face/face_t1.json", engine_factory=engine_factory)


def test_an_older_sidecar_with_absolute_selfie_paths_still_reproduces(rendered: Path, engine_factory) -> None:
    path = rendered / "renders/face/face_t1.json"
    sidecar = json.loads(path.read_text("utf-8"))
    for entry in sidecar["identity"]:
        entry["selfie_files"] = [{"path": f["abs_path"], "sha256": f["sha256"]} for f in entry["selfie_files"]]
    path.write_text(json.dumps(sidecar), "utf-8")
    (rendered / "renders/.idcli/shotlist.jsonl").unlink()  # and a folder without a manifest
    assert reproduce(path, engine_factory=engine_factory).status == "identical"


def test_the_animatic_names_the_shot_list_relative_to_itself(rendered: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opentimelineio")
    import opentimelineio as otio

    from idcli.review.export import export_otio
    from idcli.review.runs import load_run

    moved = _moved(rendered, tmp_path, monkeypatch)
    export_otio(load_run(moved / "renders"), moved / "editorial" / "cut.otio")
    timeline = otio.adapters.read_from_file(str(moved / "editorial" / "cut.otio"))
    meta = timeline.metadata["idcli"]
    assert meta["shot_list"] == "../shots.yaml" and meta["output_folder"] == "../renders/"


def test_reproduce_finds_an_identity_pack_after_the_project_moved(tmp_path: Path, selfies: Path, engine_factory,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    project = tmp_path / "a project"
    (project / "packs").mkdir(parents=True)
    made = CliRunner().invoke(app, ["encode-identity", str(selfies / "mara_1.jpg"), str(selfies / "mara_2.jpg"),
                                    "--name", "mara", "-o", str(project / "packs/mara.idpack"),
                                    "--face-models", "synthetic"])
    assert made.exit_code == 0, made.output
    (project / "shots.yaml").write_text(SHOTS.replace("{selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}",
                                                      "{identity: packs/mara.idpack}"), "utf-8")
    monkeypatch.chdir(tmp_path)
    idcli.render(idcli.load_shotlist("a project/shots.yaml"), "a project/renders", device="cpu",
                 engine_factory=engine_factory)
    entry = json.loads((project / "renders/face/face_t1.json").read_text("utf-8"))["identity"][0]
    assert entry["pack_file"] == "packs/mara.idpack"
    assert entry["pack_path"] == str((project / "packs/mara.idpack").absolute())
    moved = _moved(project, tmp_path, monkeypatch)
    assert reproduce(moved / "renders/face/face_t1.png", engine_factory=engine_factory).status == "identical"
    (moved / "packs/mara.idpack").unlink()
    with pytest.raises(idcli.IdcliError, match=r"identity pack .*packs/mara.idpack of 'mara' is missing"):
        reproduce(moved / "renders/face/face_t1.png", engine_factory=engine_factory)


def test_an_older_sidecar_reproduces_after_the_project_moved(rendered: Path, tmp_path: Path, engine_factory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A project an older idcli rendered (selfies recorded by absolute path only, a manifest without
    ``file_relpath``), then moved with today's: the selfies are found where they sit in the moved project."""
    path = rendered / "renders/face/face_t1.json"
    sidecar = json.loads(path.read_text("utf-8"))
    for entry in sidecar["identity"]:
        entry["selfie_files"] = [{"path": f["abs_path"], "sha256": f["sha256"]} for f in entry["selfie_files"]]
    path.write_text(json.dumps(sidecar), "utf-8")
    manifest_path = rendered / "renders/.idcli/shotlist.jsonl"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    del manifest["file_relpath"]
    manifest_path.write_text(json.dumps(manifest) + "\n", "utf-8")
    moved = _moved(rendered, tmp_path, monkeypatch)
    assert reproduce(moved / "renders/face/face_t1.json", engine_factory=engine_factory).status == "identical"
    # a same-named file of other content beside the moved shot list is never taken for the selfie
    (moved / "selfies/mara_2.jpg").write_bytes((moved / "selfies/mara_1.jpg").read_bytes())
    with pytest.raises(idcli.IdcliError, match=r"mara_2.jpg of 'mara' changed since the render"):
        reproduce(moved / "renders/face/face_t1.json", engine_factory=engine_factory)
