"""Regression tests for problems found in review: links in the state folder, unchecked placeholders,
keys that moved without pixels moving, damaged pack metadata, the synthetic face-model shortcut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.errors import OutputError
from idcli.store import OutputStore

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SHOTS = """\
version: 1
project: hardening
defaults: {size: 64x64, steps: 2, guidance: 4.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: a, prompt: "{mara} in the rain"}
"""


@pytest.mark.parametrize("planted", ["lock", "journal.jsonl"])
def test_links_inside_the_state_folder_are_never_written_through(tmp_path: Path, planted: str) -> None:
    outside = tmp_path / "important.txt"
    outside.write_text("precious data\n")
    out = tmp_path / "out"
    (out / ".idcli").mkdir(parents=True)
    (out / ".idcli" / planted).symlink_to(outside)
    store = OutputStore(out)
    if planted == "lock":
        with pytest.raises(OutputError, match="symbolic link"), store.session():
            pass
    else:
        with store.session():
            store.journal({"event": "test"})
    assert outside.read_text() == "precious data\n"


def test_a_linked_state_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".idcli").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link"), OutputStore(out).session():
        pass
    assert not list(elsewhere.iterdir())


@pytest.mark.parametrize("negative,message", [
    ("blurry {bob}", "names no character"),
    ("{mara:>300000000}", "is not a character placeholder"),
    ("{mara.__class__}", "is not a character placeholder"),
])
def test_default_negative_prompt_placeholders_are_validated(write_shotlist, negative: str, message: str) -> None:
    path = write_shotlist(SHOTS.replace("guidance: 4.0}", f"guidance: 4.0, negative_prompt: '{negative}'}}"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "defaults.negative_prompt" in result.stderr and message in result.stderr


def test_prompts_substitute_names_only(write_shotlist) -> None:
    loaded = idcli.load_shotlist(write_shotlist(SHOTS.replace('"{mara} in the rain"', '"{mara} {{literal}} rain"')))
    from idcli.plan import resolve_prompt

    assert resolve_prompt(loaded.shotlist.shots[0].prompt, loaded) == "mara {literal} rain"


def test_without_guidance_the_negative_prompt_does_not_change_keys(write_shotlist) -> None:
    def keys(text: str) -> list[str]:
        plan, _ = idcli.plan_shotlist(idcli.load_shotlist(write_shotlist(text)), device="cpu")
        return [j.key for j in plan.jobs]

    off = SHOTS.replace("guidance: 4.0", "guidance: 1.0")
    assert keys(off) == keys(off.replace("guidance: 1.0}", "guidance: 0.5, negative_prompt: blurry}"))
    assert keys(SHOTS) != keys(SHOTS.replace("guidance: 4.0}", "guidance: 4.0, negative_prompt: blurry}"))


def test_pack_with_damaged_metadata_is_a_clear_error(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save

    from idcli.identity import PackError, read_pack
    from idcli.identity.pack import PACK_FORMAT, REQUIRED_TENSORS

    tensors = {name: np.zeros((1, 4), dtype=np.float32) for name in REQUIRED_TENSORS}
    tensors["embedding"] = np.ones(512, dtype=np.float32) / np.sqrt(512)
    path = tmp_path / "list.idpack"
    path.write_bytes(save(tensors, metadata={"format": PACK_FORMAT, "schema": "1", "meta": json.dumps([1, 2])}))
    with pytest.raises(PackError, match="metadata is damaged"):
        read_pack(path)


def test_encode_identity_with_the_synthetic_face_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("insightface", exc_type=ImportError)
    monkeypatch.delenv("IDCLI_FACE_MODELS")
    out = tmp_path / "mara.idpack"
    result = runner.invoke(app, ["encode-identity", str(ROOT / "recipes" / "selfies" / "mara_1.jpg"), "--name",
                                 "mara", "-o", str(out), "--face-models", "synthetic"])
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.stderr and out.is_file()


def test_unexpected_file_system_errors_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    pytest.importorskip("insightface", exc_type=ImportError)
    result = runner.invoke(app, ["encode-identity", str(ROOT / "recipes" / "selfies" / "mara_1.jpg"), "--name",
                                 "mara", "-o", str(blocker / "mara.idpack")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
