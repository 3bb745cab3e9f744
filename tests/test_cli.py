"""The command line as scripts use it: exit codes, JSON output, and runs killed part-way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import assert_nothing_partial, cli_env, journal_commits, plan_jobs, spawn_render
from typer.testing import CliRunner

from idcli.cli import app
from idcli.store import OutputStore

runner = CliRunner()

SHOTS = """\
version: 1
project: cli-test
model: {preset: tiny-sd}
defaults: {size: 96x96, steps: 3, guidance: 4.0, sampler: euler}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - id: a
    prompt: "{mara} in the rain"
    takes: 2
  - id: b
    prompt: "{mara} at dawn"
"""


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from idcli.cli import app; "
            "bad = [m for m in ('torch', 'diffusers', 'insightface', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env())
    assert done.returncode == 0, done.stdout + done.stderr


def test_python_dash_m_and_version() -> None:
    done = subprocess.run([sys.executable, "-m", "idcli", "--version"], capture_output=True, text=True, env=cli_env())
    assert done.returncode == 0 and done.stdout.startswith("idcli ")


def test_render_json_then_plan_json(write_shotlist, tmp_path: Path) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["exit_code"] == 0 and summary["error"] is None
    counts = summary["counts"]
    assert (counts["rendered"], counts["skipped"], counts["failed"]) == (3, 0, 0)
    for job in summary["jobs"]:
        assert job["status"] == "rendered" and job["error"] is None
        assert json.loads(Path(job["sidecar"]["abs_path"]).read_text())["job_key"] == job["job_key"]
        assert Path(job["image"]["abs_path"]) == out.absolute() / job["image"]["path"]
        assert Path(job["image"]["abs_path"]).is_file()
    plan = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu", "--json"])
    assert plan.exit_code == 0
    rows = json.loads(plan.stdout)["jobs"]
    assert [r["state"] for r in rows] == ["done"] * 3
    again = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--json", "--quiet"])
    assert json.loads(again.stdout)["counts"]["rendered"] == 0


def test_plan_table_shows_new_and_stale(write_shotlist, tmp_path: Path) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q", "--only", "a"])
    path.write_text(SHOTS.replace("in the rain", "in the snow"))
    result = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu", "--json"])
    assert [r["state"] for r in json.loads(result.stdout)["jobs"]] == ["stale", "stale", "new"]
    table = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu"])
    assert table.exit_code == 0 and "stale" in table.stdout and "g1" in table.stdout


def test_plan_table_parses_each_cells_markup_once(write_shotlist, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich turns a table's string cell into text (markup, emoji) when it measures the columns and again when it
    draws them: at film scale (9,553 rows, docs/performance.md "At film scale") that was a tenth of ``plan``'s
    time. Each cell is made text once; the table printed is the same."""
    from rich.console import Console

    real = Console.render_str
    made: list[str] = []

    def render_str(self, text: str, **kwargs):
        made.append(text)
        return real(self, text, **kwargs)

    monkeypatch.setattr(Console, "render_str", render_str)
    path = write_shotlist(SHOTS)
    table = runner.invoke(app, ["plan", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert table.exit_code == 0 and table.stdout.count(" new ") == 3, table.stdout
    assert made.count("[yellow]new[/]") == 3 and made.count("96x96") == 3, made


def test_bad_options_exit_2(write_shotlist, tmp_path: Path) -> None:
    path = write_shotlist(SHOTS)
    bad_batch = runner.invoke(app, ["render", str(path), "--batch-size", "lots", "--out", str(tmp_path / "o")])
    assert bad_batch.exit_code == 2 and "--batch-size" in bad_batch.stderr
    bad_preset = runner.invoke(app, ["render", str(path), "--preset", "tiny-sdx", "--out", str(tmp_path / "o")])
    assert bad_preset.exit_code == 2 and "did you mean 'tiny-sdxl'" in bad_preset.stderr
    bad_only = runner.invoke(app, ["render", str(path), "--only", "c", "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert bad_only.exit_code == 2 and "no such shot" in bad_only.stderr
    # Shot ids hold no commas: a comma-separated list says how to give several shots (not "did you mean 'b'").
    listed = runner.invoke(app, ["render", str(path), "--only", "a,b", "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert listed.exit_code == 2 and "--only a --only b" in listed.stderr, listed.stderr
    usage = runner.invoke(app, ["render", "--help"], env={"COLUMNS": "200"})
    assert "--only SHOT" in usage.stdout and "list[str]" not in usage.stdout


@pytest.mark.parametrize(("command", "readable"), [
    (["encode-identity"], ("{SELFIE}...", "--preset PRESET")),
    (["select"], ("[SHOT=TAKE]...", "--from PICKS.json")),
    (["evaluate"], ("{OUT}...",)),
    (["render"], ("--only SHOT",)),
    (["models", "list"], ("--models-dir DIR",)),
])
def test_help_shows_readable_metavars_for_repeatable_values(command: list[str], readable: tuple[str, ...]) -> None:
    """A repeatable option showed Python's type ('--preset <list[str]>'), a variadic argument its parameter's
    name ('{selfies}...'), and Typer 0.29 the type after a variadic argument in the Arguments list ('SELFIE
    <list[Path]>', whatever its metavar): those commands write 'SELFIE... <path>' (idcli/cli/help_text.py)."""
    usage = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert usage.exit_code == 0, usage.output
    assert "list[" not in usage.stdout, usage.stdout
    for words in readable:
        assert words in usage.stdout, (words, usage.stdout)


def test_busy_output_folder_exits_3(write_shotlist, tmp_path: Path) -> None:

    out = tmp_path / "out"
    with OutputStore(out).session():
        result = runner.invoke(app, ["render", str(write_shotlist(SHOTS)), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 3 and "--wait" in result.stderr


def wait_for_sidecars(out: Path, count: int, proc: subprocess.Popen[str], limit: float = 120.0) -> None:
    """Wait until ``count`` sidecars exist while ``proc`` still runs: a stop sent afterwards lands mid-run."""
    deadline = time.monotonic() + limit
    while len(list(out.glob("*/*.json"))) < count:
        assert proc.poll() is None, (f"the run exited ({proc.returncode}) before {count} sidecar(s): "
                                     f"{proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, f"fewer than {count} sidecar(s) after {limit} s"
        time.sleep(0.02)
    assert proc.poll() is None, f"the run finished ({proc.returncode}) before it could be stopped"


KILL_SHOTS = """\
version: 1
project: kill-test
model: {preset: tiny-sd}
defaults: {size: 128x128, steps: 6, guidance: 4.0, sampler: dpmpp-2m, takes: 4}
shots:
  - {id: k1, prompt: "a lighthouse in a storm"}
  - {id: k2, prompt: "a bar at night"}
  - {id: k3, prompt: "a beach at dawn"}
"""


@pytest.mark.parametrize("kills_after", [[1, 5]])
def test_sigkill_midway_then_resume_completes_without_duplicates(write_shotlist, tmp_path: Path,
                                                                  kills_after: list[int]) -> None:
    path, out = write_shotlist(KILL_SHOTS), tmp_path / "out"
    for count in kills_after:
        proc = spawn_render(path, out)
        wait_for_sidecars(out, count, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        # A SIGKILL leaves temporaries behind; the next run's start removes them.
        assert_nothing_partial(out, temporaries_allowed=True)
    final = spawn_render(path, out, "--json", "--quiet")
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    counts = json.loads(stdout)["counts"]
    assert counts["failed"] == 0 and counts["rendered"] + counts["skipped"] + counts["recovered"] == 12
    jobs = plan_jobs(path)
    assert len(jobs) == 12
    assert_nothing_partial(out, jobs)
    assert len(list(out.glob("*/*.json"))) == 12
    commits = journal_commits(out)
    assert max(commits.values()) == 1, "a job was committed twice"
    # The journal line follows the sidecar's rename, so a kill between the two leaves a finished job (its
    # sidecar checked above) without its line: at most one such gap per kill, never a second commit.
    assert len(kills_after) >= 12 - len(commits) >= 0


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_exit_with_their_codes(write_shotlist, tmp_path: Path, sig: int, code: int) -> None:
    path, out = write_shotlist(KILL_SHOTS), tmp_path / "out"
    proc = spawn_render(path, out)
    wait_for_sidecars(out, 1, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert_nothing_partial(out)  # temporaries included: in-flight writes finish or are removed
