"""Absolute paths as idcli prints and records them (``out_dir``, each file's ``abs_path``, a selfie's or plate's
``abs_path`` in a sidecar): made absolute without ``..`` where a relative path had it (``/a/b/../c`` read as
``/a/c``), and without resolving the symlinks the user named, except where a ``..`` steps out of one, which the
system reads as the parent of the link's target. The images are the review tests' drawn faces: no model is built.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from review_helpers import SELFIES, FaceEngine, cli

from idcli.paths import absolute

SHOTS = """\
version: 1
project: harbour
model: {preset: tiny-sd}
defaults: {size: 128x128, steps: 2, guidance: 2.0, takes: 1}
characters:
  mara: {selfies: [cast/../selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - id: sh010
    prompt: "{mara} on the harbour wall"
"""


def test_absolute_drops_dot_dot_and_keeps_the_symlinks_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "project" / "renders").mkdir(parents=True)
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    (tmp_path / "project" / "link").symlink_to(tmp_path / "elsewhere" / "deep")
    monkeypatch.chdir(tmp_path / "project")
    assert absolute("renders/../out") == tmp_path / "project" / "out"
    assert absolute("../project/./renders") == tmp_path / "project" / "renders"
    assert absolute(tmp_path / "project" / "renders" / "..") == tmp_path / "project"
    assert absolute("link/x") == tmp_path / "project" / "link" / "x"  # the link the user named is kept
    # ".." out of a link is the parent of its target, as the system reads it (not the folder holding the link)
    assert absolute("link/../x") == tmp_path / "elsewhere" / "x"
    assert (tmp_path / "project" / "link" / "..").resolve() == tmp_path / "elsewhere"
    assert absolute("not/made/../yet") == tmp_path / "project" / "not" / "yet"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import idcli.run as run_module

    engine = FaceEngine()
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: engine)
    shutil.copytree(SELFIES, tmp_path / "selfies")
    (tmp_path / "cast").mkdir()
    (tmp_path / "shots.yaml").write_text(SHOTS, "utf-8")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _paths(document: object) -> list[str]:
    """Every value of an ``out_dir`` or ``abs_path`` key in a JSON document."""
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("out_dir", "abs_path") and isinstance(value, str):
                found.append(value)
            found += _paths(value)
    elif isinstance(document, list):
        for item in document:
            found += _paths(item)
    return found


def test_documents_and_sidecars_record_paths_without_dot_dot(project: Path) -> None:
    out = project / "out"
    planned = json.loads(cli("plan", "shots.yaml", "--out", "sub/../out", "--device", "cpu", "--json").stdout)
    rendered = cli("render", "shots.yaml", "--out", "sub/../out", "--device", "cpu", "--json")
    assert rendered.exit_code == 0, rendered.output
    verified = json.loads(cli("verify", "sub/../out", "--json").stdout)
    for document in (planned, json.loads(rendered.stdout), verified):
        paths = _paths(document)
        assert paths and all(os.sep + ".." not in path for path in paths), paths
        assert str(out) in paths
    assert json.loads(rendered.stdout)["jobs"][0]["image"]["abs_path"] == str(out / "sh010" / "sh010_t1.png")
    sidecar = json.loads((out / "sh010" / "sh010_t1.json").read_text("utf-8"))
    ((selfie,),) = [identity["selfie_files"] for identity in sidecar["identity"]]
    assert selfie["path"] == "cast/../selfies/mara_1.jpg"  # as the shot list gives it
    assert selfie["abs_path"] == str(project / "selfies" / "mara_1.jpg")


def test_a_relative_xdg_cache_home_is_ignored_as_the_spec_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The XDG Base Directory spec: a relative path in XDG_CACHE_HOME is invalid and ignored (~/.cache then). idcli
    used it, against whatever folder the process was in at each use: a cache per folder."""
    from idcli.paths import state_dir

    monkeypatch.delenv("IDCLI_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    assert state_dir() == tmp_path / "home" / ".cache" / "idcli"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "idcli"
