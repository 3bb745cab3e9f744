"""idcli scripted from Python or a shell (the pipeline engineer's tour): the importable names stay what the
docs say they are, and the command line's stdout, exit codes and JSON documents hold up in pipes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ROOT, cli_env, spawn_render

import idcli


def _tiny_shots(project: str, *prompts: str) -> str:
    """A tiny-sd shot list (64x64, 2 steps) with one shot per prompt: a010, a020, ..."""
    shots = "".join(f'  - {{id: a0{k}0, prompt: "{prompt}"}}\n' for k, prompt in enumerate(prompts, 1))
    return (f"version: 1\nproject: {project}\nmodel: {{preset: tiny-sd}}\n"
            f"defaults: {{size: 64x64, steps: 2}}\nshots:\n{shots}")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (the import order of the test process must not hide anything)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)


def test_idcli_reproduce_stays_the_function_whatever_was_imported_first() -> None:
    """``idcli.reproduce`` is the library function, also after its module ``idcli/reproduce.py`` was imported.

    Importing a submodule sets the package attribute of the same name to the module, so the lazy
    ``idcli.reproduce`` became the module on its second use (``TypeError: 'module' object is not callable``).
    """
    done = _python(
        "import inspect, idcli\n"
        "first, second = idcli.reproduce, idcli.reproduce\n"
        "assert inspect.isfunction(first) and second is first, (first, second)\n"
        "import idcli.reproduce\n"
        "from idcli.reproduce import ReproduceError, reproduce\n"
        "assert idcli.reproduce is reproduce, idcli.reproduce\n"
        "assert issubclass(ReproduceError, idcli.InputError)\n")
    assert done.returncode == 0, done.stderr
    # The other order: the module imported before the package's lazy name was ever asked for.
    done = _python(
        "import inspect, idcli.reproduce, idcli.run, idcli.results, idcli.verify\n"
        "import idcli\n"
        "assert inspect.isfunction(idcli.reproduce), idcli.reproduce\n"
        "assert idcli.reproduce.__module__ == 'idcli.reproduce'\n"
        "for name in ('render', 'plan_shotlist', 'read_results', 'verify_folder', 'load_shotlist'):\n"
        "    assert callable(getattr(idcli, name)), name\n")
    assert done.returncode == 0, done.stderr


def _exit_code_with_stdout_closed(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``idcli ARGV`` whose stdout reader has gone before the first write (``idcli ... | head -0``)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "idcli", *argv], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=cli_env(), cwd=cwd, timeout=300)
    finally:
        os.close(write_end)


def test_tables_and_version_into_a_closed_pipe_exit_0(write_shotlist, tmp_path: Path) -> None:
    """``idcli plan FILE | head`` on a long plan, ``idcli expressions | head``, ``idcli --version | true``: the
    reader leaving early is not the command's failure (rich's console and Typer turned it into exit 1)."""
    path = write_shotlist(_tiny_shots("pipe", "a lighthouse in a storm"))
    for argv in (["expressions"], ["plan", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"],
                 ["--version"]):
        done = _exit_code_with_stdout_closed(*argv)
        assert done.returncode == 0, (argv, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, (argv, done.stderr)


def test_help_into_a_closed_pipe_exits_0() -> None:
    """``idcli --help | true``: Click answers a closed stdout while printing help with exit 1 (its EPIPE
    handling); the reader leaving is no failure, as for the tables above."""
    for argv in (["--help"], ["render", "--help"], ["models", "--help"]):
        done = _exit_code_with_stdout_closed(*argv)
        assert done.returncode == 0, (argv, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, (argv, done.stderr)


def test_idcli_debug_adds_a_traceback_and_changes_nothing_else(tmp_path: Path) -> None:
    """IDCLI_DEBUG=1 shows the traceback on stderr; the exit code and the --json document stay the documented
    ones (it made every error exit 1, which the exit-code table reserves for failed jobs, with no document)."""
    env = {**cli_env(), "IDCLI_DEBUG": "1"}
    for argv, code in ((["validate", str(tmp_path / "missing.yaml"), "--json"], 2),
                       (["render", str(tmp_path / "missing.yaml"), "--batch-size", "0", "--json"], 2),
                       (["verify", str(tmp_path / "no-such-folder"), "--json"], 2)):
        done = subprocess.run([sys.executable, "-m", "idcli", *argv], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == code, (argv, done.returncode, done.stderr)
        document = json.loads(done.stdout)
        assert document["exit_code"] == code and document["ok"] is False, document
        assert "Traceback (most recent call last)" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, "-m", "idcli", "validate", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" in done.stderr and "no such file" in done.stderr, done.stderr


def test_interrupted_render_json_still_reports_what_was_committed(write_shotlist, tmp_path: Path) -> None:
    """SIGTERM (a scheduler pre-empting the job) during ``render --json``: the one document keeps the run's
    report so far — counts and jobs, the committed images among them — beside ``exit_code`` 143 and the
    ``Interrupted`` error (it held only ``ok``, ``exit_code`` and ``error``: ``d["counts"]`` was a KeyError)."""
    path, out = write_shotlist("""\
        version: 1
        project: preempted
        model: {preset: tiny-sd}
        defaults: {size: 128x128, steps: 6, guidance: 4.0, sampler: dpmpp-2m, takes: 3}
        shots:
          - {id: k1, prompt: "a lighthouse in a storm"}
          - {id: k2, prompt: "a bar at night"}
        """), tmp_path / "out"
    proc = spawn_render(path, out, "--json", "--quiet")
    deadline = time.monotonic() + 120
    while not list(out.glob("*/*.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    document = json.loads(stdout)
    assert document["ok"] is False and document["exit_code"] == 143, document
    assert document["error"]["type"] == "Interrupted" and "SIGTERM" in document["error"]["message"]
    assert document["out_dir"] == str(out.absolute()) and document["project"] == "preempted"
    committed = {p.relative_to(out).as_posix() for p in out.glob("*/*.json")}
    rendered = {j["sidecar"]["path"] for j in document["jobs"] if j["status"] == "rendered"}
    assert committed and rendered == committed, (rendered, committed)
    assert document["counts"]["rendered"] == len(committed) < 6


def test_render_checks_qa_thresholds_and_takes(write_shotlist, tmp_path: Path) -> None:
    """``qa_thresholds=0.3`` (the command's ``--qa-low-identity 0.3``) rendered every image and wrote
    ``qa.error: "AttributeError: 'float' object has no attribute 'record'"`` into each sidecar, exit 0: QA
    silently off. Wrong types are now refused before anything is planned or written, as for every argument."""
    from idcli.review.qa import QAThresholds

    path, out = write_shotlist(_tiny_shots("args", "a lighthouse in a storm")), tmp_path / "out"
    for kwargs in (dict(qa_thresholds=0.3), dict(qa_thresholds={"low_identity": 0.3}), dict(takes=3),
                   dict(takes={"a010": "4"}), dict(takes={"a010": 0})):
        name = next(iter(kwargs))
        with pytest.raises(idcli.InputError, match=name) as caught:
            idcli.render(path, out, device="cpu", **kwargs)
        assert caught.value.exit_code == idcli.EXIT_INVALID_INPUT
    with pytest.raises(idcli.InputError, match="takes"):
        idcli.plan_shotlist(path, device="cpu", takes=["a010"])
    assert not out.exists(), "a refused call wrote nothing"
    report = idcli.render(path, out, device="cpu", dry_run=True, qa_thresholds=QAThresholds(0.3, 0.4),
                          takes={"a010": 2})
    assert report.count("pending") == 2


def test_reproduce_verify_and_executor_arguments_are_checked(tmp_path: Path) -> None:
    """The exported ``idcli.reproduce`` and ``idcli.verify_folder``, and ``render(executor=...)``, raise
    InputError (exit 2) for arguments of the wrong type, as every public function does (they raised
    TypeError / AttributeError)."""
    calls = {
        "target": lambda: idcli.reproduce(5),  # type: ignore[arg-type]
        "out_dir": lambda: idcli.reproduce(tmp_path / "a.png", out_dir=5),  # type: ignore[arg-type]
        "face_models": lambda: idcli.reproduce(tmp_path / "a.png", face_models=5),  # type: ignore[arg-type]
        "engine_factory": lambda: idcli.reproduce(tmp_path / "a.png", engine_factory=5),  # type: ignore[arg-type]
        "out_dir=": lambda: idcli.verify_folder(5),  # type: ignore[arg-type]
        "trust": lambda: idcli.verify_folder(tmp_path, trust=5),  # type: ignore[arg-type]
        "executor": lambda: idcli.render(ROOT / "recipes" / "quickstart.yaml", tmp_path / "out", executor=5),
    }
    for name, call in calls.items():
        with pytest.raises(idcli.InputError, match=name) as caught:
            call()
        assert caught.value.exit_code == idcli.EXIT_INVALID_INPUT, name


def test_verify_json_out_dir_is_absolute_like_every_other_document(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract's ``out_dir`` is absolute (plan, render, restore, qa, evaluate); verify's was as given."""
    (tmp_path / "out" / "a010").mkdir(parents=True)
    (tmp_path / "out" / "a010" / "a010_t1.png").write_bytes(b"a take without its sidecar")  # one image to check
    monkeypatch.chdir(tmp_path)
    document = idcli.verify_folder("out").as_dict()
    assert document["out_dir"] == str(tmp_path / "out") and document["counts"]["checked"] == 1, document


def test_an_internal_error_is_exit_70_not_the_jobs_failed_code(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A bug inside idcli (any exception that is not one of its errors) ended as Python's exit 1 — which the
    exit-code table reserves for "some jobs failed, the rest are kept" — with a traceback and, under
    --json, no document. It is exit 70 (sysexits' EX_SOFTWARE), one message, and the document."""
    import idcli.shotlist
    from idcli.cli import main

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(idcli.shotlist, "load_shotlist", broken)
    for argv in (["idcli", "validate", "shots.yaml", "--json"], ["idcli", "validate", "shots.yaml"]):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as ended:
            main()
        assert ended.value.code == idcli.EXIT_INTERNAL_ERROR == 70
        out, err = capsys.readouterr()
        assert "RuntimeError: a bug" in err and "IDCLI_DEBUG=1" in err and "Traceback" not in err, err
        if "--json" in argv:
            document = json.loads(out)
            assert document["exit_code"] == 70 and document["error"]["type"] == "InternalError", document
        else:
            assert out == ""
    monkeypatch.setenv("IDCLI_DEBUG", "1")
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 70 and "Traceback" in capsys.readouterr().err


def test_a_render_whose_log_reader_left_still_renders_everything(write_shotlist, tmp_path: Path) -> None:
    """``idcli render FILE 2>&1 | head`` (or a log pager quit early): the progress lines have nowhere to go,
    and the render goes on to the last image with its own exit code. A write to the closed stderr raised
    BrokenPipeError, which ended the run part-way with exit 0: images silently missing."""
    path = write_shotlist(_tiny_shots("pipe", "a lighthouse in a storm", "a harbour at dawn", "a ship in fog"))
    out = tmp_path / "out"
    render = spawn_render(path, out, stdout=subprocess.DEVNULL)
    assert render.stderr is not None
    render.stderr.readline()  # the reader takes one line, then leaves
    render.stderr.close()
    assert render.wait(timeout=300) == 0
    assert sorted(p.name for p in out.glob("*/*.png")) == ["a010_t1.png", "a020_t1.png", "a030_t1.png"]
    done = subprocess.run([sys.executable, "-m", "idcli", "verify", str(out)], capture_output=True, text=True,
                          env=cli_env(), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_progress_log_closed_mid_run_stops_nothing(write_shotlist, tmp_path: Path, tiny_engines) -> None:
    """``idcli.render(..., progress=PlainProgress(log))`` with a log closed after its first line renders every
    job; and the engine, which the caller keeps, no longer calls that run's progress afterwards (a later
    render on a cached engine raised ``ValueError: I/O operation on closed file``)."""
    import io

    from idcli.console import PlainProgress

    path = write_shotlist(_tiny_shots("pipe", "a lighthouse in a storm", "a harbour at dawn"))

    class ClosedAfterOneLine(io.StringIO):
        def write(self, text: str) -> int:
            written = super().write(text)
            if "\n" in text:
                self.close()
            return written

    engine = tiny_engines("tiny-sd")
    report = idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", batch_size=1,
                          engine_factory=lambda identity, runtime, adapter=None: engine,
                          progress=PlainProgress(ClosedAfterOneLine()))
    assert [j.status for j in report.jobs] == ["rendered", "rendered"]
    assert engine.on_step is None


def test_dir_of_idcli_lists_every_public_name() -> None:
    """``dir(idcli)`` (and so tab completion in a REPL or notebook) lists the lazily loaded functions that
    ``__all__`` promises; it listed only the eagerly imported error classes and exit codes."""
    done = _python("import idcli\n"
                   "names = dir(idcli)\n"
                   "missing = [n for n in idcli.__all__ if n not in names]\n"
                   "assert not missing, missing\n"
                   "assert names == sorted(names), names\n"
                   "assert '__name__' in names and 'errors' in names, names\n")
    assert done.returncode == 0, done.stderr


def test_deliver_is_reached_from_import_idcli_as_the_readme_says() -> None:
    """``import idcli`` then ``idcli.deliver(OUT, DEST)``, like ``idcli.reproduce`` and ``idcli.verify_folder``;
    the README's ``idcli.delivery.deliver`` after ``import idcli`` raised AttributeError (no such attribute)."""
    done = _python("import idcli\n"
                   "from idcli.delivery import deliver\n"
                   "assert 'deliver' in idcli.__all__ and 'deliver' in dir(idcli)\n"
                   "assert idcli.deliver is deliver, idcli.deliver\n")
    assert done.returncode == 0, done.stderr


def _json_error(*argv: str, cwd: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "idcli", *argv, "--json"], capture_output=True, text=True,
                          env=cli_env(), cwd=cwd, timeout=300)
    document = json.loads(done.stdout)
    assert document["exit_code"] == done.returncode == 2 and not document["ok"], (done.stdout, done.stderr)
    return document["error"]


def test_json_errors_about_an_input_file_name_it_in_error_file(tmp_path: Path) -> None:
    """``--json`` documents said ``error.file: null`` for input-file errors that named the file only in their
    message (an unreadable selfie, a face-less selfie, a missing reproduce target or sidecar, a verify, restore,
    qa or evaluate folder, a --trust file, an identity pack): a script had to parse the message. ``file`` is the
    path as the message gives it, so ``message.startswith(file)`` holds where the message starts with it."""
    from PIL import Image

    (tmp_path / "notes.jpg").write_text("not a picture")
    Image.new("RGB", (400, 400), (128, 128, 128)).save(tmp_path / "grey.png")
    (tmp_path / "out" / "a010").mkdir(parents=True)
    (tmp_path / "out" / "a010" / "a010_t1.json").write_text("{not json")
    (tmp_path / "out" / "a010" / "a010_t1.png").write_bytes(b"x")
    (tmp_path / "trust.pem").write_text("no certificate here")
    (tmp_path / "bad.idpack").write_text("not a pack")
    cases = {
        ("encode-identity", "notes.jpg", "--name", "x", "--face-models", "synthetic"): ("ImageError", "notes.jpg"),
        ("encode-identity", "grey.png", "--name", "x", "--face-models", "synthetic"): ("SelfieError", "grey.png"),
        ("reproduce", "missing.png"): ("ReproduceError", "missing.png"),
        ("reproduce", "out/a010/a010_t1.png"): ("ReproduceError", "out/a010/a010_t1.json"),
        ("verify", "nowhere"): ("InputError", "nowhere"),
        ("verify", "out", "--trust", "trust.pem"): ("InputError", "trust.pem"),
        ("identity", "show", "bad.idpack"): ("PackError", "bad.idpack"),
        ("restore", "nowhere", "a010_t1"): ("InputError", "nowhere"),
        ("qa", "nowhere"): ("InputError", "nowhere"),
        ("evaluate", "nowhere"): ("InputError", "nowhere"),
    }
    for argv, (kind, file) in cases.items():
        error = _json_error(*argv, cwd=tmp_path)
        assert error["type"] == kind and error["file"] == file, (argv, error)
        assert file in str(error["message"]), (argv, error)


def test_plan_and_dry_run_report_a_file_where_the_output_folder_should_be(write_shotlist, tmp_path: Path) -> None:
    """``plan --out FILE`` said every job was new and exited 0 while ``render`` on the same path exits 5
    (EXIT_OUTPUT_UNUSABLE: "a file where a folder should be"). plan and ``render --dry-run`` now exit 5 with
    the render's message, so a script that plans before rendering learns it before the render."""
    from typer.testing import CliRunner

    from idcli.cli import app

    path = write_shotlist(_tiny_shots("folder", "a lighthouse in a storm"))
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    state_file = tmp_path / "out"
    (state_file / ".idcli").parent.mkdir()
    (state_file / ".idcli").write_text("not a folder either")
    runner = CliRunner()
    for out in (blocker, blocker / "sub" / "out", state_file):
        rendered = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--json"])
        assert rendered.exit_code == idcli.EXIT_OUTPUT_UNUSABLE, (out, rendered.output)
        assert json.loads(rendered.stdout)["error"]["file"], rendered.stdout  # the render's own error names it
        for argv in (["plan", str(path), "--out", str(out), "--device", "cpu", "--json"],
                     ["render", str(path), "--out", str(out), "--device", "cpu", "--dry-run", "--json"]):
            done = runner.invoke(app, argv)
            assert done.exit_code == idcli.EXIT_OUTPUT_UNUSABLE, (argv, done.output)
            document = json.loads(done.stdout)
            assert document["exit_code"] == 5 and document["error"]["type"] == "OutputError", document
            assert "not a folder" in document["error"]["message"] and document["error"]["file"], document
    assert blocker.read_text() == "not a folder" and sorted(p.name for p in state_file.iterdir()) == [".idcli"]
    fine = runner.invoke(app, ["plan", str(path), "--out", str(tmp_path / "new" / "out"), "--device", "cpu"])
    assert fine.exit_code == 0 and not (tmp_path / "new").exists(), fine.output


def test_a_piped_shot_list_resolves_relative_paths_from_the_current_folder(tmp_path: Path) -> None:
    """``generate_shots | idcli validate /dev/stdin`` (or ``<(generate_shots)``) resolved the shot list's
    relative selfie paths under /dev (the pipe's "folder"), and said only "selfie 'selfies/mara_1.jpg' does not
    exist". A shot list that is no regular file resolves them from the current folder, and a missing file's
    message says the absolute path that was looked at."""
    text = (ROOT / "recipes" / "quickstart.yaml").read_text("utf-8")
    project = tmp_path / "project with spaces"
    (project / "selfies").mkdir(parents=True)
    for name in ("mara_1.jpg", "mara_2.jpg", "theo_1.jpg", "theo_2.jpg"):
        (project / "selfies" / name).write_bytes((ROOT / "recipes" / "selfies" / name).read_bytes())

    def validate(cwd: Path, document: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "idcli", "validate", "/dev/stdin", "--json"], input=document,
                              capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=120)

    done = validate(project, text)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["shot_count"] == 4
    done = validate(tmp_path, text.replace("selfies/mara_1.jpg", "selfies/mara_9.jpg"))
    assert done.returncode == 2
    problems = json.loads(done.stdout)["error"]["problems"]
    assert f"looked for {tmp_path / 'selfies' / 'mara_9.jpg'}" in problems[0]["message"], problems
    # A shot list in a file still resolves from its own folder, whatever the current folder.
    (project / "shots.yaml").write_text(text, "utf-8")
    done = subprocess.run([sys.executable, "-m", "idcli", "validate", str(project / "shots.yaml")],
                          capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_dash_for_stdin_says_to_give_dev_stdin(tmp_path: Path) -> None:
    """``make_shots | idcli validate -`` said only "-: no such file", which reads as a bug in the pipe: the
    error's hint says how idcli reads a pipe (/dev/stdin)."""
    done = subprocess.run([sys.executable, "-m", "idcli", "validate", "-", "--json"], input="version: 1\n",
                          capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert "no such file" in error["message"] and "/dev/stdin" in error["hint"], error
    assert "/dev/stdin" in done.stderr


def test_the_readme_names_the_module_errors_a_pipeline_meets_and_what_to_catch_them_as() -> None:
    """``--json`` said ``"type": "DeliveryError"``, a class the README's table did not name and ``idcli`` does not
    export: the README lists each module's refusal with the exported class it derives from."""
    import importlib
    import re

    text = (ROOT / "README.md").read_text("utf-8")
    listed = re.search(r"A module's own refusal is a subclass of one of these, not exported from `idcli`: (.*?) derive",
                       " ".join(text.split()))
    assert listed, "README: the module errors' paragraph is gone"
    names = re.findall(r"`(\w+)`", listed.group(1))
    raised = {}
    for module in ("delivery", "signing", "reproduce", "review.qa", "identity.pack", "identity.encode",
                   "identity.images"):
        for name, value in vars(importlib.import_module(f"idcli.{module}")).items():
            if isinstance(value, type) and issubclass(value, idcli.InputError) and value.__module__.endswith(module):
                raised[name] = value
    assert set(names) <= set(raised) and {"DeliveryError", "SigningError", "ReproduceError"} <= set(names)
    assert not [n for n in names if hasattr(idcli, n)]


def test_export_json_out_dir_is_absolute_like_every_other_document(write_shotlist, tmp_path: Path, engine_factory,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper run from another folder read ``out_dir`` from each step's document: every one gave
    ``/abs/renders`` but ``export --json``, which gave the folder as typed (``renders``)."""
    from review_helpers import cli

    shots = write_shotlist(_tiny_shots("export-abs", "a lighthouse"))
    assert idcli.render(shots, tmp_path / "renders", device="cpu", engine_factory=engine_factory).rendered == 1
    monkeypatch.chdir(tmp_path)
    result = cli("export", "renders", "--otio", "cut.otio", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["out_dir"] == str(tmp_path / "renders"), document
    assert document["files"] == [{"format": "otio", "path": "cut.otio"}]  # an input file: as the user named it
    assert json.loads(cli("review", "renders", "--json").stdout)["out_dir"] == document["out_dir"]


def test_plan_json_reason_is_null_when_there_is_nothing_to_say_as_in_render_json(write_shotlist,
                                                                                  tmp_path: Path) -> None:
    """``reason`` of a new or done job was ``""`` in ``plan --json`` and ``null`` in ``render --json``: one field, two
    types, so a wrapper's ``reason is not None`` check held for every planned job."""
    shots = write_shotlist(_tiny_shots("reason-null", "a lighthouse", "a harbour"))
    document = idcli.plan_folder(shots, tmp_path / "out")
    assert [(j["state"], j["reason"], j["cause"]) for j in document["jobs"]] == [("new", None, None)] * 2


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_an_unusable_idcli_home_is_named_as_idclis_cache(write_shotlist, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A farm's ``IDCLI_HOME`` on a read-only share (or a file by mistake) stopped ``validate --selfies`` and
    ``render`` with exit 5 and only "PATH: Not a directory" or "permission denied while writing PATH": nothing said
    the path was idcli's cache, not the output folder exit 5 is about, nor what to do."""
    from review_helpers import cli

    shots = write_shotlist("""\
        version: 1
        project: home
        model: {preset: tiny-sd}
        characters:
          mara: {selfies: [selfies/mara_1.jpg]}
        shots:
          - {id: a010, prompt: "{mara} on a street"}
        """)
    home = tmp_path / "cache"
    if kind == "file":
        home.write_text("not a folder", "utf-8")
    else:
        home.mkdir()
        real = os.open  # every module's os.open, idcli.store's and the identity cache's alike

        def read_only(path, flags, *args, **kwargs):  # EROFS for every write under the cache, as on a read-only share
            if str(path).startswith(str(home)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(30, "Read-only file system", str(path))
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
    monkeypatch.setenv("IDCLI_HOME", str(home))
    result = cli("validate", shots, "--selfies", "--json")
    assert result.exit_code == 5, result.output
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "OutputError" and str(home) in error["message"], error
    assert "idcli's cache (IDCLI_HOME" in error["message"] and "writable" in error["message"], error


def test_render_json_says_on_stderr_why_it_failed_and_what_it_moved_aside(write_shotlist, selfies: Path,
                                                                          tmp_path: Path, tiny_engines,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``idcli render --json > report.json 2>> render.log`` exited 1 for a character whose selfie shows no face with
    nothing in the log but progress: the ``idcli: error: FILE:LINE:COL: character … cannot be used`` line the command
    prints without ``--json`` (even with ``--quiet``) was left out, and so were its notes (takes rendered again, earlier
    renders moved to .idcli/superseded). The contract: one document on stdout; progress, notes and the human-readable
    error on stderr, as every other command's failing ``--json`` prints its error there."""
    from PIL import Image
    from review_helpers import cli

    import idcli.run as run_module

    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    theo, mara = Image.open(selfies / "theo_1.jpg"), Image.open(selfies / "mara_1.jpg")
    group = Image.new("RGB", (theo.width + mara.width, max(theo.height, mara.height)), (90, 120, 160))
    group.paste(theo, (0, 0))
    group.paste(mara, (theo.width, 0))
    group.save(selfies / "group.jpg", quality=92)  # two faces: the plan warns, naming the selfie (the largest is used)
    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "theo_1.jpg", format="JPEG")  # no face
    text = """\
        version: 1
        project: logged
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 2}
        characters:
          mara: {selfies: [selfies/group.jpg]}
          theo: {selfies: [selfies/theo_1.jpg]}
        shots:
          - {id: m1, prompt: "{mara} on a pier"}
          - {id: t1, prompt: "{theo} on a pier"}
        """
    path, out = write_shotlist(text), tmp_path / "out"
    said = f"idcli: error: {path}:7:20: character 'theo' cannot be used"
    for quiet in ([], ["--quiet"]):
        result = cli("render", path, "--out", out, "--device", "cpu", "--json", *quiet)
        assert result.exit_code == idcli.EXIT_JOBS_FAILED, result.output
        assert json.loads(result.stdout)["problems"][0]["line"] == 7  # one document on stdout, as before
        assert said in result.stderr, (quiet, result.stderr)
        assert f"idcli: warning: {path}:6:20: characters.mara.selfies[0]" in result.stderr, (quiet, result.stderr)
        assert result.stderr.count("shows 2 faces") == 1, (quiet, result.stderr)  # once, as without --json
    assert said in cli("render", path, "--out", out, "--device", "cpu", "--quiet").stderr  # what it says without
    edited = write_shotlist(text.replace("{mara} on a pier", "{mara} on a long pier"))
    result = cli("render", edited, "--out", out, "--device", "cpu", "--json")
    assert result.exit_code == idcli.EXIT_JOBS_FAILED and json.loads(result.stdout)["counts"]["rendered"] == 1
    assert "idcli: note: 1 take(s) rendered again because what makes them changed" in result.stderr, result.stderr
    assert "idcli: note:   m1: prompt changed" in result.stderr, result.stderr
    assert f"idcli: note: 1 earlier render(s) moved to {out / '.idcli' / 'superseded'} by this run" in result.stderr
    assert said in result.stderr
    quiet = cli("render", write_shotlist(text), "--out", out, "--device", "cpu", "--json", "--quiet")
    assert quiet.exit_code == idcli.EXIT_JOBS_FAILED and json.loads(quiet.stdout)["counts"]["restored"] == 1
    assert "note:" not in quiet.stderr and said in quiet.stderr, quiet.stderr  # --quiet: errors only


def _idcli_with_closed(closed: str, *argv: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``idcli ARGV`` started with a standard descriptor closed, as ``idcli … >&-`` or ``2>&-`` (or a daemon that
    closed them) starts it: Python then has no ``sys.stdout`` / ``sys.stderr`` at all (None)."""
    return subprocess.run(["sh", "-c", f'exec "$@" {closed}', "sh", sys.executable, "-m", "idcli", *map(str, argv)],
                          capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=300)


def test_a_closed_stdout_or_stderr_descriptor_changes_no_exit_code_and_no_document(write_shotlist,
                                                                                   tmp_path: Path) -> None:
    """``idcli render FILE --json 2>&-`` (stderr closed, not a closed pipe) rendered nothing: exit 120 and an
    ``InternalError`` document ('NoneType' object has no attribute 'isatty'); ``deliver --json 2>&-`` printed its
    document, then a second one for the note it could not say; ``>&-`` ended every command with a traceback and exit 1,
    the code of failed jobs. A closed descriptor is a reader that is not there: the run goes on to its own exit code,
    its document whole on stdout, its messages on stderr, whichever is open."""
    path, out = write_shotlist(_tiny_shots("closed", "a lighthouse in a storm")), tmp_path / "out"
    done = _idcli_with_closed("2>&-", "render", path, "--out", out, "--device", "cpu", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["counts"]["rendered"] == 1 and (out / "a010" / "a010_t1.png").is_file()
    done = _idcli_with_closed(">&-", "render", path, "--out", out, "--device", "cpu", "--json", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "1 job: 1 already done, 0 to render" in done.stderr, done.stderr
    done = _idcli_with_closed("2>&-", "deliver", out, tmp_path / "dest", "--json", cwd=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)["counts"]["written"] == 1, done.stdout  # one document
    done = _idcli_with_closed(">&-", "qa", tmp_path / "nowhere", "--json", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "idcli: error: " in done.stderr and "no such output folder" in done.stderr, done.stderr
    done = _idcli_with_closed(">&- 2>&-", "verify", out, cwd=tmp_path)
    assert done.returncode == 0, done.returncode


def test_the_qa_review_and_evaluate_functions_check_their_arguments(write_shotlist, tmp_path: Path,
                                                                     engine_factory) -> None:
    """The library calls behind ``idcli qa``, ``review`` and ``evaluate``, scripted as ``render`` is: a wrong argument
    is an ``InputError`` naming it, checked before anything is read or written, as every public function's (README,
    From Python). ``recheck(out, thresholds=0.3)`` (the command's ``--qa-low-identity 0.3``) raised ``AttributeError:
    'float' object has no attribute 'low_identity'`` mid-folder, ``render(qa_thresholds=0.3)``'s bug again;
    ``evaluate("out")`` read the folder's name letter by letter (``o: no such output folder``); ``write_review("out")``
    raised ``AttributeError: 'str' object has no attribute 'shots'``."""
    from idcli.review.evaluate import evaluate
    from idcli.review.page import write_review
    from idcli.review.qa import QAThresholds
    from idcli.review.recheck import recheck
    from idcli.review.runs import load_run

    shots, out = write_shotlist(_tiny_shots("review-args", "a lighthouse in a storm")), tmp_path / "out"
    assert idcli.render(shots, out, device="cpu", engine_factory=engine_factory).rendered == 1
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for kwargs in (dict(thresholds=0.3), dict(thresholds={"low_identity": 0.3}), dict(wait="yes"),
                   dict(face_models=3)):
        name = next(iter(kwargs))
        with pytest.raises(idcli.InputError, match=f"^{name}=") as caught:
            recheck(out, **kwargs)
        assert caught.value.exit_code == 2, caught.value
    with pytest.raises(idcli.InputError, match=r"^thresholds=0\.3: give idcli\.review\.qa\.QAThresholds") as caught:
        recheck(out, thresholds=0.3)  # type: ignore[arg-type]
    assert caught.value.field == "thresholds"
    with pytest.raises(idcli.InputError, match=r"^out_dir=None"):
        recheck(None)  # type: ignore[arg-type]
    with pytest.raises(idcli.InputError, match=r"^run='.*load_run\(OUT\)") as caught:
        write_review(str(out))  # type: ignore[arg-type]
    assert caught.value.field == "run"
    for folders in ([3], 3, []):
        with pytest.raises(idcli.InputError, match=r"^folders=") as caught:
            evaluate(folders)  # type: ignore[arg-type]
        assert caught.value.field == "folders"
    with pytest.raises(idcli.InputError, match=r"^shots_file=3"):
        evaluate([out], shots_file=3)  # type: ignore[arg-type]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing read or written
    # One folder given as itself is one run, as read_results(out) reads one; the right types work as before.
    assert [s.images for s in evaluate(str(out))] == [s.images for s in evaluate([out])] == [1]
    assert recheck(out, thresholds=QAThresholds(0.3, 0.35), wait=False).without_cast == 1
    assert write_review(load_run(out)).takes == 1


def test_a_render_sets_no_environment_variable_of_the_calling_process(write_shotlist, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``idcli.render`` set ``TRANSFORMERS_VERBOSITY=error`` in the caller's ``os.environ`` to quiet transformers'
    import-time notices: every process the pipeline started afterwards (its own training or captioning script) ran
    with transformers' warnings silenced, and never knew why."""
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    shots = write_shotlist("version: 1\nproject: env\nmodel: {preset: tiny-sd}\ndefaults: {size: 64x64, steps: 2}\n"
                           "characters:\n  mara: {selfies: [selfies/mara_1.jpg]}\n"
                           'shots:\n  - {id: a010, prompt: "{mara} on a street"}\n')
    report = idcli.render(shots, tmp_path / "out")
    assert report.exit_code == 0 and report.rendered == 1, report.as_dict()
    assert "TRANSFORMERS_VERBOSITY" not in os.environ


# The loggers idcli quiets while it runs: a host's level, handlers and filters on them are its own.
HOST_LOGGERS = ("transformers", "transformers.utils.import_utils", "diffusers", "huggingface_hub",
                "huggingface_hub.hf_api")


def _host_library_state() -> dict[str, object]:
    """What a host process sees of the libraries idcli drives: the named loggers, both verbosities, the progress-bar
    switches (transformers' and huggingface_hub's, per group) and ``warnings.filters``."""
    import logging
    import warnings

    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub.utils import tqdm as _hub_tqdm  # noqa: F401  (the module below, imported)
    from transformers.utils import logging as transformers_logging

    hub_bars = sys.modules["huggingface_hub.utils.tqdm"]
    loggers = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers),
                      list(logging.getLogger(name).filters), logging.getLogger(name).propagate)
               for name in HOST_LOGGERS}
    return {"loggers": loggers, "transformers": transformers_logging.get_verbosity(),
            "diffusers": diffusers_logging.get_verbosity(),
            "transformers bars": transformers_logging.is_progress_bar_enabled(),
            "diffusers bars": diffusers_logging.is_progress_bar_enabled(),
            "hub bars": dict(hub_bars.progress_bar_states), "warnings": list(warnings.filters)}


def test_a_render_leaves_the_hosts_library_logging_and_warnings_as_it_found_them(
        write_shotlist, selfies: Path, tmp_path: Path, synthetic_face_models: Path) -> None:
    """A pipeline that logs diffusers' and transformers' warnings of its own lost them after one ``idcli.render``:
    idcli set diffusers' verbosity to ERROR, the level of transformers' import_utils logger, a filter on
    huggingface_hub's hf_api logger, turned transformers' (and so huggingface_hub's) progress bars off and added a
    process-wide ``warnings`` filter when it loaded face models, and put none of it back. It quiets them while its
    own calls run (a FaceID-Plus v2 render: the pipeline, its adapter and the CLIP image encoder; insightface
    detecting and aligning faces) and the host finds its settings as it left them."""
    import importlib
    import logging
    import warnings

    import numpy as np
    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub.utils import disable_progress_bars
    from PIL import Image
    from transformers.utils import logging as transformers_logging

    from idcli.identity.faces import FaceAnalyzer, norm_crop, resolve_face_models

    # scipy adds warnings filters of its own when first imported (the render's face alignment imports it): imported
    # before, so that what is compared is what idcli does.
    importlib.import_module("scipy.sparse")
    importlib.import_module("scipy.special")

    # The host's own choices, each one idcli's quieting would change: chatty libraries, its own handler and filter
    # on diffusers' logger, progress bars on but for one group of huggingface_hub's, and its own warnings filter
    # (the test process's own settings are put back after; pytest puts back warnings.filters itself).
    hub_bars = sys.modules["huggingface_hub.utils.tqdm"]
    process = (transformers_logging.get_verbosity(), logging.getLogger("transformers.utils.import_utils").level,
               diffusers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled(),
               dict(hub_bars.progress_bar_states))
    transformers_logging.set_verbosity_warning()
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.NOTSET)
    diffusers_logging.set_verbosity_info()
    host_handler, host_filter = logging.NullHandler(), logging.Filter("diffusers.pipelines")
    logging.getLogger("diffusers").addHandler(host_handler)
    logging.getLogger("diffusers").addFilter(host_filter)
    transformers_logging.enable_progress_bar()
    disable_progress_bars("huggingface_hub.lfs_upload")
    warnings.filterwarnings("default", category=FutureWarning)
    try:
        before = _host_library_state()
        analyzer = FaceAnalyzer(resolve_face_models(str(synthetic_face_models)))  # a face-model load of its own
        selfie = np.asarray(Image.open(selfies / "mara_1.jpg").convert("RGB"))
        faces = analyzer.detect(selfie)
        assert faces and norm_crop(selfie, faces[0].kps, 112).shape == (112, 112, 3)
        shots = write_shotlist("version: 1\nproject: host\nmodel: {preset: tiny-sd, adapter: {variant: "
                               "faceid-plusv2}}\ndefaults: {size: 64x64, steps: 2}\n"
                               "characters:\n  mara: {selfies: [selfies/mara_1.jpg]}\n"
                               'shots:\n  - {id: a010, prompt: "{mara} on a street"}\n')
        report = idcli.render(shots, tmp_path / "out", device="cpu")
        assert report.exit_code == 0 and report.rendered == 1, report.as_dict()
        after = _host_library_state()
        changed = {what: (before[what], after[what]) for what in before if after[what] != before[what]}
        assert not changed, f"changed: {sorted(changed)}: {changed}"
    finally:
        logging.getLogger("diffusers").removeHandler(host_handler)
        logging.getLogger("diffusers").removeFilter(host_filter)
        transformers_logging.set_verbosity(process[0])
        logging.getLogger("transformers.utils.import_utils").setLevel(process[1])
        diffusers_logging.set_verbosity(process[2])
        (transformers_logging.enable_progress_bar if process[3] else transformers_logging.disable_progress_bar)()
        hub_bars.progress_bar_states.clear()
        hub_bars.progress_bar_states.update(process[4])


def test_render_json_exit_1_error_names_the_unusable_characters_file_and_line(write_shotlist, selfies: Path,
                                                                               tmp_path: Path) -> None:
    """``render --json`` exiting 1 because a character's selfie shows no face gave ``error`` as ``{"message": "1
    job(s) failed; the rest are kept", "file": null, "line": null, …, "problems": []}``: a script reading the error
    object every command shares (``jq '.error | "\\(.file):\\(.line)"'``) got nothing, while the document's own
    ``problems`` and stderr named the selfie's line. The error object now repeats the problems that failed takes."""
    from PIL import Image

    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "theo_1.jpg", format="JPEG")  # no face
    path = write_shotlist("""\
        version: 1
        project: failing
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 2}
        characters:
          mara: {selfies: [selfies/mara_1.jpg]}
          theo: {selfies: [selfies/theo_1.jpg]}
        shots:
          - {id: m1, prompt: "{mara} on a pier"}
          - {id: t1, prompt: "{theo} on a pier"}
        """)
    document = idcli.render(path, tmp_path / "out").as_dict()
    error, problem = document["error"], document["problems"][0]
    assert document["exit_code"] == idcli.EXIT_JOBS_FAILED and error["type"] == "JobsFailed", document
    assert error["problems"] == [problem] and problem["line"] == 7, document
    assert [error[k] for k in ("file", "line", "column", "field", "hint")] == \
        [problem[k] for k in ("file", "line", "column", "field", "hint")], error
    assert error["message"] == "1 job(s) failed; the rest are kept"  # the message scripts already match stays
    # --only m1: theo's problem fails no take of this run; it is a note, and the run is ok.
    assert idcli.render(path, tmp_path / "out", only="m1").as_dict()["error"] is None
