"""Identity QA of plate images (docs/review.md): a character may only be matched to a detected face in its
recorded box; the plate's own faces are recorded as such and never matched, leaked or flagged."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from review_helpers import face_canvas
from typer.testing import CliRunner

import idcli
from idcli.review.qa import PLATE_QA_VERSION, QA_VERSION, CastMember, IdentityQA, plate_regions

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qa_models(tmp_path_factory: pytest.TempPathFactory):
    from idcli.identity.faces import resolve_face_models
    from idcli.synthetic_faces import build_synthetic_face_pack

    return resolve_face_models(str(build_synthetic_face_pack(tmp_path_factory.mktemp("qa-face-models"))))


def test_a_plates_own_face_that_looks_like_the_character_does_not_pass_for_it(qa_models) -> None:
    qa = IdentityQA(qa_models)
    reference = qa.analyzer.detect(face_canvas(["mara_2"], 512, 512))
    assert len(reference) == 1
    mara = CastMember("mara", reference[0].embedding)
    # Left cell: the plate's own, untouched person, who looks like mara; right cell (mara's recorded box):
    # the face the plate render left there, which is theo's.
    image = face_canvas(["mara_1", "theo_1"], 512, 256)
    plate = {"faces": [{"character": "mara", "box": [256, 0, 256, 256]}]}

    before = qa.check(image, [mara])  # as QA judged it before: any face in the image
    assert before["flags"] == [] and before["version"] == QA_VERSION
    assert "plate_face" not in before["faces"][0]

    after = IdentityQA(qa_models).check(image, [mara], plate_regions(plate))
    assert after["version"] == PLATE_QA_VERSION
    assert "low_identity" in after["flags"] and "leakage" not in after["flags"]
    faces = sorted(after["faces"], key=lambda f: f["box"][0])  # left to right
    assert [f["plate_face"] for f in faces] == [True, False]
    assert faces[0]["character"] is None and faces[0]["cosine"] is None
    assert faces[0]["cosines"]["mara"] > 0.8  # recorded, yet not matched: it is outside mara's box
    assert faces[1]["character"] == "mara" and faces[1]["cosine"] < 0.35
    assert after["leakage"] is None  # one region face, one character, matched to each other

    # A character whose box holds no face at all is missing; the plate's faces do not stand in for it.
    empty = {"faces": [{"character": "mara", "box": [0, 0, 40, 40]}]}
    missing = qa.check(image, [mara], plate_regions(empty))
    assert missing["flags"] == ["no_face", "missing_character"]
    assert all(f["plate_face"] and f["character"] is None for f in missing["faces"])
    assert missing["characters"]["mara"] == {"face": None, "cosine": None}


ONE_FACE = """\
version: 1
project: plate-qa
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 2.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - id: shot
    prompt: "{mara} before a window"
    plate: plate.png
    plate_faces: [0]
"""


def test_commit_time_qa_and_idcli_qa_check_a_plate_render_by_region(write_shotlist, tmp_path: Path) -> None:
    from idcli.cli import app

    shutil.copy(ROOT / "recipes" / "plates" / "two_people.png", tmp_path / "plate.png")
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(write_shotlist(ONE_FACE)), out, device="cpu")
    assert report.failed == 0
    (committed,) = idcli.read_results(out)  # QA at commit time (run.py's hook, from the job's plate block)
    result = CliRunner().invoke(app, ["qa", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checked"] == 1
    (record,) = idcli.read_results(out)
    qa = record["qa"]
    # Both paths give the same record: the commit thread's (job.plate) and idcli qa's (the sidecar's plate).
    assert {k: v for k, v in qa.items() if k != "seconds"} == \
        {k: v for k, v in committed["qa"].items() if k != "seconds"}
    assert qa["version"] == PLATE_QA_VERSION and qa["cast"] == ["mara"]
    regions = plate_regions(record["plate"])
    assert regions is not None  # a plate image
    (x, _y, w, _h), = regions["mara"]
    # The plate's second person (right) is untouched: found, recorded as the plate's, matched to nobody.
    own = [f for f in qa["faces"] if f["plate_face"]]
    assert own and all(f["character"] is None and (f["box"][0] + f["box"][2]) / 2 > x + w for f in own)
    for face in qa["faces"]:
        if face["character"] is not None:
            cx = (face["box"][0] + face["box"][2]) / 2
            assert x - w / 4 <= cx <= x + w * 1.25  # only a face in mara's region can be mara's
    if qa["characters"]["mara"]["face"] is None:
        # (the tiny random-weight model leaves no detectable face in the region): missing, and theo's
        # untouched face neither stands in for mara (before: matched, low_identity) nor leaks.
        assert qa["flags"] == ["no_face", "missing_character"] if len(own) == len(qa["faces"]) \
            else "missing_character" in qa["flags"]
        assert qa["leakage"] is None and "low_identity" not in qa["flags"]


def test_the_storyboard_page_names_a_plates_own_face_and_an_unusable_one_as_such() -> None:
    from idcli.review.page import qa_html
    from idcli.review.runs import Take

    qa = {"version": 2, "faces": [
        {"box": [10, 10, 50, 50], "character": "mara", "cosine": 0.71, "area_share": 0.01, "plate_face": False},
        {"box": [90, 10, 130, 50], "character": None, "cosine": None, "area_share": 0.01, "plate_face": True},
        {"box": [170, 10, 210, 50], "character": None, "cosine": None, "area_share": 0.01},
        {"box": [250, 10, 290, 50], "character": None, "cosine": None, "area_share": 0.01, "unusable": True}],
        "leakage": None, "flags": []}
    take = Take("sh010", 1, "k", 1, "p", ("mara",), None, None, "plate", "sh010/sh010_t1.png",
                "sh010/sh010_t1.json", 760, 420, "0" * 64, None, qa=qa)
    cells = re.findall(r"<tr><td>\d</td><td>([^<]*)</td>", qa_html(take))
    # an unmatched face that is not the plate's stays "—"; one QA could not embed (compared with no one) says so
    assert cells == ["mara", "plate&#x27;s own", "—", "not embedded"]


def test_two_characters_whose_faces_stand_in_each_others_plate_boxes_are_said_to_be_swapped(qa_models) -> None:
    """A plate gives each character a box, so QA knows where each was asked for: theo's face in mara's box and
    mara's in theo's (both recognisable) is one finding naming both and where each was found, not two strangers and
    a leak. The record is what it was (low_identity and leakage: --retake-flagged takes it as before); a text-to-image
    shot has no boxes, so the same picture there passes (tests/test_review_qa.py: swapped positions)."""
    from idcli.review.qa_findings import findings, in_plain_words

    qa = IdentityQA(qa_models)
    mara, theo = (CastMember(name, qa.analyzer.detect(face_canvas([f"{name}_2"], 512, 512))[0].embedding)
                  for name in ("mara", "theo"))
    plate = plate_regions({"faces": [{"character": "mara", "box": [0, 0, 256, 256]},
                                     {"character": "theo", "box": [256, 0, 256, 256]}]})
    placed = qa.check(face_canvas(["mara_1", "theo_1"], 512, 256), [mara, theo], plate)
    assert placed["flags"] == [] and findings(placed) == [] and in_plain_words(placed) == []

    swapped = qa.check(face_canvas(["theo_1", "mara_1"], 512, 256), [mara, theo], plate)
    assert swapped["flags"] == ["low_identity", "leakage"]  # as before: flagged, re-rolled by --retake-flagged
    faces = swapped["faces"]
    in_maras, in_theos = swapped["characters"]["mara"]["face"], swapped["characters"]["theo"]["face"]
    assert faces[in_maras]["box"][0] < faces[in_theos]["box"][0]  # mara's box is the left one, theo's the right
    maras_face, theos_face = faces[in_theos]["cosines"]["mara"], faces[in_maras]["cosines"]["theo"]
    assert maras_face > 0.8 and theos_face > 0.8  # both recognisable, each in the other's box
    assert findings(swapped) == [
        f"mara and theo swapped places: mara's face is in theo's plate box (face #{in_theos}, {maras_face:.2f}) "
        f"and theo's in mara's (face #{in_maras}, {theos_face:.2f})"]
    assert in_plain_words(swapped) == [
        f"mara and theo have swapped places: mara's face is where the plate puts theo (#{in_theos}, likeness "
        f"{maras_face:.2f}) and theo's where it puts mara (#{in_maras}, likeness {theos_face:.2f})"]
    # Without boxes (text-to-image) the same picture is each character found somewhere: nothing to flag.
    assert qa.check(face_canvas(["theo_1", "mara_1"], 512, 256), [mara, theo])["flags"] == []


def test_three_characters_each_in_anothers_plate_box_are_said_as_one_ring(qa_models) -> None:
    """theo's face in mara's box, ines's in theo's, mara's in ines's, through the face models: one line naming the
    ring (tests/test_qa_findings.py builds the records by hand), the record flagged as before."""
    from idcli.review.qa_findings import findings, in_plain_words

    qa = IdentityQA(qa_models)
    cast = [CastMember(name, qa.analyzer.detect(face_canvas([f"{name}_2"], 512, 512))[0].embedding)
            for name in ("mara", "theo", "ines")]
    plate = plate_regions({"faces": [{"character": name, "box": [256 * i, 0, 256, 256]}
                                     for i, name in enumerate(("mara", "theo", "ines"))]})
    assert qa.check(face_canvas(["mara_1", "theo_1", "ines_1"], 768, 256), cast, plate)["flags"] == []
    ring = qa.check(face_canvas(["theo_1", "ines_1", "mara_1"], 768, 256), cast, plate)
    assert ring["flags"] == ["low_identity", "leakage"]
    faces, box = ring["faces"], {name: ring["characters"][name]["face"] for name in ("mara", "theo", "ines")}
    said = [f"{name}'s face is in {where}'s plate box (face #{box[where]}, {faces[box[where]]['cosines'][name]:.2f})"
            for name, where in (("mara", "ines"), ("ines", "theo"), ("theo", "mara"))]
    assert findings(ring) == [f"mara, ines and theo swapped places in a ring: {said[0]}, "
                              f"{said[1].replace(' face is in', ' in').replace(' plate box', '')} and "
                              f"{said[2].replace(' face is in', ' in').replace(' plate box', '')}"]
    assert len(in_plain_words(ring)) == 1 and in_plain_words(ring)[0].startswith(
        "mara, ines and theo have swapped places in a ring: mara's face is where the plate puts ines")
