"""The shell-scripting tour: every command with ``--json`` answers bad input and a missing folder with one JSON
document on stdout (``ok: false``, ``exit_code`` the process's own, ``error`` typed) and the exit code
docs/file-formats.md gives — 2 for invalid input, 5 for an output path that cannot be used.

In one process (``idcli.cli.main``): every case fails before any model loads.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from idcli.cli import main

CASES = [
    ("validate missing.yaml", 2), ("validate bad.yaml", 2), ("plan missing.yaml", 2), ("plan bad.yaml", 2),
    ("plan good.yaml --out afile.txt", 5), ("render missing.yaml", 2), ("render good.yaml --batch-size 0", 2),
    ("render good.yaml --out afile.txt --device cpu", 5), ("expressions --category bogus", 2),
    ("encode-identity missing.jpg --name x", 2), ("identity show missing.idpack", 2), ("identity show afile.txt", 2),
    ("bench --arch bogus", 2), ("restore missing sh010_t1", 2), ("restore empty sh010_t1", 2),
    ("restore empty not-a-take", 2), ("restore missing sh010_t1 --list", 2), ("restore afile.txt sh010_t1 --list", 2),
    ("restore empty not-a-take --list", 2), ("reproduce missing.png", 2), ("reproduce afile.txt", 2),
    ("verify missing", 2), ("verify empty", 2), ("verify afile.txt", 2), ("deliver missing dest", 2),
    ("deliver empty dest", 2), ("qa missing", 2), ("qa empty", 2), ("evaluate missing", 2), ("evaluate empty", 2),
    ("models list --shotlist missing.yaml", 2), ("models fetch bogus", 2), ("render --bogus x", 2),
    ("deliver empty", 2), ("export missing --otio x.otio", 2), ("export empty --edl x.edl", 2), ("export empty", 2),
    ("select missing sh010=1", 2), ("select empty sh010=1", 2), ("select empty", 2), ("select empty sh010", 2),
    ("select empty --from afile.txt", 2), ("select empty --from missing.json", 2), ("review missing", 2),
    ("review empty", 2), ("review afile.txt", 2),
]
GOOD = """\
version: 1
project: tour
model: {preset: tiny-sd}
shots:
  - {id: sh010, prompt: "an empty street at night"}
"""


@pytest.mark.parametrize(("command", "code"), CASES, ids=[c for c, _ in CASES])
def test_a_failing_command_prints_one_json_document_with_its_exit_code(
        command: str, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile.txt").write_text("not a folder, not a pack")
    (tmp_path / "bad.yaml").write_text("version: 1\nproject: [oops\n")
    (tmp_path / "good.yaml").write_text(GOOD)
    monkeypatch.setattr(sys, "argv", ["idcli", *shlex.split(command), "--json"])
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    document = json.loads(out)  # one document, nothing else on stdout
    assert list(document)[:3] == ["ok", "exit_code", "error"], document
    assert document["ok"] is False and document["exit_code"] == ended.value.code == code, (document, err)
    assert document["error"]["type"] and document["error"]["message"] in err, (document, err)
