"""The garbage collector in an ``idcli render`` process (idcli/cli/collector.py): the model libraries' objects,
alive until the process ends, are not walked by a full collection while the command runs, nor by the
interpreter's shutdown. Counted with gc.callbacks, not timed."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from cli_helpers import cli_env, render_argv

from idcli.cli import collector

# Runs ``idcli ARGS`` as ``python -m idcli`` would and writes to REPORT what the collector did: the full
# collections started while the command ran, and the objects left for the interpreter's shutdown to walk
# (counted by an exit handler registered before idcli's, so it runs after them).
_COUNTING_HOOK = """
import atexit, gc, json, sys
report_path, argv = sys.argv[1], sys.argv[2:]
seen = {"full_collections": 0, "tracked_after_command": 0, "tracked_at_shutdown": 0}

def count(phase, info):
    if phase == "start" and info["generation"] == 2:
        seen["full_collections"] += 1

def report():
    seen["tracked_at_shutdown"] = len(gc.get_objects())
    with open(report_path, "w") as f:
        json.dump(seen, f)

atexit.register(report)
sys.argv = ["idcli", *argv]
from idcli.cli import main
gc.callbacks.append(count)
try:
    main()
finally:
    gc.callbacks.remove(count)
    seen["tracked_after_command"] = len(gc.get_objects())
"""

SHOTS = """\
version: 1
project: collector
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
"""


def test_a_render_process_never_walks_its_model_libraries_in_a_full_collection(write_shotlist,
                                                                                 tmp_path: Path) -> None:
    path, report = write_shotlist(SHOTS), tmp_path / "collector.json"
    cmd = [sys.executable, "-c", _COUNTING_HOOK, str(report), *render_argv(path, tmp_path / "out", "--quiet")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(report.read_text("utf-8"))
    # The render imported torch, diffusers and transformers: hundreds of thousands of tracked objects.
    assert seen["tracked_after_command"] > 200_000, seen
    # CPython's default thresholds start a full collection about seven times during those imports; spaced out,
    # none (the imports use about 63 of the 100 middle-generation collections a full one waits for). At most two,
    # so that a somewhat bigger diffusers or transformers within pyproject's ranges does not fail this check.
    assert seen["full_collections"] <= 2, seen
    # Frozen at exit: the shutdown's collections find (nearly) nothing to walk.
    assert seen["tracked_at_shutdown"] < 1_000, seen


def test_a_command_in_a_callers_process_gives_the_threshold_back_and_freezes_nothing() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with collector.command_collector():
        assert gc.get_threshold() == (*before[:2], max(before[2], collector.FULL_COLLECTION_EVERY))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen  # the freeze waits for the process's exit
