"""Identity QA says which character failed in which image (docs/review.md, "`idcli qa OUT`"): a group shot
whose image lacks one character's face, and one whose faces are all there, through the real commit path and
the synthetic face pack (tests/review_helpers.py draws the characters a prompt names)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from review_helpers import DetectedFace, face_engine_factory
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.review.qa import CastMember, assess
from idcli.review.qa_findings import findings

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

# The face engine draws mara and theo (by these descriptions) and nobody else: ines is named but not drawn.
SHOTS = """\
version: 1
project: group-qa
model: {preset: tiny-sd}
defaults: {size: 384x128, steps: 2, guidance: 2.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a young man}
  ines: {selfies: [selfies/ines_1.jpg, selfies/ines_2.jpg], description: a blonde girl}
shots:
  - id: table
    prompt: "{mara}, {theo} and {ines} at a dinner table"
    seeds: [10]
  - id: twoshot
    prompt: "{mara} and {theo} whisper at the table"
    seeds: [10]
"""


def test_findings_name_each_character_that_failed_and_why() -> None:
    a, b, c = np.eye(512)[0], np.eye(512)[1], np.eye(512)[2]
    # Two faces for three characters: the first is a's, the second looks like a too and is matched to b.
    faces = [DetectedFace([0, 0, 50, 50], a), DetectedFace([60, 0, 100, 40], a + 0.1 * b)]
    record = assess(faces, [CastMember("a", a), CastMember("b", b), CastMember("c", c)], 100, 100)
    assert record["flags"] == ["missing_character", "low_identity", "leakage"]
    assert findings(record) == ["c: no face", "b: cosine 0.10 below 0.35",
                                "face #1 (matched to b) looks like a (0.99)"]
    assert findings({**record, "flags": []}) == []  # nothing flagged, nothing said
    # No face at all: one finding for the whole cast.
    empty = assess([], [CastMember("a", a), CastMember("b", b)], 100, 100)
    assert findings(empty) == ["no face found for a and b"]
    assert findings({"version": 1, "error": "RuntimeError: boom", "flags": []}) == []


def test_the_storyboard_page_says_the_same_failures_in_a_directors_words() -> None:
    """in_plain_words (the page's) says what findings (idcli qa's) says, one line for one, without cosines; a record
    edited by hand (a field of the wrong type) says what it can and never stops the page."""
    from idcli.review.qa_findings import in_plain_words

    a, b, c = np.eye(512)[0], np.eye(512)[1], np.eye(512)[2]
    faces = [DetectedFace([0, 0, 50, 50], a), DetectedFace([60, 0, 100, 40], a + 0.1 * b)]
    record = assess(faces, [CastMember("a", a), CastMember("b", b), CastMember("c", c)], 100, 100)
    assert in_plain_words(record) == ["c is not in it: no face found for c",
                                      "the face taken for b does not look like b (likeness 0.10; 0.35 or more passes)",
                                      "the face taken for b (#1) looks like a (likeness 0.99)"]
    twins = {**record, "leakage_pair": {**record["leakage_pair"], "twins": ["d"]}}
    assert in_plain_words(twins)[-1] == ("the face taken for b (#1) looks like a or d, who share one face "
                                         "(likeness 0.99)")
    assert in_plain_words(assess([], [CastMember("a", a), CastMember("b", b)], 100, 100)) == [
        "no face found: a and b should be in it"]
    assert in_plain_words({**record, "version": 2, "flags": ["no_face"]}) == ["no face where the plate puts a, b and c"]
    unusable = {"flags": ["no_face"], "cast": ["a"], "faces": [{"unusable": True}]}
    assert in_plain_words(unusable) == ["no face could be checked: a should be in it",
                                        "face #0 could not be read, so it was compared with no one"]
    for damaged in ({"flags": "no_face"}, {"flags": ["no_face"], "cast": "ab", "characters": [1]},
                    {"flags": ["leakage", "low_identity"], "faces": 3, "leakage_pair": {"face": 0}, "leakage": "x",
                     "thresholds": []}):
        assert isinstance(in_plain_words(damaged), list)
        assert len(in_plain_words(damaged)) == len(findings(damaged))


def test_idcli_qa_lists_each_flagged_image_with_the_character_that_failed(write_shotlist, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(write_shotlist(SHOTS)), out, device="cpu",
                          engine_factory=face_engine_factory(), qa=False)
    assert report.failed == 0
    result = CliRunner().invoke(app, ["qa", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 images checked, 1 flagged (missing_character 1)" in result.stdout
    assert "  table/table_t1.png: ines: no face" in result.stdout.splitlines()
    assert "twoshot" not in result.stdout  # its two faces are there: not listed
    document = json.loads(CliRunner().invoke(app, ["qa", str(out), "--json"]).stdout)
    assert document["flagged_images"] == [{
        "image": {"path": "table/table_t1.png", "abs_path": str((out / "table" / "table_t1.png").absolute())},
        "shot_id": "table", "take": 1, "flags": ["missing_character"], "findings": ["ines: no face"]}]


def test_the_terminal_gets_at_most_forty_flagged_images_and_where_the_rest_are() -> None:
    from idcli.review.qa_findings import MAX_LINES, flagged_lines

    images = [{"image": f"s{i:03d}/s{i:03d}_t1.png", "flags": ["no_face"], "findings": ["no face found for a"]}
              for i in range(MAX_LINES + 3)]
    lines = flagged_lines(images, Path("renders/sc 12"))
    assert len(lines) == MAX_LINES + 1 and lines[0] == "  s000/s000_t1.png: no face found for a"
    assert lines[-1] == "  … and 3 more flagged images (idcli qa 'renders/sc 12' --json lists every one)"
    assert flagged_lines(images[:2], "out") == [line for line in lines[:2]]


def test_qa_names_a_cast_as_the_storyboard_page_does() -> None:
    """``idcli qa`` said "no face found for mara, theo, ines" where the page said "mara, theo and ines": one
    image's failure in two lists. Every qa line that names several characters joins them as the page does."""
    from idcli.review.qa_findings import in_plain_words

    cast = [CastMember(name, np.eye(512)[i]) for i, name in enumerate(("mara", "theo", "ines"))]
    empty = assess([], cast, 100, 100)
    assert findings(empty) == ["no face found for mara, theo and ines"]
    assert "mara, theo and ines" in in_plain_words(empty)[0]
    boxes = {name: [[i * 100, 0, 50, 50]] for i, name in enumerate(("mara", "theo", "ines"))}
    plate = assess([DetectedFace([350, 0, 390, 40], np.eye(512)[0])], cast, 400, 100, regions=boxes)
    assert findings(plate)[0] == "no face in the recorded plate boxes of mara, theo and ines", findings(plate)
    assert findings(assess([], cast[:2], 100, 100)) == ["no face found for mara and theo"]


def test_a_plate_image_without_a_face_in_its_boxes_says_so() -> None:
    a = np.eye(512)[0]
    # The plate's own person stands outside the one recorded box: no face where the character was put.
    record = assess([DetectedFace([300, 0, 350, 50], a)], [CastMember("mara", a)], 400, 100,
                    regions={"mara": [[0, 0, 50, 50]]})
    assert record["flags"] == ["no_face", "missing_character"]
    assert findings(record) == ["no face in the recorded plate boxes of mara"]


def test_a_swap_in_a_plate_image_is_one_finding_and_the_rest_is_said_as_before() -> None:
    """Faces in each other's plate boxes are one swap line; a third character's failures keep their own lines, and
    half a swap (b's face in a's box, a stranger in b's) is what it was: two low-identity faces and a leak."""
    from idcli.review.qa_findings import in_plain_words

    a, b, c, d = (np.eye(512)[i] for i in range(4))
    boxes = {"a": [[0, 0, 50, 50]], "b": [[100, 0, 50, 50]], "c": [[200, 0, 50, 50]]}
    cast = [CastMember("a", a), CastMember("b", b), CastMember("c", c)]
    faces = [DetectedFace([0, 0, 50, 50], b + 0.1 * a), DetectedFace([100, 0, 150, 50], a),
             DetectedFace([200, 0, 250, 50], d + 0.2 * c)]
    record = assess(faces, cast, 300, 100, regions=boxes)
    assert record["flags"] == ["low_identity", "leakage"]
    assert findings(record) == ["a and b swapped places: a's face is in b's plate box (face #1, 1.00) and b's in "
                                "a's (face #0, 0.99)", "c: cosine 0.20 below 0.35"]
    assert in_plain_words(record) == [
        "a and b have swapped places: a's face is where the plate puts b (#1, likeness 1.00) and b's where it puts a "
        "(#0, likeness 0.99)", "the face taken for c does not look like c (likeness 0.20; 0.35 or more passes)"]

    half = assess([faces[0], DetectedFace([100, 0, 150, 50], d), faces[2]], cast, 300, 100, regions=boxes)
    assert findings(half) == ["a: cosine 0.10 below 0.35", "b: cosine 0.00 below 0.35", "c: cosine 0.20 below 0.35",
                              "face #0 (matched to a) looks like b (0.99)"]
    # The same swapped picture without boxes (text-to-image): each face is matched to whom it looks like.
    assert assess(faces[:2], cast[:2], 300, 100)["flags"] == []


def test_the_unpassed_note_quotes_a_folder_with_a_space_for_the_shell() -> None:
    """deliver's and export's note on takes QA flagged advised ``idcli select FOLDER SHOT=N`` with the folder
    unquoted (every other pick advice quotes it): pasted, a folder with a space split into two arguments."""
    import shlex
    from types import SimpleNamespace

    from idcli.review.qa_findings import unpassed_note

    take = SimpleNamespace(shot_id="sh010", take=1, qa={"flags": ["no_face"]})
    note = unpassed_note([take], "/tmp/night shoot/out", "delivered", "deliver",  # type: ignore[list-item]
                         "idcli render shots.yaml --out '/tmp/night shoot/out'")
    advice = note.split("pick a take (", 1)[1].split(")", 1)[0]
    assert shlex.split(advice) == ["idcli", "select", "/tmp/night shoot/out", "SHOT=N"]


def _plate_record(faces_in_boxes: list[np.ndarray], cast: list[tuple[str, np.ndarray]]) -> dict:
    """A plate image's QA record: one recorded box per character, 100 px apart, and in each the face given."""
    boxes = {name: [[100 * i, 0, 50, 50]] for i, (name, _) in enumerate(cast)}
    faces = [DetectedFace([100 * i, 0, 100 * i + 50, 50], vector) for i, vector in enumerate(faces_in_boxes)]
    return assess(faces, [CastMember(name, vector) for name, vector in cast], 100 * len(cast), 100, regions=boxes)


def test_three_characters_each_in_anothers_plate_box_are_one_ring() -> None:
    """a's face in c's box, c's in b's, b's in a's: one line naming the ring, where each face is, its figure; not
    three low likenesses and a leak, which a director cannot read as one mistake. The record and its flags are as
    they were (--retake-flagged re-rolls it)."""
    from idcli.review.qa_findings import in_plain_words

    a, b, c = (np.eye(512)[i] for i in range(3))
    record = _plate_record([b + 0.1 * a, c + 0.1 * b, a + 0.1 * c], [("a", a), ("b", b), ("c", c)])
    assert record["flags"] == ["low_identity", "leakage"]
    assert findings(record) == ["a, c and b swapped places in a ring: a's face is in c's plate box (face #2, 0.99), "
                                "c's in b's (face #1, 0.99) and b's in a's (face #0, 0.99)"]
    assert in_plain_words(record) == [
        "a, c and b have swapped places in a ring: a's face is where the plate puts c (#2, likeness 0.99), c's where "
        "it puts b (#1, likeness 0.99) and b's where it puts a (#0, likeness 0.99)"]
    # Without boxes (text-to-image) each face is matched to whom it looks like: nothing to flag, nothing to say.
    assert findings(assess([DetectedFace([0, 0, 50, 50], b), DetectedFace([100, 0, 150, 50], c),
                            DetectedFace([200, 0, 250, 50], a)],
                           [CastMember("a", a), CastMember("b", b), CastMember("c", c)], 300, 100)) == []


def test_a_ring_of_four_and_a_pair_beside_a_ring() -> None:
    from idcli.review.qa_findings import in_plain_words

    a, b, c, d, e = (np.eye(512)[i] for i in range(5))
    four = _plate_record([b, c, d, a], [("a", a), ("b", b), ("c", c), ("d", d)])
    assert findings(four) == ["a, d, c and b swapped places in a ring: a's face is in d's plate box (face #3, 1.00), "
                              "d's in c's (face #2, 1.00), c's in b's (face #1, 1.00) and b's in a's (face #0, 1.00)"]
    assert len(in_plain_words(four)) == 1
    # a and b swapped (said as ever, first), c, d and e in a ring: two lines, one per mistake.
    both = _plate_record([b, a, d, e, c], [("a", a), ("b", b), ("c", c), ("d", d), ("e", e)])
    assert findings(both) == [
        "a and b swapped places: a's face is in b's plate box (face #1, 1.00) and b's in a's (face #0, 1.00)",
        "c, e and d swapped places in a ring: c's face is in e's plate box (face #4, 1.00), e's in d's (face #3, "
        "1.00) and d's in c's (face #2, 1.00)"]


def test_a_failure_beside_a_ring_keeps_its_own_line_and_a_broken_ring_is_no_ring() -> None:
    """A stranger in d's box beside the ring of a, b and c is d's own low likeness; the ring's faces are said once.
    A ring with a stranger in one of its boxes (a's face nowhere) is no ring: its faces are said as before."""
    a, b, c, d, stranger = (np.eye(512)[i] for i in range(5))
    cast = [("a", a), ("b", b), ("c", c), ("d", d)]
    beside = _plate_record([b, c, a, stranger + 0.2 * d], cast)
    assert findings(beside) == [
        "a, c and b swapped places in a ring: a's face is in c's plate box (face #2, 1.00), c's in b's (face #1, "
        "1.00) and b's in a's (face #0, 1.00)", "d: cosine 0.20 below 0.35"]
    broken = _plate_record([b, c, stranger, d], cast)
    assert findings(broken) == ["a: cosine 0.00 below 0.35", "b: cosine 0.00 below 0.35", "c: cosine 0.00 below 0.35",
                                "face #0 (matched to a) looks like b (1.00)"]


def test_twins_in_a_ring_or_in_two_swaps() -> None:
    """d shares a's face (the same selfies, tests/test_twins.py). With d's face in d's box and a's in b's, the face
    in b's box is as much d's as a's: the ring is a's, b's and c's (d stands where the plate puts d), one line,
    nothing said of the twin. With both twins out of their boxes, each in a box of a swap, the two swaps are said."""
    from idcli.review.qa_findings import in_plain_words

    a, b, c = (np.eye(512)[i] for i in range(3))
    ring = _plate_record([c, a, b, a], [("a", a), ("b", b), ("c", c), ("d", a)])
    assert ring["flags"] == ["low_identity", "leakage"]
    assert findings(ring) == ["a, b and c swapped places in a ring: a's face is in b's plate box (face #1, 1.00), "
                              "b's in c's (face #2, 1.00) and c's in a's (face #0, 1.00)"]
    assert len(in_plain_words(ring)) == 1
    d = np.eye(512)[3]
    pairs = _plate_record([c, d, a, a], [("a", a), ("b", a), ("c", c), ("d", d)])
    assert findings(pairs) == [
        "a and c swapped places: a's face is in c's plate box (face #2, 1.00) and c's in a's (face #0, 1.00)",
        "b and d swapped places: b's face is in d's plate box (face #3, 1.00) and d's in b's (face #1, 1.00)"]


def test_a_ring_whose_record_says_infinity_is_said_as_before_and_never_stops_qa() -> None:
    """A received folder's sidecar may say anything, and Python's JSON reads ``Infinity``: a ring's cross likeness
    edited to it stopped ``idcli qa`` and the storyboard page (the ring's assignment refused the number, ValueError).
    No finite number measures a likeness: such a face is in no ring, and the record is said face by face."""
    from idcli.review.qa_findings import in_plain_words

    a, b, c = (np.eye(512)[i] for i in range(3))
    record = _plate_record([b + 0.1 * a, c + 0.1 * b, a + 0.1 * c], [("a", a), ("b", b), ("c", c)])
    edited = json.loads(json.dumps(record).replace('"c": 0.995', '"c": Infinity'))
    assert edited["faces"][1]["cosines"]["c"] == float("inf")
    assert findings(edited) == ["a: cosine 0.10 below 0.35", "b: cosine 0.10 below 0.35", "c: cosine 0.10 below 0.35",
                                f"face #{record['leakage_pair']['face']} (matched to "
                                f"{record['faces'][record['leakage_pair']['face']]['character']}) looks like "
                                f"{record['leakage_pair']['character']} (0.99)"]
    assert len(in_plain_words(edited)) == 4
