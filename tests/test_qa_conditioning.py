"""Identity QA checks the characters whose identities condition the image (docs/review.md, "Identity QA"): a
character that only appears through its description (`method: single`'s others, identity strength 0) cannot be
expected to look like its selfies, and flagging it made every take of such a shot "flagged" (and
`--retake-flagged` re-roll it to the bound). Its face still counts against the others as leakage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from review_helpers import DetectedFace, face_canvas
from typer.testing import CliRunner

import idcli
from idcli.cli import app

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SHOTS = """\
version: 1
project: cast-qa
model: {preset: tiny-sd}
defaults: {size: 256x128, steps: 2, guidance: 2.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a young man}
  piet: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a tall stranger, identity_strength: 0}
shots:
  - id: dual
    prompt: "{mara} and {theo} at a dinner table"
  - id: single
    prompt: "{mara} and {theo} at a dinner table"
    method: single
  - id: unconditioned
    prompt: "{mara} and {piet} at a dinner table"
  - id: textonly
    prompt: "{piet} alone at a dinner table"
"""


class StrangerEngine:
    """Draws mara's face for her description and a stranger's (ines's drawn face) for every other character:
    what a render looks like when only mara's identity reached the image."""

    adapter_record = None

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        results = []
        for request in requests:
            faces = ["mara_1"] if "red-haired woman" in request.prompt else []
            faces += ["ines_1"] if ("young man" in request.prompt or "tall stranger" in request.prompt) else []
            results.append(RenderResult(face_canvas(faces, request.width, request.height).astype(np.float32) / 255))
        return results

    def suggest_batch_size(self, request) -> int:
        return 4


def _qa(out: Path) -> dict[str, dict | None]:
    return {r["shot_id"]: r.get("qa") for r in idcli.read_results(out)}


def test_qa_checks_only_the_characters_whose_identity_conditions_the_image(write_shotlist, tmp_path: Path) -> None:
    engine = StrangerEngine()
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(write_shotlist(SHOTS)), out, device="cpu",
                          engine_factory=lambda identity, runtime, adapter=None: engine)
    assert report.failed == 0
    at_commit = _qa(out)
    # theo conditions the dual-line image and his face is a stranger's: QA catches it.
    assert at_commit["dual"]["cast"] == ["mara", "theo"] and "low_identity" in at_commit["dual"]["flags"]
    # With method: single only mara conditions; theo is in the picture through his description.
    assert at_commit["single"]["cast"] == ["mara"] and at_commit["single"]["flags"] == []
    assert at_commit["unconditioned"]["cast"] == ["mara"] and at_commit["unconditioned"]["flags"] == []
    # The stranger's face is recorded, matched to nobody, and still counted as leakage against mara.
    faces = at_commit["single"]["faces"]
    assert sorted(f["character"] or "-" for f in faces) == ["-", "mara"]
    assert at_commit["single"]["leakage"] is not None and at_commit["single"]["leakage"] < 0.35
    # A shot no identity conditions is text-only: nothing to check, as for a shot without characters.
    assert at_commit["textonly"] is None
    # idcli qa, from the sidecars, says the same.
    result = CliRunner().invoke(app, ["qa", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["without_cast"] == 1
    again = _qa(out)
    for shot in ("dual", "single", "unconditioned"):
        assert {k: v for k, v in again[shot].items() if k != "seconds"} == \
            {k: v for k, v in at_commit[shot].items() if k != "seconds"}, shot
    assert again["textonly"] is None


def test_idcli_qa_drops_an_older_qa_record_of_a_shot_no_identity_conditions(write_shotlist, tmp_path: Path) -> None:
    # An idcli before 2026-11-30 checked `{piet} alone` (piet at strength 0) against piet's selfies and recorded it
    # flagged; `idcli qa` now skips such a take (no cast), and left that old record in place, so the review page,
    # deliver's choice of take and --retake-flagged still saw a flag nothing stands behind. It is dropped, as a
    # render today commits no qa there.
    engine = StrangerEngine()
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(write_shotlist(SHOTS)), out, device="cpu",
                 engine_factory=lambda identity, runtime, adapter=None: engine)
    sidecar_path = out / "textonly" / "textonly_t1.json"
    sidecar = json.loads(sidecar_path.read_text("utf-8"))
    assert "qa" not in sidecar
    sidecar["qa"] = {"version": 1, "cast": ["piet"], "flags": ["low_identity"], "faces": []}  # as recorded then
    sidecar_path.write_text(json.dumps(sidecar, indent=2), "utf-8")
    assert _qa(out)["textonly"]["flags"] == ["low_identity"]
    result = CliRunner().invoke(app, ["qa", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["without_cast"] == 1
    assert _qa(out)["textonly"] is None and "qa" not in json.loads(sidecar_path.read_text("utf-8"))
    from idcli.verify import verify_folder

    assert verify_folder(out).failed == 0  # the sidecar is still the image's record


MIRROR = """\
version: 1
project: mirror-qa
model: {preset: tiny-sd}
defaults: {size: 256x128, steps: 2, guidance: 2.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
shots:
  - id: mirror
    prompt: "{mara} looks at {mara} in a mirror"
"""


class MirrorEngine:
    """Draws the faces it is told to, whatever the request: two of mara's, or mara's and a stranger's."""

    adapter_record = None

    def __init__(self, faces: list[str]) -> None:
        self.faces = faces

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        return [RenderResult(face_canvas(self.faces, r.width, r.height).astype(np.float32) / 255) for r in requests]

    def suggest_batch_size(self, request) -> int:
        return 4


def test_a_character_named_twice_may_show_twice_but_not_as_a_stranger(write_shotlist, tmp_path: Path) -> None:
    # '{mara} looks at {mara} in a mirror' conditions both places with mara (docs/shot-lists.md, "Group shots"):
    # two of her faces are the picture asked for, not leakage; a stranger in the second place is a failure.
    shots = write_shotlist(MIRROR)
    found = {}
    for case, faces in {"two": ["mara_1", "mara_2"], "stranger": ["mara_1", "ines_1"]}.items():
        out = tmp_path / case
        engine = MirrorEngine(faces)
        idcli.render(idcli.load_shotlist(shots), out, device="cpu",
                     engine_factory=lambda identity, runtime, adapter=None, engine=engine: engine)
        found[case] = _qa(out)["mirror"]
        assert CliRunner().invoke(app, ["qa", str(out)]).exit_code == 0
        again = _qa(out)["mirror"]
        assert {k: v for k, v in again.items() if k != "seconds"} == \
            {k: v for k, v in found[case].items() if k != "seconds"}, case
    assert found["two"]["flags"] == [] and [f["character"] for f in found["two"]["faces"]] == ["mara", "mara"]
    assert found["two"]["characters"]["mara"]["cosine"] > 0.8
    assert found["stranger"]["flags"] == ["low_identity"]
    assert sorted(f["character"] for f in found["stranger"]["faces"]) == ["mara", "mara"]


def test_findings_name_the_stranger_in_a_characters_second_place() -> None:
    from idcli.review.qa import CastMember, assess
    from idcli.review.qa_findings import findings

    a, b = np.eye(512)[0], np.eye(512)[1]
    faces = [DetectedFace([0, 0, 50, 50], a), DetectedFace([60, 0, 100, 40], b + 0.05 * a)]
    named_once = assess(faces, [CastMember("mara", a)], 100, 100)
    assert named_once["flags"] == [] and named_once["faces"][1]["character"] is None  # a stranger in the crowd
    twice = assess(faces, [CastMember("mara", a)], 100, 100, repeats={"mara": 2})
    assert twice["flags"] == ["low_identity"] and twice["characters"]["mara"] == {"face": 0, "cosine": 1.0}
    assert findings(twice) == ["mara: cosine 0.05 below 0.35"]
