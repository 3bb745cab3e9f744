"""A render with characters loads the face pack's ONNX models once: planning (encoding the selfies) and identity QA
after each batch share one FaceAnalyzer (identity/resolve.py ``shared_analyzer``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from cli_helpers import cli_env

# The child counts each onnxruntime.InferenceSession built from a file (insightface's per-resolution SCRFD
# sessions are built from bytes: not a file of the pack), then renders as `idcli render` does.
COUNTING_RENDER = """
import atexit, json, sys
import onnxruntime

built = []
construct = onnxruntime.InferenceSession.__init__

def counting(self, path_or_bytes, *args, **kwargs):
    if isinstance(path_or_bytes, str):
        built.append(path_or_bytes)
    return construct(self, path_or_bytes, *args, **kwargs)

onnxruntime.InferenceSession.__init__ = counting
atexit.register(lambda: print("SESSIONS " + json.dumps(built), file=sys.stderr))
sys.argv = ["idcli", "render", *sys.argv[1:]]
from idcli.cli import main
main()
"""

SHOTS = """\
version: 1
project: once
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
shots:
  - {id: s1, prompt: "close-up of {mara} in the rain"}
"""


def test_a_render_with_characters_loads_each_face_model_once(write_shotlist, tmp_path: Path,
                                                            synthetic_face_models: Path) -> None:
    """The selfies are encoded in this run (a fresh IDCLI_HOME) and QA checks the take: both need the face models,
    and each of the pack's files gives one session in the process (a second FaceAnalyzer would give two)."""
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", COUNTING_RENDER, str(write_shotlist(SHOTS)), "--out", str(out),
                          "--device", "cpu"], capture_output=True, text=True, env=cli_env(tmp_path / "home"),
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "encoding the selfies of 'mara'" in run.stderr
    sidecar = json.loads((out / "s1" / "s1_t1.json").read_text("utf-8"))
    assert sidecar["qa"]["cast"] == ["mara"]  # QA ran, after the encoding, in the same process
    sessions = Counter(Path(path).resolve() for path in json.loads(run.stderr.rsplit("SESSIONS ", 1)[1]))
    pack = sorted(path.resolve() for path in synthetic_face_models.glob("*.onnx"))  # $IDCLI_FACE_MODELS (conftest)
    assert len(pack) == 2 and dict(sessions) == dict.fromkeys(pack, 1), (sessions, pack)
