"""InsightFace's real loader, router, SCRFD decoder, alignment and ArcFace path on the synthetic face pack.

Nothing is downloaded: idcli.synthetic_faces writes ONNX files with the published buffalo_l signatures
(hand-set detector, seeded random recogniser), and these tests drive insightface.app.FaceAnalysis on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

# insightface imports cv2 at import time; a GUI OpenCV build without libGL raises a plain ImportError.
insightface = pytest.importorskip("insightface", exc_type=ImportError)
pytest.importorskip("onnx")
pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2", exc_type=ImportError)

from insightface.app import FaceAnalysis  # noqa: E402
from insightface.model_zoo import ArcFaceONNX, get_model  # noqa: E402
from insightface.model_zoo.scrfd import SCRFD  # noqa: E402
from insightface.utils import face_align  # noqa: E402

from idcli.synthetic_faces import (  # noqa: E402
    DETECTOR_FILE,
    PACK_MARKER,
    PACK_NAME,
    RECOGNISER_FILE,
    build_synthetic_face_pack,
)

# skimage 0.26 deprecates SimilarityTransform.estimate, which insightface's face_align still calls.
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SELFIES = Path(__file__).resolve().parents[1] / "recipes" / "selfies"
NAMES = ("mara_1", "mara_2", "theo_1", "theo_2")
# Face width ratio per person, from tools/make_recipe_selfies.py (512 x 512 canvas).
WIDTH_RATIO = {"mara": 0.58, "theo": 0.62}


def drawn_face_box(name: str) -> np.ndarray:
    """The face ellipse's bounding box as tools/make_recipe_selfies.py draws it."""
    person, number = name.split("_")
    cx, cy = 256 + (int(number) - 1) * 6, 256 + 10
    fw, fh = int(512 * WIDTH_RATIO[person] / 2), int(512 * 0.36)
    return np.array([cx - fw, cy - fh, cx + fw, cy + fh], dtype=np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insightface-root")
    build_synthetic_face_pack(root)
    return root


@pytest.fixture(scope="module")
def app(pack_root: Path) -> FaceAnalysis:
    analysis = FaceAnalysis(
        name=PACK_NAME,
        root=str(pack_root),
        allowed_modules=["detection", "recognition"],
        providers=["CPUExecutionProvider"],
    )
    analysis.prepare(ctx_id=-1, det_size=(320, 320))
    return analysis


@pytest.fixture(scope="module")
def faces(app: FaceAnalysis) -> dict:
    found = {}
    for name in NAMES:
        img = cv2.imread(str(SELFIES / f"{name}.jpg"))
        assert img is not None, name
        found[name] = (img, app.get(img))
    return found


def test_pack_layout_and_marker(pack_root: Path) -> None:
    folder = pack_root / "models" / PACK_NAME
    assert sorted(p.name for p in folder.iterdir()) == sorted([DETECTOR_FILE, RECOGNISER_FILE, PACK_MARKER])
    marker = json.loads((folder / PACK_MARKER).read_text("utf-8"))
    assert marker["synthetic"] is True
    assert "random" in marker["weights"]
    assert set(marker["files"]) == {DETECTOR_FILE, RECOGNISER_FILE}


def test_build_is_idempotent_and_repairs(tmp_path: Path) -> None:
    folder = build_synthetic_face_pack(tmp_path, name="again")
    detector = folder / DETECTOR_FILE
    before = detector.stat().st_mtime_ns, detector.read_bytes()
    assert build_synthetic_face_pack(tmp_path, name="again") == folder
    assert detector.stat().st_mtime_ns == before[0]  # not rewritten
    detector.write_bytes(b"truncated")  # a damaged pack no longer matches PACK.json and is rebuilt
    build_synthetic_face_pack(tmp_path, name="again")
    assert detector.read_bytes() == before[1]  # and the rebuild is byte-identical
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_router_sees_published_signatures(pack_root: Path) -> None:
    folder = pack_root / "models" / PACK_NAME
    detector = get_model(str(folder / DETECTOR_FILE), providers=["CPUExecutionProvider"])
    assert isinstance(detector, SCRFD)
    assert detector.use_kps and detector.fmc == 3 and detector._num_anchors == 2
    assert detector._feat_stride_fpn == [8, 16, 32] and not detector.batched
    assert detector.static_input_size is None  # dynamic input: det_size decides the resolution
    recogniser = get_model(str(folder / RECOGNISER_FILE), providers=["CPUExecutionProvider"])
    assert isinstance(recogniser, ArcFaceONNX)
    assert recogniser.input_size == (112, 112)
    assert (recogniser.input_mean, recogniser.input_std) == (127.5, 127.5)


def test_face_analysis_loads_both_tasks(app: FaceAnalysis) -> None:
    assert set(app.models) == {"detection", "recognition"}


@pytest.mark.parametrize("name", NAMES)
def test_one_face_per_selfie(faces: dict, name: str) -> None:
    _, found = faces[name]
    assert len(found) == 1
    face = found[0]
    assert 0.5 <= float(face.det_score) <= 1.0
    assert iou(face.bbox, drawn_face_box(name)) > 0.7
    kps = face.kps
    assert kps.shape == (5, 2)
    x1, y1, x2, y2 = face.bbox
    assert np.all((kps[:, 0] > x1) & (kps[:, 0] < x2) & (kps[:, 1] > y1) & (kps[:, 1] < y2))
    left_eye, right_eye, nose, mouth_left, mouth_right = kps
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert left_eye[1] < nose[1] < mouth_left[1]
    assert face.embedding.shape == (512,)
    assert face.normed_embedding.shape == (512,)
    assert np.linalg.norm(face.normed_embedding) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_norm_crop_on_detected_keypoints(faces: dict, name: str) -> None:
    img, (face,) = faces[name]
    crop = face_align.norm_crop(img, face.kps, 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    # The aligned crop is centred on the face: its centre is skin, like the drawn face's cheek.
    cheek = img[int(face.kps[3][1]), int(face.kps[3][0]) - 30].astype(int)
    assert np.abs(crop[56, 56].astype(int) - cheek).max() < 30


def test_embeddings_separate_people(faces: dict) -> None:
    emb = {name: faces[name][1][0].normed_embedding for name in NAMES}
    same = [float(emb["mara_1"] @ emb["mara_2"]), float(emb["theo_1"] @ emb["theo_2"])]
    cross = [float(emb[a] @ emb[b]) for a in ("mara_1", "mara_2") for b in ("theo_1", "theo_2")]
    assert max(cross) < 0.95
    assert min(same) > max(cross)


def test_two_faces_side_by_side(app: FaceAnalysis, faces: dict) -> None:
    img = np.hstack([faces["mara_1"][0], faces["theo_1"][0]])
    found = sorted(app.get(img), key=lambda f: f.bbox[0])
    assert len(found) == 2
    assert iou(found[0].bbox, drawn_face_box("mara_1")) > 0.7
    assert iou(found[1].bbox - np.array([512, 0, 512, 0]), drawn_face_box("theo_1")) > 0.7


@pytest.mark.parametrize(
    "image",
    [
        np.full((512, 512, 3), 128, np.uint8),
        np.full((480, 640, 3), (150, 182, 224), np.uint8),  # uniform, but skin-coloured (BGR)
        np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8),
    ],
    ids=["grey", "skin-coloured", "noise"],
)
def test_no_face_without_a_face(app: FaceAnalysis, image: np.ndarray) -> None:
    assert app.get(image) == []
