"""Identity QA: faces found by the synthetic face pack matched to the cast, flags, leakage, and QA at
render time (in the sidecar, on the commit thread, never in the job key or the PNG)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from review_helpers import SHOTS, face_canvas, face_engine_factory

import idcli
from idcli.review.qa import (
    CastMember,
    IdentityQA,
    QAThresholds,
    assess,
    best_assignment,
    exact_assignment,
    leakage_of,
)

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def qa_models(tmp_path_factory: pytest.TempPathFactory):
    from idcli.identity.faces import resolve_face_models
    from idcli.synthetic_faces import build_synthetic_face_pack

    return resolve_face_models(str(build_synthetic_face_pack(tmp_path_factory.mktemp("qa-face-models"))))


@pytest.fixture(scope="module")
def cast(qa_models) -> dict[str, CastMember]:
    """References from the *second* selfie of each person; the test images use the first."""
    qa = IdentityQA(qa_models)
    members = {}
    for name in ("mara", "theo"):
        faces = qa.analyzer.detect(face_canvas([f"{name}_2"], 512, 512))
        assert len(faces) == 1
        members[name] = CastMember(name, faces[0].embedding)
    return members


def test_faces_of_the_recipe_selfies_are_matched_to_their_characters(qa_models, cast) -> None:
    record = IdentityQA(qa_models).check(face_canvas(["mara_1", "theo_1"], 512, 256), [cast["mara"], cast["theo"]])
    faces = sorted(record["faces"], key=lambda f: f["box"][0])  # left to right
    assert [f["character"] for f in faces] == ["mara", "theo"]
    assert all(f["cosine"] > 0.8 for f in faces)
    # area share: the box's area over the frame's
    for face in faces:
        x1, y1, x2, y2 = face["box"]
        assert face["area_share"] == pytest.approx((x2 - x1) * (y2 - y1) / (512 * 256), abs=1e-4)
        assert 0.05 < face["area_share"] < 0.5
    assert record["flags"] == []
    assert record["characters"]["mara"]["cosine"] == faces[0]["cosine"]
    # leakage is the largest cosine off the matching, read from the recorded cosine matrix
    off = [f["cosines"][name] for f in faces for name in ("mara", "theo") if name != f["character"]]
    assert record["leakage"] == pytest.approx(max(off), abs=1e-4)
    assert record["leakage"] < 0.35
    assert record["face_models"]["synthetic"] is True and record["seconds"] >= 0


def test_swapped_positions_swap_the_assignment(qa_models, cast) -> None:
    qa = IdentityQA(qa_models)
    for order in (["theo_1", "mara_1"], ["mara_1", "theo_1"]):
        for members in ([cast["mara"], cast["theo"]], [cast["theo"], cast["mara"]]):
            record = qa.check(face_canvas(order, 512, 256), members)
            faces = sorted(record["faces"], key=lambda f: f["box"][0])
            assert [f["character"] for f in faces] == [name.split("_")[0] for name in order]
            assert record["flags"] == []


def test_pure_noise_has_no_face(qa_models, cast) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    record = IdentityQA(qa_models).check(noise, [cast["mara"]])
    assert record["faces"] == []
    assert record["flags"] == ["no_face", "missing_character"]
    assert record["leakage"] is None and record["characters"] == {"mara": {"face": None, "cosine": None}}


def test_a_missing_character_and_a_face_given_twice(qa_models, cast) -> None:
    qa = IdentityQA(qa_models)
    alone = qa.check(face_canvas(["mara_1"], 256, 256), [cast["mara"], cast["theo"]])
    assert alone["flags"] == ["missing_character"]
    assert alone["characters"]["theo"] == {"face": None, "cosine": None}
    # mara twice, no theo: one mara face is matched to theo (low identity) and looks like mara (leakage)
    twice = qa.check(face_canvas(["mara_1", "mara_2"], 512, 256), [cast["mara"], cast["theo"]])
    assert twice["flags"] == ["low_identity", "leakage"]
    assert twice["leakage"] > 0.8 and twice["leakage_pair"]["character"] == "mara"


def test_thresholds_are_settable_per_run(qa_models, cast) -> None:
    strict = IdentityQA(qa_models, QAThresholds(low_identity=1.0, leakage=1.0))
    record = strict.check(face_canvas(["mara_1", "theo_1"], 512, 256), [cast["mara"], cast["theo"]])
    assert "low_identity" in record["flags"] and record["thresholds"]["low_identity"] == 1.0
    with pytest.raises(idcli.IdcliError, match="between -1 and 1"):
        QAThresholds(low_identity=2.0)


def test_leakage_and_assignment_from_the_cosine_matrix() -> None:
    cosines = np.array([[0.90, 0.50], [0.20, 0.80]])
    pairs = best_assignment(cosines)
    assert pairs == [(0, 0), (1, 1)]
    assert leakage_of(cosines, pairs) == (0.5, 0, 1)
    # the best total, not the greedy first choice: face 0 is mara's best, but only face 0 can be theo's
    greedy_trap = np.array([[0.9, 0.85], [0.8, 0.1]])
    assert best_assignment(greedy_trap) == [(0, 1), (1, 0)]
    # a face matched to nobody counts against every character
    crowd = np.array([[0.9], [0.6], [0.1]])
    assert best_assignment(crowd) == [(0, 0)]
    assert leakage_of(crowd, [(0, 0)]) == (0.6, 1, 0)
    assert leakage_of(np.array([[0.7]]), [(0, 0)]) is None  # one face, one character: nothing off the match
    rng = np.random.default_rng(0)
    for shape in [(1, 3), (3, 1), (4, 4), (6, 3), (2, 5), (7, 7)]:
        matrix = rng.uniform(-1, 1, shape)
        a, b = best_assignment(matrix), exact_assignment(matrix)
        assert sum(matrix[i, j] for i, j in a) == pytest.approx(sum(matrix[i, j] for i, j in b))
        assert len(a) == len(b) == min(shape)


def test_assess_records_exactly_what_the_matrix_says() -> None:
    class Detected:
        def __init__(self, box, vector):
            self.bbox, self.det_score = np.array(box, np.float32), 0.9
            self.embedding = np.asarray(vector, np.float32) / np.linalg.norm(vector)

    a, b = np.eye(512)[0], np.eye(512)[1]
    faces = [Detected([0, 0, 50, 50], a + 0.2 * b), Detected([60, 0, 100, 40], b)]
    record = assess(faces, [CastMember("a", a), CastMember("b", b)], 100, 100)
    assert [f["character"] for f in record["faces"]] == ["a", "b"]
    assert record["faces"][0]["area_share"] == 0.25 and record["faces"][1]["area_share"] == 0.16
    assert record["leakage"] == pytest.approx(0.2 / np.sqrt(1.04), abs=1e-4)
    assert record["flags"] == []


# -- at render time --------------------------------------------------------------------------------


def _render(write_shotlist, out: Path, **options):
    shots = write_shotlist(SHOTS)
    factory = face_engine_factory()
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=factory, **options)
    return report, factory


def test_render_records_qa_in_the_sidecar_not_in_the_key_or_png(write_shotlist, tmp_path, monkeypatch) -> None:
    threads: list[str] = []
    original = IdentityQA.for_job

    def spy(self, job, pixels):
        threads.append(threading.current_thread().name)
        return original(self, job, pixels)

    monkeypatch.setattr(IdentityQA, "for_job", spy)
    on, _ = _render(write_shotlist, tmp_path / "on")
    off, _ = _render(write_shotlist, tmp_path / "off", qa=False)
    assert on.failed == off.failed == 0
    assert [j.key for j in on.jobs] == [j.key for j in off.jobs]
    assert threads and all(name.startswith("idcli-commit") for name in threads)  # on the commit thread
    records = {r["image"]["path"]: r for r in idcli.read_results(tmp_path / "on")}
    for path in records:
        assert (tmp_path / "on" / path).read_bytes() == (tmp_path / "off" / path).read_bytes()  # PNG unchanged
        assert "qa" not in json.loads((tmp_path / "off" / path.replace(".png", ".json")).read_text())
    two = records["sh010/sh010_t1.png"]["qa"]  # seed 10: mara left, theo right
    assert sorted(two["cast"]) == ["mara", "theo"] and two["flags"] == []
    assert [f["character"] for f in sorted(two["faces"], key=lambda f: f["box"][0])] == ["mara", "theo"]
    swapped = records["sh010/sh010_t2.png"]["qa"]  # seed 11: positions swapped
    assert [f["character"] for f in sorted(swapped["faces"], key=lambda f: f["box"][0])] == ["theo", "mara"]
    assert records["sh020/sh020_t1.png"]["qa"]["characters"]["mara"]["cosine"] > 0.8
    assert "qa" not in records["sh030/sh030_t1.png"]  # no cast: nothing to check


def test_idcli_qa_recomputes_for_committed_images(write_shotlist, tmp_path) -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    out = tmp_path / "out"
    _render(write_shotlist, out, qa=False)
    before = {r["image"]["path"]: r for r in idcli.read_results(out)}
    damaged = out / "sh040" / "sh040_t1.png"
    damaged.write_bytes(damaged.read_bytes() + b"x")  # no longer the committed image
    result = CliRunner().invoke(app, ["qa", str(out), "--qa-low-identity", "0.5", "--json"])
    assert result.exit_code == 2, result.output
    summary = json.loads(result.stdout)  # the --json contract: one document, ok/exit_code/error first
    assert summary["ok"] is False and summary["exit_code"] == 2 and summary["error"]["type"] == "InputError"
    assert summary["checked"] == 4 and summary["without_cast"] == 2
    assert [(p["file"], p["message"]) for p in summary["error"]["problems"]] == [
        ("sh040/sh040_t1.png", "the image does not match its sidecar; left alone")]
    after = {r["image"]["path"]: r for r in idcli.read_results(out)}
    assert "qa" not in after["sh040/sh040_t1.png"]
    qa = after["sh010/sh010_t1.png"]["qa"]
    assert qa["thresholds"]["low_identity"] == 0.5 and qa["flags"] == []
    for path, record in after.items():  # only qa changed
        assert {k: v for k, v in record.items() if k != "qa"} == before[path]


def test_retake_flagged_adds_deterministic_takes_up_to_the_bound(write_shotlist, tmp_path, engine_factory) -> None:
    from idcli.plan import derived_seed
    from idcli.review.retake import render_with_retakes

    shots = write_shotlist("""\
        version: 1
        project: retake
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 1, guidance: 1.0}
        characters:
          mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
        shots:
          - {id: face, prompt: "{mara} on a street", takes: 1}
          - {id: land, prompt: "a lighthouse", takes: 1}
        """)
    out = tmp_path / "out"
    # random weights render noise: every image of 'face' is flagged no_face; 'land' has no cast
    report = render_with_retakes(idcli.load_shotlist(shots), out, max_takes=3, device="cpu",
                                 engine_factory=engine_factory)
    # the added takes are beyond the shot list's `takes: 1` but live takes, not orphans (test_retakes_kept.py)
    takes = sorted((r["shot_id"], r["take"], r["seed"]) for r in idcli.read_results(out))
    assert takes == [("face", 1, derived_seed("face", 1)), ("face", 2, derived_seed("face", 2)),
                     ("face", 3, derived_seed("face", 3)), ("land", 1, derived_seed("land", 1))]
    assert report.rendered == 4 and report.failed == 0
    # the added takes are the ones `takes: 3` gives: that shot list finds them all done
    again = idcli.render(idcli.load_shotlist(write_shotlist(shots.read_text().replace(
        "takes: 1}\n  - {id: land", "takes: 3}\n  - {id: land"), "three.yaml")), out, device="cpu",
        engine_factory=engine_factory)
    assert again.count("skipped") == 4 and again.rendered == 0
    with pytest.raises(idcli.IdcliError, match="needs identity QA"):
        render_with_retakes(idcli.load_shotlist(shots), out, device="cpu", qa=False, engine_factory=engine_factory)


def test_an_image_with_qa_reproduces_identically_and_verifies(write_shotlist, tmp_path, engine_factory) -> None:
    """qa is a run field: not in the PNG's record, so reproduce and verify see the image as it was made."""
    from idcli.reproduce import reproduce
    from idcli.verify import verify_folder

    shots = write_shotlist("""\
        version: 1
        project: qa-provenance
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 2, guidance: 2.0}
        characters:
          mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
        shots:
          - {id: face, prompt: "{mara} on a street"}
        """)
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    (job,) = report.jobs
    assert "qa" in json.loads(Path(job.sidecar).read_text("utf-8"))
    assert reproduce(job.sidecar, engine_factory=engine_factory).status == "identical"
    checked = verify_folder(out)
    assert [image.ok for image in checked.images] == [True]


# -- a face whose embedding is degenerate -----------------------------------------------------------


def _degenerate_embedding() -> np.ndarray:
    """What insightface gives as a face's normed_embedding when its ArcFace embedding is all zeros: NaN (0 / 0)."""
    from insightface.app.common import Face

    with np.errstate(invalid="ignore"):
        return np.asarray(Face(embedding=np.zeros(512, np.float32)).normed_embedding, np.float32)


def test_a_face_whose_embedding_is_degenerate_is_unusable_not_nan() -> None:
    # Its cosines were NaN: scipy's assignment refused the matrix (the image's whole QA lost, "matrix contains invalid
    # numeric entries"), and as a plate's own face, kept out of the assignment, its NaN went into the sidecar, which
    # verify then refused as not JSON. It is recorded as unusable, compared with no one, every number finite.
    from review_helpers import DetectedFace

    from idcli.review.qa_findings import findings

    degenerate = _degenerate_embedding()
    assert np.isnan(degenerate).all()
    a, b = np.eye(512)[0], np.eye(512)[1]
    faces = [DetectedFace([0, 0, 50, 50], a), DetectedFace([60, 0, 100, 40], a)]
    faces[1].embedding = degenerate
    record = assess(faces, [CastMember("mara", a), CastMember("theo", b)], 100, 100)
    json.dumps(record, allow_nan=False)  # raises on NaN
    assert record["faces"][1] == {"box": [60.0, 0.0, 100.0, 40.0], "det_score": 0.9, "character": None,
                                  "cosine": None, "cosines": {"mara": None, "theo": None}, "area_share": 0.16,
                                  "unusable": True}
    assert "unusable" not in record["faces"][0] and record["faces"][0]["character"] == "mara"
    assert record["characters"]["theo"] == {"face": None, "cosine": None}
    assert record["flags"] == ["missing_character"] and record["leakage"] == 0.0
    unusable = "face #1 could not be embedded (its embedding is zero or not a number): compared with no character"
    assert findings(record) == ["theo: no face", unusable]
    # numbered as the record numbers its faces, a damaged entry before it counted
    assert findings({**record, "faces": ["damaged", *record["faces"]]})[-1] == unusable.replace("#1", "#2")
    # the only face unusable: no face to check
    alone = assess(faces[1:], [CastMember("mara", a)], 100, 100)
    assert alone["flags"] == ["no_face", "missing_character"] and alone["leakage"] is None
    assert findings(alone) == ["no usable face for mara", unusable.replace("#1", "#0")]
    json.dumps(alone, allow_nan=False)
    plate = assess(faces, [CastMember("mara", a)], 100, 100, regions={"mara": [[0, 0, 50, 50]]})
    assert plate["faces"][1]["plate_face"] is True and plate["faces"][1]["unusable"] is True
    assert plate["faces"][1]["cosines"] == {"mara": None} and plate["flags"] == []
    json.dumps(plate, allow_nan=False)


def test_a_render_with_a_degenerate_face_writes_finite_sidecars_that_verify(write_shotlist, tmp_path,
                                                                             monkeypatch) -> None:
    # The face models found a face whose embedding was all zeros: its NaN cosines cost every image's QA (qa.error,
    # from scipy's assignment). Now each is checked, the face unusable, and the sidecars are JSON that verifies.
    from idcli.identity.faces import DetectedFace, FaceAnalyzer
    from idcli.provenance import loads_strict
    from idcli.verify import verify_folder

    original = FaceAnalyzer.detect

    def with_a_degenerate_face(self, rgb):
        found = original(self, rgb)
        return [*found, DetectedFace(np.array([0, 0, 8, 8], np.float32), np.zeros((5, 2), np.float32), 0.6,
                                     _degenerate_embedding())]

    monkeypatch.setattr(FaceAnalyzer, "detect", with_a_degenerate_face)
    out = tmp_path / "out"
    report, _ = _render(write_shotlist, out)
    assert report.failed == 0
    checked = [r for r in idcli.read_results(out) if "qa" in r]
    assert checked and all(r["qa"]["faces"][-1]["unusable"] is True for r in checked)
    for sidecar in out.glob("*/*.json"):
        loads_strict(sidecar.read_text("utf-8"))  # no NaN
    assert verify_folder(out).exit_code == 0


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")], ids=["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_is_never_written_into_a_sidecar_or_record(number) -> None:
    # json.dumps wrote NaN and Infinity, which no JSON reader but Python's takes and verify refuses as edited by hand:
    # a future one fails loudly where it is written (the commit, idcli qa's rewrite, the PNG's own record).
    from idcli.models import resolve_model
    from idcli.plan import Job
    from idcli.provenance import encode_png
    from idcli.render_request import RenderRequest
    from idcli.shotlist import ModelSpec
    from idcli.store import sidecar_bytes

    sidecar = {"job_key": "k", "qa": {"faces": [{"cosines": {"mara": number}}]}}
    with pytest.raises(ValueError, match="JSON compliant"):
        sidecar_bytes(sidecar)
    assert sidecar_bytes({"qa": {"leakage": 0.5}}) == b'{\n  "qa": {\n    "leakage": 0.5\n  }\n}\n'
    job = Job("k", "s", 1, RenderRequest("p", "", 1, 8, 8, 2, 4.0, "ddim"), None, None, (), "g1")
    model = resolve_model(ModelSpec(), Path("."), "float32")
    with pytest.raises(ValueError, match="JSON compliant"):
        encode_png(np.zeros((8, 8, 3), np.uint8), job, model, {"image": {"width": 8, "height": 8}, "seed": number})


def test_idcli_qa_leaves_a_sidecar_holding_a_number_past_jsons_range_alone(write_shotlist, tmp_path) -> None:
    # 1e999 is JSON and reads as Infinity, which idcli qa wrote back as "Infinity" (no JSON): refused now that sidecars
    # are written with allow_nan=False, said for the take, the sidecar left as it was, never an internal error.
    from idcli.review.recheck import recheck

    out = tmp_path / "out"
    _render(write_shotlist, out, qa=False)
    sidecar = out / "sh010" / "sh010_t1.json"
    text = sidecar.read_text("utf-8")
    edited = text.replace('"width": ', '"edited": 1e999,\n    "width": ', 1)
    assert edited != text
    sidecar.write_text(edited, "utf-8")
    result = recheck(out)
    assert result.problems == [
        "sh010/sh010_t1.png: its sidecar holds NaN or Infinity (1e999 reads as Infinity), which is not JSON: idcli qa "
        "cannot write it back, so it is left alone (edited by hand?)"]
    assert sidecar.read_text("utf-8") == edited


# -- a character's reference the face models cannot embed ----------------------------------------


def _face_models_embedding_zeros(source: Path, target: Path) -> Path:
    """A copy of the face models whose ArcFace recogniser is a real ONNX graph with every output multiplied by
    zero (as a model exported wrongly, or in fp16 past its range, gives): insightface loads and runs it as any."""
    import shutil

    import onnx
    from onnx import helper, numpy_helper

    from idcli.synthetic_faces import RECOGNISER_FILE

    shutil.copytree(source, target)
    model = onnx.load(str(target / RECOGNISER_FILE))
    for node in model.graph.node:
        node.output[:] = ["embedding_unscaled" if name == "embedding" else name for name in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((1, 512), np.float32), "zero_scale"))
    model.graph.node.append(helper.make_node("Mul", ["embedding_unscaled", "zero_scale"], ["embedding"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(target / RECOGNISER_FILE))
    return target


def test_a_reference_the_face_models_cannot_embed_is_said_not_read_as_a_stranger(
        write_shotlist, tmp_path, synthetic_face_models) -> None:
    # `idcli qa --face-models OTHER` re-embeds each character's selfie faces with OTHER (embeddings of different
    # models do not compare). Models that embed them as zeros made a zero reference (cosine 0 with any face), and qa
    # rewrote every sidecar with flags for a fault of the models, not of the images (here no_face and
    # missing_character, the detected faces embedded as zeros too; low_identity where a face did embed).
    from idcli.identity.faces import resolve_face_models
    from idcli.review.recheck import recheck

    out = tmp_path / "out"
    _render(write_shotlist, out, qa=False)
    zeros = _face_models_embedding_zeros(synthetic_face_models, tmp_path / "zeros")
    sidecars = {path: path.read_bytes() for path in out.glob("*/*.json")}
    result = recheck(out, face_models=str(zeros))
    folder = resolve_face_models(str(zeros)).folder
    said = (f"the face models in {folder} embed none of the pack's 2 selfie face(s) (zero or not a number), so there "
            "is no reference to compare with")
    assert result.checked == 0 and result.flagged == 0, result
    cast_images = ["sh010/sh010_t1.png", "sh010/sh010_t2.png", "sh020/sh020_t1.png", "sh020/sh020_t2.png",
                   "sh040/sh040_t1.png"]
    assert sorted(p.split(": ", 1)[0] for p in result.problems) == cast_images, result.problems
    assert all(said in problem for problem in result.problems), result.problems
    assert {path: path.read_bytes() for path in out.glob("*/*.json")} == sidecars  # every sidecar left alone
