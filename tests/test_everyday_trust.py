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

    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
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
    bad_calls: dict[str, dict[str, Any]] = {  # wrong on purpose: what render refuses at run time
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
    assert issubclass(idcli.Interrupted, idcli.IdcliError) and idcli.Interrupted.exit_code == idcli.EXIT_INTERRUPTED


# -- superseded renders are kept ------------------------------------------------------------------------


def _render_json(path: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--json", "-q", *extra])
    return result.exit_code, _one_json_document(result.stdout), result.stderr


def _plan_json(path: Path, out: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    return _one_json_document(result.stdout)


def test_superseded_renders_are_kept(write_shotlist, tmp_path: Path, cached_engine: None) -> None:
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    assert _render_json(path, out)[0] == 0
    liked_png, liked_json = (out / "a010" / "a010_t1.png").read_bytes(), (out / "a010" / "a010_t1.json").read_bytes()
    second_take = (out / "a010" / "a010_t2.png").read_bytes()
    liked_key = json.loads(liked_json)["job_key"]
    path.write_text(TEXT_SHOTS.replace("in a storm", "at dawn"))  # the prompt edit
    code, report, _ = _render_json(path, out)
    assert code == 0 and report["counts"]["rendered"] == 2
    assert {(s["shot_id"], s["take"]) for s in report["superseded"]} == {("a010", 1), ("a010", 2)}
    label = liked_key.split(":")[1][:12]
    kept = out / ".idcli" / "superseded" / "a010"
    assert (kept / f"a010_t1.{label}.png").read_bytes() == liked_png
    assert (kept / f"a010_t1.{label}.json").read_bytes() == liked_json
    assert (out / "a010" / "a010_t1.png").read_bytes() != liked_png
    # plan lists what is kept; read_results() does not mistake it for a result.
    listed = {(v["shot_id"], v["take"], v["job_key"]) for v in _plan_json(path, out)["superseded"]}
    assert ("a010", 1, liked_key) in listed and len(listed) == 2
    assert len(list(idcli.read_results(out))) == 3
    # Restored: the liked take is back, byte for byte, and the newer one is kept in its place.
    newer = (out / "a010" / "a010_t1.png").read_bytes()
    restored = runner.invoke(app, ["restore", str(out), "a010_t1", "--json"])
    assert restored.exit_code == 0, restored.output
    assert _one_json_document(restored.stdout)["job_key"] == liked_key
    assert (out / "a010" / "a010_t1.png").read_bytes() == liked_png
    assert (out / "a010" / "a010_t1.json").read_bytes() == liked_json
    assert any(p.read_bytes() == newer for p in kept.glob("a010_t1.*.png"))
    missing = runner.invoke(app, ["restore", str(out), "a010_t1", "--key", "ffffffffffff"])
    assert missing.exit_code == 2 and "no kept version" in missing.stderr
    # The edit undone in the shot list: the kept take of exactly that job is put back, not rendered again.
    path.write_text(TEXT_SHOTS)
    code, report, _ = _render_json(path, out)
    assert code == 0 and (report["counts"]["restored"], report["counts"]["rendered"]) == (1, 0)
    assert [j["status"] for j in report["jobs"]] == ["skipped", "restored", "skipped"]
    assert (out / "a010" / "a010_t2.png").read_bytes() == second_take


def test_summary_line_counts_restored_takes(write_shotlist, tmp_path: Path, cached_engine: None) -> None:
    """An edit undone puts the earlier take back: the human summary says so (it said '0 rendered, 2 skipped')."""
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    assert _render_json(path, out)[0] == 0
    path.write_text(TEXT_SHOTS.replace("a bar at night", "a bar at noon"))
    assert _render_json(path, out)[0] == 0
    path.write_text(TEXT_SHOTS)  # the edit undone
    human = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu"])
    assert human.exit_code == 0, human.output
    assert "0 rendered, 2 skipped, 1 restored, 0 recovered, 0 failed" in human.stdout, human.stdout


def test_superseding_survives_a_kill_between_the_moves(write_shotlist, tmp_path: Path, cached_engine: None) -> None:
    """Killed after the image moved aside but before its sidecar: the next run moves the sidecar to its pair."""
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    _render_json(path, out)
    old_json = (out / "a020" / "a020_t1.json").read_bytes()
    label = json.loads(old_json)["job_key"].split(":")[1][:12]
    kept = out / ".idcli" / "superseded" / "a020"
    kept.mkdir(parents=True)
    os.rename(out / "a020" / "a020_t1.png", kept / f"a020_t1.{label}.png")  # the first rename of a killed run
    path.write_text(TEXT_SHOTS.replace("a bar at night", "a bar at noon"))
    assert _render_json(path, out)[0] == 0
    assert (kept / f"a020_t1.{label}.json").read_bytes() == old_json
    assert sorted(p.name for p in kept.iterdir()) == [f"a020_t1.{label}.json", f"a020_t1.{label}.png"]


def test_retouched_image_is_never_overwritten_without_force(write_shotlist, tmp_path: Path,
                                                            cached_engine: None) -> None:
    from PIL import Image

    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    _render_json(path, out)
    image = out / "a020" / "a020_t1.png"
    with Image.open(image) as im:
        edited = im.convert("RGB")
    edited.putpixel((3, 3), (255, 0, 0))  # a retouch, saved by another program
    edited.save(image)
    retouched = image.read_bytes()
    plan = _plan_json(path, out)
    row = next(r for r in plan["jobs"] if r["shot_id"] == "a020")
    assert row["state"] == "modified" and "edited" in row["reason"]
    text = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu"])
    assert "a020_t1" in text.stdout and "--force" in text.stdout
    code, report, _ = _render_json(path, out)
    assert code == 0 and report["counts"]["kept"] == 1 and report["counts"]["rendered"] == 0
    assert image.read_bytes() == retouched
    human = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu"])
    assert human.exit_code == 0 and "edited by hand" in human.stderr
    assert "0 rendered, 2 skipped, 1 kept (edited by hand), 0 recovered, 0 failed" in human.stdout, human.stdout
    code, report, _ = _render_json(path, out, "--force")
    assert code == 0 and report["counts"]["rendered"] == 3
    assert any(p.read_bytes() == retouched for p in (out / ".idcli" / "superseded" / "a020").glob("*.png"))


def test_another_projects_folder_is_refused_without_force(write_shotlist, tmp_path: Path,
                                                          cached_engine: None) -> None:
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    _render_json(path, out)
    assert json.loads((out / "a010" / "a010_t1.json").read_text())["project"] == "trust"
    other = write_shotlist(TEXT_SHOTS.replace("project: trust", "project: harbour"), "other.yaml")
    before = {p: p.read_bytes() for p in out.glob("*/*.png")}
    code, report, stderr = _render_json(other, out)
    assert code == 2 and report["error"]["type"] == "ProjectMismatchError" and "'trust'" in stderr
    assert {p: p.read_bytes() for p in out.glob("*/*.png")} == before
    assert _plan_json(other, out)["other_project"] == "trust"
    # Its dry run exits as the render would (it printed a note beside its plan, exit 0), with the render's words.
    refused = report["error"]["message"]
    code, report, dry_stderr = _render_json(other, out, "--dry-run")
    assert code == 2 and report["error"]["type"] == "ProjectMismatchError", report
    assert report["error"]["message"] == refused and "--force" in refused, report
    assert "holds renders of project 'trust', not 'harbour'" in dry_stderr, dry_stderr
    with pytest.raises(idcli.ProjectMismatchError, match=r"render into another folder \(out_dir\) or pass force=True"):
        idcli.render(other, out, device="cpu", dry_run=True)
    code, report, _ = _render_json(other, out, "--dry-run", "--force")
    assert code == 0 and report["other_project"] == "trust" and report["counts"]["pending"] == 3, report
    assert {p: p.read_bytes() for p in out.glob("*/*.png")} == before
    code, report, _ = _render_json(other, out, "--force")
    assert code == 0 and report["other_project"] == "trust" and len(report["superseded"]) == 3
    assert json.loads((out / "a010" / "a010_t1.json").read_text())["project"] == "harbour"


def test_a_forced_render_into_another_projects_folder_says_it_went_on(write_shotlist, tmp_path: Path,
                                                                     cached_engine: None) -> None:
    """After --force the note said "(render refuses it without --force)", as if it had been refused: plan still says
    so, a forced render (and its dry run) says --force took it on; to a Python caller, in its words."""
    from idcli.cli import folder_notes

    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    _render_json(path, out)
    other = write_shotlist(TEXT_SHOTS.replace("project: trust", "project: harbour"), "other.yaml")
    held = "holds renders of project 'trust', not 'harbour'"
    plan = runner.invoke(app, ["plan", str(other), "--out", str(out), "--device", "cpu"])
    assert f"{held} (render refuses it without --force)" in plan.stdout, plan.stdout
    dry = runner.invoke(app, ["render", str(other), "--out", str(out), "--device", "cpu", "--dry-run", "--force"])
    assert dry.exit_code == 0 and f"{held}; --force: the render goes into it anyway" in dry.stderr, dry.stderr
    assert "refuses" not in dry.stderr, dry.stderr
    forced = runner.invoke(app, ["render", str(other), "--out", str(out), "--device", "cpu", "--force"])
    assert forced.exit_code == 0 and f"{held}; --force: rendering into it anyway" in forced.stderr, forced.stderr
    assert "refuses" not in forced.stderr, forced.stderr
    # the same notes handed to a Python caller name the argument
    report = idcli.render(other, tmp_path / "again", device="cpu", dry_run=True)
    document = {**report.as_dict(), "other_project": "trust"}
    assert any("; force=True: the render goes into it anyway" in n for n in folder_notes(document, out))
    assert any("(render refuses it without force=True)" in n
               for n in folder_notes(_plan_json(other, tmp_path / "again") | {"other_project": "trust"}, out))



def test_a_python_caller_forcing_a_render_into_another_projects_folder_hears_it(write_shotlist, tmp_path: Path,
                                                                               cached_engine: None) -> None:
    """The command printed a note, a pipeline's ``idcli.render(..., force=True)`` got ``other_project`` set and not a
    word: it hears it as it hears a render's other notes (unsigned takes, a wait), through ``progress.note``, in its
    own words; the command still says it once."""
    from cli_helpers import NotesKept

    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    _render_json(path, out)
    other = write_shotlist(TEXT_SHOTS.replace("project: trust", "project: harbour"), "other.yaml")
    held = f"note: {out} holds renders of project 'trust', not 'harbour'"
    dry, forced = NotesKept(), NotesKept()
    idcli.render(other, out, device="cpu", force=True, dry_run=True, progress=dry)
    assert [n for n in dry.notes if "holds renders" in n] == [
        f"{held}; force=True: the render goes into it anyway (that project's takes of the same shot ids go to "
        ".idcli/superseded)"], dry.notes
    report = idcli.render(other, out, device="cpu", force=True, progress=forced)
    assert report.other_project == "trust"
    assert [n for n in forced.notes if "holds renders" in n] == [
        f"{held}; force=True: rendering into it anyway (that project's takes of the same shot ids go to "
        ".idcli/superseded)"], forced.notes
    again = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--force"])
    assert again.exit_code == 0 and again.stderr.count("holds renders of project 'harbour'") == 1, again.stderr

# -- orphans --------------------------------------------------------------------------------------------


def test_orphans_reported_and_left_out_of_results(write_shotlist, tmp_path: Path, cached_engine: None) -> None:
    path, out = write_shotlist(TEXT_SHOTS), tmp_path / "out"
    _render_json(path, out)
    path.write_text(TEXT_SHOTS.replace("takes: 2", "takes: 1").replace("id: a020", "id: a030"))
    expected = {("a010", 2), ("a020", 1)}
    plan = _plan_json(path, out)
    assert {(o["shot_id"], o["take"]) for o in plan["orphans"]} == expected
    assert all(Path(o["image"]["abs_path"]).is_file() for o in plan["orphans"])
    code, report, _ = _render_json(path, out)
    assert code == 0 and {(o["shot_id"], o["take"]) for o in report["orphans"]} == expected
    human = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu"])
    assert "no longer in the shot list" in human.stderr and "a020_t1" in human.stderr
    live = list(idcli.read_results(out))
    assert {(r["shot_id"], r["take"]) for r in live} == {("a010", 1), ("a030", 1)}
    assert not any(r["orphan"] for r in live)
    every = list(idcli.read_results(out, include_orphans=True))
    assert {(r["shot_id"], r["take"]) for r in every if r["orphan"]} == expected
    # Against a shot list given explicitly (here the original one): nothing of it is an orphan but a030.
    original = write_shotlist(TEXT_SHOTS, "original.yaml")
    marked = {(r["shot_id"], r["take"]): r["orphan"] for r in idcli.read_results(out, include_orphans=True,
                                                                                  shotlist=original)}
    assert [k for k, orphan in marked.items() if orphan] == [("a030", 1)]


# -- hints for common YAML mistakes ---------------------------------------------------------------------

HINT_BASE = """\
version: 1
project: hints
model: {preset: tiny-sd}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
"""


@pytest.mark.parametrize(("shots", "where", "words", "fix"), [
    ("  - id: a\n    prompt: {mara} on a pier\n", (8, 13), "read by YAML as a mapping",
     'quote the whole value: prompt: "{mara} on a pier"'),
    ("  - id: a\n    prompt: {mara}, at dawn\n", (8, 13), "read by YAML as a mapping",
     'quote the whole value: prompt: "{mara}, at dawn"'),
    ("  - id: a\n    prompt: {mara}\n", (8, 13), "read by YAML as a mapping", 'prompt: "{mara}"'),
    ("  - id: 0010\n    prompt: a pier\n", (7, 9), "'0010' is read as a number (8)", 'quote it: id: "0010"'),
    ("  - id: a\n\tprompt: a pier\n", (8, 1), "a tab character is used for indentation",
     "replace the tab(s) at the start of the line with spaces"),
    # A tab pasted from a spreadsheet into a prompt is not indentation: it was reported as such.
    ("  - id: a\n    prompt: a\tpier at dawn\n", (8, 14), "a tab character outside quotes",
     "replace the tab with a space"),
    ("  - id: a\n    prompt: a pier\t\n", (8, 19), "a tab character outside quotes",
     "replace the tab with a space"),
    # A non-breaking space pasted from a web page, a chat or a word processor looks like a space but is not YAML's:
    # as indentation it made a top-level key '\xa0\xa0\xa0 prompt' (two problems, neither saying why); after a
    # key's ':' or a list's '-' a bare YAML syntax error.
    ("  - id: a\n\u00a0\u00a0\u00a0 prompt: a pier\n", (8, 1),
     "a non-breaking space (U+00A0) is used for indentation", "replace it with ordinary spaces"),
    ("  - id: a\n  \u00a0 prompt: a pier\n", (8, 3),
     "a non-breaking space (U+00A0) is used for indentation", "replace it with ordinary spaces"),
    ("  - id: a\n    prompt: a pier\n\u2003   takes: 2\n", (9, 1),
     "an em space (U+2003) is used for indentation", "replace it with ordinary spaces"),
    ("  - id: a\n    prompt: a pier\n    takes:\u00a02\n", (9, 11),
     "a non-breaking space (U+00A0) after 'takes:'", "replace it with an ordinary space"),
    ("  - id: a\n    prompt:\u00a0a pier\n", (8, 12),
     "a non-breaking space (U+00A0) after 'prompt:'", "replace it with an ordinary space"),
    ("  -\u00a0id: a\n    prompt: a pier\n", (7, 4),
     "a non-breaking space (U+00A0) after the list item's '-'", "replace it with an ordinary space"),
    # A new shot typed in a hurry: '-id: b' is no list item but a key named '-id' (YAML: "expected <block end>,
    # but found '?'", or "mapping values are not allowed here" on the line after).
    ("  - id: a\n    prompt: a pier\n  -id: b\n    prompt: a bar\n", (9, 3),
     "a list item's '-' needs a space after it", "- id: b"),
    ("  -id: a\n    prompt: a pier\n", (7, 3), "a list item's '-' needs a space after it", "- id: a"),
    ("  - id: a\n    prompt: a pier\n    takes: 2\n  -id: b\n    prompt: a bar\n    takes: 3\n", (10, 3),
     "a list item's '-' needs a space after it", "- id: b"),
    # Screenplay-style prompts: a ': ' inside an unquoted value, quotes inside a quoted one, a quote never closed.
    ("  - id: a\n    prompt: INT. BAR: {mara} waits\n", (8, 13),
     "':' before a space or the line's end inside an unquoted value",
     'quote the whole value: prompt: "INT. BAR: {mara} waits"'),
    ("  - id: a\n    prompt: \"{mara} says \"run\" and leaves\"\n", (8, 13), "ends the value early",
     "prompt: '{mara} says \"run\" and leaves'"),
    ("  - id: a\n    prompt: \"{mara} on a pier\n  - id: b\n    prompt: a bar\n", (8, 13),
     "quoted value is never closed", 'close it where the value ends: prompt: "{mara} on a pier"'),
])
def test_hints_for_common_yaml_mistakes(write_shotlist, shots: str, where: tuple[int, int], words: str,
                                        fix: str) -> None:
    path = write_shotlist(HINT_BASE + shots)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 2, result.output
    error = _one_json_document(result.stdout)["error"]
    assert (error["line"], error["column"]) == where, error
    assert words in error["message"] and fix in error["hint"], error
    assert "YAML syntax error" not in result.stderr and "Input should be" not in result.stderr
    assert f"{path}:{where[0]}:{where[1]}: " in result.stderr and fix in result.stderr


@pytest.mark.parametrize("shots", [
    "  - id: a\n    prompt: a\u00a0pier at dawn\n",
    "  - id: a\n    prompt: |\n      a pier\n      \u00a0at dawn\n",
    "  - id: a\n    prompt: \"a pier\n\u00a0  at dawn\"\n",
])
def test_a_non_breaking_space_inside_a_value_is_text(write_shotlist, shots: str) -> None:
    """Only where YAML needs its own space is U+00A0 refused: in a value it is a character of the text."""
    result = runner.invoke(app, ["validate", str(write_shotlist(HINT_BASE + shots))])
    assert result.exit_code == 0, result.output


def test_a_continuation_line_ending_its_first_word_in_a_colon_gets_no_wrong_fix(write_shotlist) -> None:
    """'then:' begins a continuation line of the prompt: quoting 'then: night' as a value would be a wrong fix."""
    path = write_shotlist(HINT_BASE + "  - id: a\n    prompt: a long look at the sea\n      then: night\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and f"{path}:9:" in result.stderr, result.stderr
    assert "then: \"night\"" not in result.stderr, result.stderr


# -- failures stay local --------------------------------------------------------------------------------

LOCAL_SHOTS = """\
version: 1
project: local
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
  theo:
    selfies: [selfies/theo_1.jpg]
shots:
  - {id: m1, prompt: "{mara} on a pier"}
  - {id: t1, prompt: "{theo} on a pier", takes: 2}
  - {id: e1, prompt: "an empty pier"}
"""


def test_failures_stay_local(write_shotlist, selfies: Path, tmp_path: Path, cached_engine: None) -> None:
    from PIL import Image

    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "theo_1.jpg", format="JPEG")  # no face
    path, out = write_shotlist(LOCAL_SHOTS), tmp_path / "out"
    where = (8, 15)  # the line and column of theo's selfie in LOCAL_SHOTS
    code, report, stderr = _render_json(path, out)
    assert code == idcli.EXIT_JOBS_FAILED, stderr
    status = {(j["shot_id"], j["take"]): j["status"] for j in report["jobs"]}
    assert status == {("m1", 1): "rendered", ("t1", 1): "failed", ("t1", 2): "failed", ("e1", 1): "rendered"}
    failed = next(j for j in report["jobs"] if j["shot_id"] == "t1")
    assert f"{path}:{where[0]}:{where[1]}: characters.theo.selfies[0]" in failed["error"]["message"]
    assert "character 'theo'" in failed["error"]["message"] and "no face found" in failed["error"]["message"]
    problem = report["problems"][0]
    assert (problem["line"], problem["column"], problem["field"]) == (*where, "characters.theo.selfies[0]")
    assert (out / "m1" / "m1_t1.png").is_file() and not (out / "t1").exists()
    human = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    assert human.exit_code == 1 and f"{path}:{where[0]}:{where[1]}" in human.stderr and "t1_t1" in human.stderr
    plan = _plan_json(path, out)
    assert [(p["line"], p["column"]) for p in plan["problems"]] == [where]
    assert [r["state"] for r in plan["jobs"] if r["shot_id"] == "t1"] == ["blocked", "blocked"]
    text = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu"])
    assert text.exit_code == 0 and "character 'theo' cannot be used" in text.stdout
    checked = runner.invoke(app, ["validate", str(path), "--selfies", "--json"])
    assert checked.exit_code == 2
    error = _one_json_document(checked.stdout)["error"]
    assert (error["line"], error["column"], error["field"]) == (*where, "characters.theo.selfies[0]")
    assert "no face found" in error["message"] and "selfies/theo_1.jpg" in error["message"]
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0  # without --selfies no image is read


def test_each_unusable_character_lists_only_its_own_takes(write_shotlist, selfies: Path, tmp_path: Path,
                                                           cached_engine: None) -> None:
    """Two characters without a face: each error names the takes that character fails, not every failed take."""
    from PIL import Image

    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "theo_1.jpg", format="JPEG")  # no face
    (selfies / "mara_1.jpg").write_bytes(b"not an image")
    path, out = write_shotlist(LOCAL_SHOTS), tmp_path / "out"
    for argv in (["plan", str(path), "--out", str(out), "--device", "cpu"],
                 ["render", str(path), "--out", str(out), "--device", "cpu", "-q"]):
        result = runner.invoke(app, argv)
        lines = [line for line in result.output.splitlines() if "cannot be used" in line]
        assert len(lines) == 2, result.output
        mara = next(line for line in lines if "character 'mara'" in line)
        theo = next(line for line in lines if "character 'theo'" in line)
        assert mara.endswith("the rest render: m1_t1"), mara
        assert theo.endswith("the rest render: t1_t1, t1_t2"), theo


def test_render_only_other_shots_does_not_report_an_unusable_character_as_failing(
        write_shotlist, selfies: Path, tmp_path: Path, cached_engine: None) -> None:
    """--only e1 fails no take of theo's: his selfie's problem is a note, not an error with an empty take list."""
    from PIL import Image

    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "theo_1.jpg", format="JPEG")  # no face
    path, out = write_shotlist(LOCAL_SHOTS), tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--only", "e1"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stderr.splitlines() if "character 'theo' cannot be used" in line)
    assert line.startswith("idcli: note: ") and line.endswith("(no take of this run names it)"), line
    assert "the rest render: \n" not in result.stderr + "\n"


@pytest.mark.parametrize(("text", "where", "words", "fix"), [
    # One selfie written without the brackets of a list.
    ("characters:\n  mara: {selfies: selfies/mara_1.jpg}\nshots:\n  - {id: a, prompt: \"{mara}\"}\n", (5, 19),
     "a list is expected here, not the text 'selfies/mara_1.jpg'", "selfies: [selfies/mara_1.jpg]"),
    ("characters:\n  mara: {selfies: []}\nshots:\n  - {id: a, prompt: \"{mara}\"}\n", (5, 19),
     "the list is empty", "at least 1 item"),
    # A character, the defaults or a shot left empty or written as text: Python class names leaked out.
    ("characters:\n  mara:\nshots:\n  - {id: a, prompt: \"{mara}\"}\n", (5, 8),
     "fields written as 'field: value' are expected here, not nothing", "mara: {field: value, ...}"),
    ("defaults:\nshots:\n  - {id: a, prompt: a room}\n", (4, 10),
     "fields written as 'field: value' are expected here, not nothing", "defaults: {field: value, ...}"),
    ("shots:\n  - a room at night\n", (5, 5),
     "fields written as 'field: value' are expected here, not the text 'a room at night'",
     "one 'field: value' per indented line"),
    ("shots:\n", (4, 7), "a list is expected here, not nothing", "one '- ' item per line"),
    ("characters:\n  mara: {selfies: [selfies/mara_1.jpg]}\nshots:\n  - id: a\n    prompt: \"{mara}\"\n"
     "    plate: plate.png\n    plate_faces: [[90, 200, 140]]\n", (10, 19),
     "a plate face box has 4 numbers, [x, y, w, h], not 3", "x, y: its top-left corner"),
])
def test_shapes_said_in_plain_words(write_shotlist, text: str, where: tuple[int, int], words: str, fix: str) -> None:
    path = write_shotlist("version: 1\nproject: shapes\nmodel: {preset: tiny-sd}\n" + text)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 2, result.output
    error = _one_json_document(result.stdout)["error"]
    assert (error["line"], error["column"]) == where, error
    assert words in error["message"] and fix in error["hint"], error
    assert len(error["problems"]) == 1, error["problems"]  # no second, parser-worded problem at the same place
    assert "instance of" not in result.stdout and "Input should be" not in result.stdout, result.stdout
