"""Everyday trust (issue 18, part B): the scriptable contract, checked library arguments, renders that are
never silently lost (superseded, retouched, another project's), orphans, local failures, YAML hints.

Each test is named after the bullet of the issue it guards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli_env, render_argv
from typer.testing import CliRunner

import idcli
from idcli.cli import app

runner = CliRunner()

TEXT_SHOTS = """\
version: 1
project: trust
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
shots:
  - id: a010
    prompt: "a lighthouse in a storm"
    takes: 2
  - id: a020
    prompt: "a bar at night"
"""


@pytest.fixture
def cached_engine(monkeypatch: pytest.MonkeyPatch, tiny_engines) -> None:
    """The CLI reuses the session's tiny engines (building one costs seconds)."""
    import idcli.run as run_module

    monkeypatch.setattr(run_module, "_default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))


def _one_json_document(stdout: str) -> dict[str, Any]:
    """stdout holds exactly one JSON document (json.loads refuses trailing data)."""
    document = json.loads(stdout)
    assert isinstance(document, dict), document
    assert {"ok", "exit_code", "error"} <= set(document), sorted(document)
    return document


# -- scriptable contract ------------------------------------------------------------------------------


def test_json_contract_on_failure(write_shotlist, tmp_path: Path, cached_engine: None) -> None:
    bad = write_shotlist(TEXT_SHOTS.replace("steps: 2", "stpes: 2").replace("sampler: euler", "sampler: eular"),
                         "bad.yaml")
    for command in (["validate", str(bad)], ["plan", str(bad), "--device", "cpu"],
                    ["render", str(bad), "--device", "cpu", "--out", str(tmp_path / "o")]):
        result = runner.invoke(app, [*command, "--json"])
        assert result.exit_code == 2, result.output
        document = _one_json_document(result.stdout)
        assert document["ok"] is False and document["exit_code"] == 2
        error = document["error"]
        assert error["type"] == "ShotListError" and error["file"] == str(bad)
        assert len(error["problems"]) == 2
        for problem in error["problems"]:
            assert {"file", "line", "column", "field", "message", "hint"} <= set(problem)
            assert problem["file"] == str(bad) and isinstance(problem["line"], int)
        assert {p["field"] for p in error["problems"]} == {"defaults.stpes", "defaults.sampler"}
        assert (error["line"], error["column"]) == (error["problems"][0]["line"], error["problems"][0]["column"])
        assert "stpes" in result.stderr  # people still read the problems on stderr

    good = write_shotlist(TEXT_SHOTS)
    # An option value refused by idcli: its message, and still one document.
    refused = runner.invoke(app, ["render", str(good), "--batch-size", "lots", "--json"])
    assert refused.exit_code == 2 and "--batch-size" in _one_json_document(refused.stdout)["error"]["message"]
    # An unusable output folder (a file in the way) has its own exit code, and says so in JSON.
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    result = runner.invoke(app, ["render", str(good), "--out", str(blocked), "--device", "cpu", "--json", "-q"])
    assert result.exit_code == idcli.EXIT_OUTPUT_UNUSABLE == 5, result.output
    document = _one_json_document(result.stdout)
    assert document["exit_code"] == 5 and "is not a folder" in document["error"]["message"]
    # Success has the same head.
    ok = _one_json_document(runner.invoke(app, ["validate", str(good), "--json"]).stdout)
    assert (ok["ok"], ok["exit_code"], ok["error"], ok["shot_count"], ok["job_count"]) == (True, 0, None, 2, 3)
    expressions = _one_json_document(runner.invoke(app, ["expressions", "--json"]).stdout)
    assert expressions["ok"] and len(expressions["terms"]) == 136


def test_json_contract_on_usage_errors() -> None:
    """Click's own errors (an unknown option) also give the JSON document when --json is on the line."""
    done = subprocess.run([sys.executable, "-m", "idcli", "validate", "--json", "--no-such-option", "x.yaml"],
                          capture_output=True, text=True, env=cli_env(), timeout=120)
    assert done.returncode == 2, done.stderr
    document = _one_json_document(done.stdout)
    assert document["error"]["type"] == "UsageError" and "--no-such-option" in document["error"]["message"]


def test_one_name_and_one_form_across_plan_render_and_results(write_shotlist, tmp_path: Path,
                                                              cached_engine: None) -> None:
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    render = _one_json_document(runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu",
                                                    "--json", "-q"]).stdout)
    plan = _one_json_document(runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu",
                                                  "--json"]).stdout)
    results = {r["job_key"]: r for r in idcli.read_results(out)}
    assert render["out_dir"] == plan["out_dir"] == str(out.absolute())
    assert render["model"] == plan["model"]
    assert render["model"] == {k: v for k, v in next(iter(results.values()))["model"].items()}
    for made, planned in zip(render["jobs"], plan["jobs"], strict=True):
        record = results[made["job_key"]]
        sidecar = json.loads(Path(made["sidecar"]["abs_path"]).read_text())
        assert made["job_key"] == planned["job_key"] == sidecar["job_key"]
        assert made["shot_id"] == planned["shot_id"] == sidecar["shot_id"] == record["shot_id"]
        assert made["image"] == planned["image"] == {"path": sidecar["image"]["path"],
                                                     "abs_path": record["image"]["abs_path"]}
        assert made["sidecar"] == planned["sidecar"] == record["sidecar"]
        assert planned["size"] == sidecar["size"] and planned["sampler"] == sidecar["sampler"]
    journal = [json.loads(line) for line in (out / ".idcli" / "journal.jsonl").read_text().splitlines()]
    assert {e["job_key"] for e in journal if e["event"] == "commit"} == set(results)


def test_closed_stdout_pipe_keeps_the_exit_code(write_shotlist, tmp_path: Path) -> None:
    """A reader that closed its end of the pipe early (``| head -c0``) does not make a finished run exit 1."""
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the run's one write to stdout meets EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "idcli", *render_argv(path, out, "--json", "-q")],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, env=cli_env(), timeout=300)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
    assert len(list(out.glob("*/*.json"))) == 3


# -- library arguments checked --------------------------------------------------------------------------


def test_library_arguments_checked(write_shotlist, tmp_path: Path, engine_factory) -> None:
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    loaded = idcli.load_shotlist(path)
    bad_calls = {
        "batch_size=0": dict(batch_size=0), "batch_size=-1": dict(batch_size=-1),
        "batch_size='4'": dict(batch_size="4"), "batch_size='big'": dict(batch_size="big"),
        "batch_size=2.5": dict(batch_size=2.5), "batch_size=True": dict(batch_size=True),
        "only=5": dict(only=5), "only=[]": dict(only=[]), "force='yes'": dict(force="yes"),
        "progress=object()": dict(progress=object()), "device=None": dict(device=None),
    }
    for label, kwargs in bad_calls.items():
        with pytest.raises(idcli.InputError) as caught:
            idcli.render(loaded, out, engine_factory=engine_factory, **kwargs)
        name = label.split("=")[0]
        assert name in str(caught.value), (label, str(caught.value))
        assert caught.value.exit_code == idcli.EXIT_INVALID_INPUT
    assert not out.exists(), "a refused call wrote nothing"
    with pytest.raises(idcli.InputError, match="give the output folder"):
        idcli.render(loaded, None, engine_factory=engine_factory)  # type: ignore[arg-type]
    with pytest.raises(idcli.InputError, match="shot list"):
        idcli.render(42, out, engine_factory=engine_factory)  # type: ignore[arg-type]
    with pytest.raises(idcli.InputError, match="load_shotlist"):
        idcli.load_shotlist(None)  # type: ignore[arg-type]
    with pytest.raises(idcli.InputError, match="no such output folder"):
        idcli.read_results(tmp_path / "missing")
    with pytest.raises(idcli.InputError, match="dtype"):
        idcli.plan_shotlist(loaded, device="cpu", dtype="float8")
    # A path where a shot list is expected is loaded; one shot id as a string is that shot, not its letters.
    report = idcli.render(str(path), out, device="cpu", only="a010", engine_factory=engine_factory)
    assert [(o.shot_id, o.status) for o in report.jobs] == [("a010", "rendered"), ("a010", "rendered")]
    plan, _ = idcli.plan_shotlist(path, device="cpu")
    assert [j.shot_id for j in plan.jobs] == ["a010", "a010", "a020"]
    # Every error class is exported, each with its documented exit code.
    codes = {"ShotListError": 2, "InputError": 2, "OutputBusyError": 3, "ModelUnavailableError": 4,
             "OutputError": 5}
    for name, code in codes.items():
        cls = getattr(idcli, name)
        assert issubclass(cls, idcli.IdcliError) and cls.exit_code == code and name in idcli.__all__
    assert issubclass(idcli.Interrupted, idcli.IdcliError)
