"""Identity QA's face models refused while a render reuses an image (before any engine loads) end the journal with
the refusal too, as an engine's refusal does (tests/test_model_refusal_journal.py): the journal ended with its
``run-start`` alone, which the morning after (``idcli verify``, ``review``) read as a render stopped before it ended
(hostile-read-30, 2026-12-02)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import idcli
from idcli.errors import ModelUnavailableError
from idcli.review.qa import IdentityQA
from idcli.unfinished import unfinished_takes

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SHOTS = """\
    version: 1
    project: reuse-refusal
    model: {{preset: tiny-sd}}
    defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: euler}}
    characters:
      mara: {{selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}}
    shots:
      - {{id: a020, prompt: "{{mara}} in a bar at night", seeds: [5]}}
{more}"""
GONE = "identity QA: the face models in /srv/face-models are not there (they were moved)"


def test_face_models_refused_while_reusing_end_the_journal_with_why(write_shotlist: Any, tmp_path: Path,
                                                                   engine_factory: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(write_shotlist(SHOTS.format(more=""))), out, device="cpu", batch_size=1,
                 engine_factory=engine_factory, qa=False)
    # a030 is a020 again (same prompt, seed, cast): its image is reused, and QA checks it first
    shots = write_shotlist(SHOTS.format(more='      - {id: a030, prompt: "{mara} in a bar at night", seeds: [5]}\n'
                                             '      - {id: a040, prompt: "an empty street", seeds: [6]}\n'))

    def face_models_gone(*args: Any) -> Any:
        raise ModelUnavailableError(GONE)

    monkeypatch.setattr(IdentityQA, "for_preset", face_models_gone)  # the face models moved since the first run
    with pytest.raises(ModelUnavailableError) as refused:
        idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1, engine_factory=engine_factory)
    assert str(refused.value) == GONE
    lines = [json.loads(line) for line in (out / ".idcli" / "journal.jsonl").read_text("utf-8").splitlines()]
    events = [line["event"] for line in lines if line["event"] in ("run-start", "run-end")]
    assert events[-2:] == ["run-start", "run-end"], lines
    assert lines[-1]["event"] == "run-end" and lines[-1]["error"] == GONE, lines[-1]
    assert lines[-1]["not_rendered"] == 2 and lines[-1]["rendered"] == 0, lines[-1]
    left = unfinished_takes(out)
    assert left is not None and not left.stopped and GONE in left.note(), left
