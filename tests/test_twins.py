"""Two characters who share one face (identity/twins.py; docs/identity.md, "Two characters, one face"): their
selfies are the same files or bytes, so they render as the same person and identity QA cannot tell them apart.
validate and plan say it in one warning line naming both and their lines (not an error: one actor may stand in for
two parts), and QA does not flag one taken for the other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import plan_on_cpu
from review_helpers import DetectedFace, cli, face_canvas

import idcli

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SHOTS = """\
version: 1
project: twins
model: {preset: tiny-sd}
defaults: {size: 256x128, steps: 2, guidance: 2.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  ines: {selfies: [SELFIES], description: a woman in a green coat}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: table
    prompt: "{mara} and {ines} at a dinner table"
  - id: alone
    prompt: "{theo} alone in a hall"
"""
SAME_FILES = SHOTS.replace("SELFIES", "selfies/mara_1.jpg, selfies/mara_2.jpg")
COPIES = SHOTS.replace("SELFIES", "selfies/copy_1.jpg, selfies/copy_2.jpg")


def _copies(selfies: Path) -> None:
    shutil.copy(selfies / "mara_1.jpg", selfies / "copy_1.jpg")
    shutil.copy(selfies / "mara_2.jpg", selfies / "copy_2.jpg")


def _warned(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("idcli: warning:") and "'mara'" in line]


def test_validate_says_two_characters_share_their_selfie_files_in_one_warning(write_shotlist) -> None:
    shots = write_shotlist(SAME_FILES)
    result = cli("validate", shots)
    assert result.exit_code == 0, result.output  # a warning, not a problem
    [line] = _warned(result.output)
    assert line == (f"idcli: warning: {shots}: characters 'mara' (line 6) and 'ines' (line 7) have the same selfie "
                    "files: they render as the same person, and identity QA cannot tell them apart (it does not "
                    "flag one taken for the other); give each their own selfies unless one face is meant")
    document = json.loads(cli("validate", shots, "--json").stdout)
    assert document["ok"] is True and len(document["warnings"]) == 1 and "'theo'" not in document["warnings"][0]


def test_copied_selfies_are_told_by_their_bytes_once_they_are_read(write_shotlist, selfies: Path) -> None:
    _copies(selfies)
    shots = write_shotlist(COPIES)
    assert _warned(cli("validate", shots).output) == []  # plain validate reads no selfie: other files
    [line] = _warned(cli("validate", shots, "--selfies").output)
    assert "characters 'mara' (line 6) and 'ines' (line 7) have the same selfie bytes: they render" in line, line
    [warning] = [w for w in plan_on_cpu(shots).warnings if "same person" in w]
    assert "'mara' (line 6) and 'ines' (line 7) have the same selfie bytes" in warning
    printed = cli("plan", shots, "--device", "cpu")
    assert printed.exit_code == 0 and len(_warned(printed.output)) == 1, printed.output


def test_characters_with_their_own_selfies_get_no_warning(write_shotlist) -> None:
    shots = write_shotlist(SHOTS.replace("SELFIES", "selfies/ines_1.jpg, selfies/ines_2.jpg"))
    assert _warned(cli("validate", shots, "--selfies").output) == []
    assert not [w for w in plan_on_cpu(shots).warnings if "same person" in w]


class TwinEngine:
    """Draws the faces it is told to, whatever the request (two of mara's for the twins' shot)."""

    adapter_record = None

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        faces = ["mara_1", "mara_2"]
        return [RenderResult(face_canvas(faces, r.width, r.height).astype(np.float32) / 255) for r in requests]

    def suggest_batch_size(self, request) -> int:
        return 4


def test_qa_does_not_flag_one_twin_taken_for_the_other(write_shotlist, tmp_path: Path) -> None:
    # Two of mara's faces in the shot of mara and ines, who share her selfies: each face is as much ines's as
    # mara's, and the one matched to mara looked like "leakage" from ines (and the other way round).
    shots, out = write_shotlist(SAME_FILES), tmp_path / "out"
    engine = TwinEngine()

    def factory(identity, runtime, adapter=None) -> TwinEngine:
        return engine

    idcli.render(idcli.load_shotlist(shots), out, device="cpu", only=["table"], engine_factory=factory)
    [record] = [r["qa"] for r in idcli.read_results(out)]
    assert record["flags"] == [], record
    assert sorted(f["character"] for f in record["faces"]) == ["ines", "mara"]
    assert cli("qa", out).exit_code == 0


def test_twins_are_not_leakage_but_a_third_character_still_is() -> None:
    from idcli.review.qa import CastMember, assess

    a, b = np.eye(512)[0], np.eye(512)[1]
    twins = [CastMember("mara", a), CastMember("ines", a.copy())]
    faces = [DetectedFace([0, 0, 50, 50], a), DetectedFace([60, 0, 100, 40], a)]
    assert assess(faces, twins, 100, 100)["flags"] == []
    swapped = assess(list(reversed(faces)), twins, 100, 100)
    assert swapped["flags"] == [] and swapped["leakage"] is None
    # theo's face is mara's: leakage still, the twins' likeness aside
    trio = [*twins, CastMember("theo", b)]
    leaked = assess([*faces, DetectedFace([0, 60, 40, 100], a)], trio, 100, 100)
    assert "leakage" in leaked["flags"] and leaked["leakage_pair"]["character"] in ("mara", "ines")


class TwinsAndStrangerEngine(TwinEngine):
    """The twins' two faces and a third, theo's: a stranger to the shot's cast (mara and ines)."""

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        faces = ["mara_1", "mara_2", "theo_1"]
        return [RenderResult(face_canvas(faces, r.width, r.height).astype(np.float32) / 255) for r in requests]


def test_a_stranger_beside_the_twins_is_an_extra_face_and_the_twins_are_not_blamed(write_shotlist,
                                                                                    tmp_path: Path) -> None:
    # The twins' faces and a third matching nobody: the twins take their two faces (neither leakage against the
    # other), the stranger is an extra face (character null) as beside any cast, and nothing is flagged.
    shots, out = write_shotlist(SAME_FILES.replace("256x128", "384x128")), tmp_path / "out"
    engine = TwinsAndStrangerEngine()
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", only=["table"], engine_factory=lambda *a: engine)
    [record] = [r["qa"] for r in idcli.read_results(out)]
    assert record["flags"] == [], record
    faces = record["faces"]
    assert sorted(str(f["character"]) for f in faces) == ["None", "ines", "mara"], faces
    [stranger] = [f for f in faces if f["character"] is None]
    assert max(stranger["cosines"].values()) < 0.2  # theo looks like neither twin
    # its cosine is the record's leakage, the highest left once the twins' faces are theirs: far below the flag's
    assert record["leakage_pair"]["face"] == faces.index(stranger) and record["leakage"] < 0.35
    from idcli.review.qa_findings import findings

    assert findings(record) == []
    checked = cli("qa", out)
    assert checked.exit_code == 0 and "0 flagged" in checked.stdout, checked.output


def test_a_face_that_looks_like_the_twins_names_both() -> None:
    # theo's face is the twins' face: it looks as much like ines as like mara, but the finding named mara only (the
    # first of two equal cosines), as if ines were no suspect.
    from idcli.review.qa import CastMember, assess
    from idcli.review.qa_findings import findings

    a, b = np.eye(512)[0], np.eye(512)[1]
    trio = [CastMember("mara", a), CastMember("ines", a.copy()), CastMember("theo", b)]
    faces = [DetectedFace([0, 0, 50, 50], a), DetectedFace([60, 0, 100, 40], a), DetectedFace([0, 60, 40, 100], a)]
    record = assess(faces, trio, 100, 100)
    assert record["leakage_pair"] == {"face": 2, "character": "mara", "twins": ["ines"]}
    assert findings(record)[-1] == "face #2 (matched to theo) looks like mara or ines, who share one face (1.00)"
    # no twin: as before, one name and no twins field
    alone = assess(faces, [CastMember("mara", a), CastMember("theo", b)], 100, 100)
    assert set(alone["leakage_pair"]) == {"face", "character"} and alone["leakage_pair"]["character"] == "mara"
    assert findings(alone)[-1].endswith(" looks like mara (1.00)")
