"""What a pipeline engineer scripting idcli from Python runs into: the progress object's life around a run that
does not finish (Ctrl-C, an engine that cannot load), `face_models=` typed as the path it takes, and the first
calls of a fresh process made from two threads at once."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

import idcli
from idcli.errors import ModelUnavailableError
from idcli.review.recheck import recheck

SHOTS = """\
version: 1
project: pipeline-trial
model: {preset: tiny-sd}
defaults: {size: 96x96, steps: 3, guidance: 4.0, sampler: ddim, takes: 1}
shots:
  - id: sh010
    prompt: a wet street at night
"""


class Recording:
    """A pipeline's progress object (a tqdm bar, a farm's status line): it must be closed however the run ends."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self, total: int, already_done: int) -> None:
        self.calls.append("start")

    def advance(self, outcome: Any) -> None:
        self.calls.append("advance")

    def note(self, text: str) -> None:
        pass

    def stop(self) -> None:
        self.calls.append("stop")


def _failing_engine(raised: BaseException):
    def factory(identity: Any, runtime: Any, adapter: Any = None) -> Any:
        raise raised

    return factory


@pytest.mark.parametrize("raised, caught", [(KeyboardInterrupt(), idcli.Interrupted),
                                            (ModelUnavailableError("no weights here"), ModelUnavailableError)],
                         ids=["ctrl-c", "model-unavailable"])
def test_progress_is_stopped_when_the_run_does_not_finish(write_shotlist, tmp_path: Path, raised: BaseException,
                                                           caught: type[BaseException]) -> None:
    progress = Recording()
    with pytest.raises(caught):
        idcli.render(write_shotlist(SHOTS), tmp_path / "out", device="cpu", progress=progress, qa=False,
                     engine_factory=_failing_engine(raised))
    # started once (the engine is built after start), so stopped once: a bar left running hid the terminal's cursor
    assert progress.calls == ["start", "stop"]


def _accepts_a_path(function: Any, name: str) -> bool:
    """Whether ``name``'s annotation admits a ``pathlib.Path``, as a pipeline's mypy or pyright reads it."""
    annotation = inspect.signature(function).parameters[name].annotation
    hint = eval(annotation, function.__globals__) if isinstance(annotation, str) else annotation
    return any(arg is Path or typing.get_origin(arg) is os.PathLike or arg is os.PathLike
               for arg in typing.get_args(hint))


@pytest.mark.parametrize("function", [idcli.render, idcli.plan_shotlist, idcli.plan_folder, idcli.reproduce, recheck],
                         ids=lambda function: function.__name__)
def test_face_models_is_typed_as_the_path_it_accepts(function: Any) -> None:
    # Each checks face_models with arguments.check_path_or_none, which takes a str or an os.PathLike; typed
    # `str | None`, `idcli.render(shots, out, face_models=Path(...))` worked and the pipeline's type checker refused it.
    assert _accepts_a_path(function, "face_models")


TWO_PLANS_AT_ONCE = """
import sys
import threading

import idcli

results = {}


def plan(index):
    try:
        results[index] = len(idcli.plan_shotlist(sys.argv[1], device="cpu")[0].jobs)
    except Exception as exc:
        results[index] = f"{type(exc).__name__}: {exc}"


threads = [threading.Thread(target=plan, args=(index,)) for index in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(results[0], results[1], sep="\\n")
"""


def test_two_plans_started_at_once_in_a_fresh_process_both_plan(write_shotlist) -> None:
    # A fresh interpreter: transformers not imported yet, as in a pipeline whose first idcli calls run in two threads.
    # Each thread's first `from transformers import CLIPTokenizer` raced the other's import of the package, and
    # one of the two plans (or renders) failed with ImportError every time (idcli/package_imports.py).
    shots = write_shotlist(SHOTS)
    done = subprocess.run([sys.executable, "-c", TWO_PLANS_AT_ONCE, str(shots)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(Path(idcli.__file__).parent.parent)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"], done.stdout


BAD = """\
version: 1
project: pipeline-trial
model: {preset: tiny-sd}
defaults: {stpes: 3}
shots:
  - id: sh010
    prompt: a wet street at night
"""


def _idcli(*args: str, encoding: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The command in a farm job whose locale is not UTF-8 (LANG=C without coercion, a latin-1 box): Python's stdout
    then encodes with that locale's codec."""
    env = {**os.environ, "PYTHONIOENCODING": encoding, "PYTHONPATH": str(Path(idcli.__file__).parent.parent)}
    env.pop("IDCLI_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "idcli", *args], capture_output=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_json_document_of_a_non_ascii_file_on_a_non_utf8_stdout(tmp_path: Path, encoding: str) -> None:
    # The document was written with the locale's codec: on ASCII, a traceback and exit 1 (the failed-jobs code) and no
    # document; on latin-1, bytes that are not UTF-8, which jq and json.loads of the bytes refuse.
    (tmp_path / "scène 12.yaml").write_text(BAD, "utf-8")
    done = _idcli("validate", "scène 12.yaml", "--json", encoding=encoding, cwd=tmp_path)
    assert done.returncode == idcli.EXIT_INVALID_INPUT, done.stderr.decode("utf-8", "replace")
    document = json.loads(done.stdout.decode("utf-8"))
    assert document["error"]["file"] == "scène 12.yaml" and document["error"]["field"] == "defaults.stpes"
    assert b"Traceback" not in done.stderr


def test_plan_table_on_an_ascii_stdout(write_shotlist, tmp_path: Path) -> None:
    # The table's arrows and dashes (→, —) stopped `idcli plan` with exit 70, an "internal error", on an ASCII stdout.
    shots = write_shotlist(SHOTS)
    done = _idcli("plan", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu", encoding="ascii",
                  cwd=tmp_path)
    assert done.returncode == idcli.EXIT_OK, done.stderr.decode("utf-8", "replace")
    assert b"sh010" in done.stdout
