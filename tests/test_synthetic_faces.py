"""InsightFace's real loader, router, SCRFD decoder, alignment and ArcFace path on the synthetic face pack.

Nothing is downloaded: idcli.synthetic_faces writes ONNX files with the published buffalo_l signatures
(hand-set detector, hand-set colour recogniser), and these tests drive insightface.app.FaceAnalysis on them.
"""

from __future__ import annotations

import importlib.util
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

REPO = Path(__file__).resolve().parents[1]
SELFIES = REPO / "recipes" / "selfies"
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
    assert "synthetic" in marker["weights"] and "no real faces" in marker["weights"]
    assert set(marker["files"]) == {DETECTOR_FILE, RECOGNISER_FILE}


def test_build_is_idempotent_and_repairs(tmp_path: Path) -> None:
    folder = build_synthetic_face_pack(tmp_path, name="again")
    detector, recogniser = folder / DETECTOR_FILE, folder / RECOGNISER_FILE
    before = detector.stat().st_mtime_ns, detector.read_bytes(), recogniser.read_bytes()
    assert build_synthetic_face_pack(tmp_path, name="again") == folder
    assert detector.stat().st_mtime_ns == before[0]  # not rewritten
    detector.write_bytes(b"truncated")  # a damaged pack no longer matches PACK.json and is rebuilt
    build_synthetic_face_pack(tmp_path, name="again")
    assert detector.read_bytes() == before[1]  # and the rebuild is byte-identical
    assert recogniser.read_bytes() == before[2]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_building_leaves_another_threads_catch_warnings_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host thread records its warnings with ``warnings.catch_warnings`` while idcli builds the pack (the tiny
    presets' first use) in another: the pack is built and the host still records its own warning after the build
    ended. The build used to quiet torch's exporter notices in a ``catch_warnings`` block of its own, whose end put
    back the process-wide filters and ``showwarning`` it found at its start, undoing the host's recorder."""
    import threading
    import warnings

    import torch

    exporting, host_recording, built = threading.Event(), threading.Event(), threading.Event()
    real_export = torch.onnx.export

    def export_once_the_host_records(*args, **kwargs):
        exporting.set()
        host_recording.wait(60)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export_once_the_host_records)
    folders: list[Path] = []
    recorded: list[str] = []

    def idcli_builds() -> None:
        folders.append(build_synthetic_face_pack(tmp_path, name="threads"))
        built.set()

    def host_records() -> None:
        exporting.wait(60)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            host_recording.set()
            built.wait(120)
            warnings.warn("the host's own warning", UserWarning, stacklevel=1)
        recorded.extend(str(each.message) for each in caught)

    threads = [threading.Thread(target=run) for run in (idcli_builds, host_records)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert built.is_set() and (folders[0] / PACK_MARKER).is_file()
    assert "the host's own warning" in recorded


def test_building_shows_none_of_the_exporters_notices(tmp_path: Path) -> None:
    """torch's notices about its legacy exporter and the Slice it cannot fold are not for idcli's users."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = list(warnings.filters)
        build_synthetic_face_pack(tmp_path, name="quiet")
        assert warnings.filters == found  # and nothing left behind
    assert [str(each.message) for each in caught] == []


def test_marker_hashes_the_bytes_written(pack_root: Path) -> None:
    from idcli.hashing import sha256_file

    folder = pack_root / "models" / PACK_NAME
    files = json.loads((folder / PACK_MARKER).read_text("utf-8"))["files"]
    assert files == {name: sha256_file(folder / name) for name in (DETECTOR_FILE, RECOGNISER_FILE)}


def test_an_interrupted_write_leaves_no_file_insightface_would_load(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.synthetic_faces as synthetic

    real = synthetic.atomic_write

    def killed_at_the_recogniser(target: Path, data: bytes) -> None:
        if target.name == RECOGNISER_FILE:
            raise KeyboardInterrupt
        real(target, data)

    monkeypatch.setattr(synthetic, "atomic_write", killed_at_the_recogniser)
    with pytest.raises(KeyboardInterrupt):
        build_synthetic_face_pack(tmp_path, name="cut")
    folder = tmp_path / "models" / "cut"
    # Nothing at the pack's folder (it is renamed into place whole), and no temporary folder beside it.
    assert list((tmp_path / "models").iterdir()) == []
    monkeypatch.setattr(synthetic, "atomic_write", real)
    build_synthetic_face_pack(tmp_path, name="cut")  # no marker: rebuilt
    assert (folder / PACK_MARKER).is_file() and (folder / RECOGNISER_FILE).is_file()


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
    # ArcFace switches to mean 0 / std 1 when it sees nodes named Sub* and Mul* among the first eight.
    assert (recogniser.input_mean, recogniser.input_std) == (127.5, 127.5)
    assert recogniser.output_shape == ["batch", 512]


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
    # Like buffalo_l on photos: one person 0.4-0.8 or more, unrelated people about 0.0-0.2.
    emb = {name: faces[name][1][0].normed_embedding for name in NAMES}
    same = [float(emb["mara_1"] @ emb["mara_2"]), float(emb["theo_1"] @ emb["theo_2"])]
    cross = [float(emb[a] @ emb[b]) for a in ("mara_1", "mara_2") for b in ("theo_1", "theo_2")]
    assert min(same) > 0.8, same
    assert max(cross) < 0.25, cross


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shift", [(-3, 0), (3, 2), (0, -3), (2, 3)])
def test_embedding_tolerates_small_misalignment(app: FaceAnalysis, faces: dict, name: str, shift: tuple) -> None:
    img, (face,) = faces[name]
    recogniser = app.models["recognition"]
    moved = recogniser.get_feat(face_align.norm_crop(img, face.kps + np.array(shift, np.float32), 112))[0]
    cosine = float(moved @ face.embedding) / float(np.linalg.norm(moved) * np.linalg.norm(face.embedding))
    assert cosine > 0.9


def _draw_module():
    spec = importlib.util.spec_from_file_location("make_recipe_selfies", REPO / "tools" / "make_recipe_selfies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skin_like(colour: tuple[int, int, int]) -> bool:
    """Anywhere near the detector's skin band (idcli.synthetic_faces.SKIN_*), with the ramps included."""
    r, g, b = colour
    return 20 <= r - g <= 80 and 8 <= g - b <= 60 and r >= 65


def _random_look(rng: np.random.Generator, style: str) -> tuple:
    r, rg, gb = (int(v) for v in (rng.integers(110, 251), rng.integers(36, 59), rng.integers(23, 43)))
    skin = (r, r - rg, r - rg - gb)  # inside the band the synthetic detector accepts as skin
    others: list[tuple[int, int, int]] = []
    while len(others) < 3:  # hair, eyes, background: anything the detector will not take for skin
        red, green, blue = (int(v) for v in rng.integers(0, 256, 3))
        colour = (red, green, blue)
        if min(skin) >= 0 and not _skin_like(colour):
            others.append(colour)
    return (skin, *others, float(rng.uniform(0.56, 0.64)), style)


@pytest.fixture(scope="module")
def more_people(app: FaceAnalysis, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Twelve more drawn people, two selfies each (as tools/make_recipe_selfies.py draws variants)."""
    folder = tmp_path_factory.mktemp("more-selfies")
    draw = _draw_module().draw
    rng = np.random.default_rng(20240611)
    embeddings = {}
    for person in range(12):
        look = _random_look(rng, ("long", "short")[person % 2])
        for variant in (0, 1):
            path = folder / f"person{person:02d}_{variant + 1}.jpg"
            draw(*look, variant).save(path, quality=90)
            found = app.get(cv2.imread(str(path)))
            assert len(found) == 1, (path.name, look)
            embeddings[person, variant] = found[0].normed_embedding
    return embeddings


def test_more_people_separate(more_people: dict) -> None:
    people = sorted({person for person, _ in more_people})
    same = np.array([float(more_people[p, 0] @ more_people[p, 1]) for p in people])
    cross = np.array(
        [
            float(more_people[p, i] @ more_people[q, j])
            for p in people
            for q in people
            if p < q
            for i in (0, 1)
            for j in (0, 1)
        ]
    )
    summary = (
        f"same: min {same.min():.3f}; different: mean {cross.mean():.3f}, "
        f"percentiles 50/90/99 {np.percentile(cross, [50, 90, 99]).round(3)}, max {cross.max():.3f}"
    )
    assert same.min() > 0.8, summary
    assert np.mean(cross < 0.35) >= 0.95, summary  # look-alikes (same hair colour and style) may score more
    assert np.median(cross) < 0.15 and abs(cross.mean()) < 0.15, summary


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


def test_two_threads_first_using_the_synthetic_pack_both_get_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads of one process using ``face_models: synthetic`` for the first time in a fresh ``IDCLI_HOME``
    (a host planning two shot lists at once) both exported the pack, and torch's ONNX exporter keeps process-wide
    state: one thread died with ``AssertionError: GLOBALS.in_onnx_export must be True``. One export at a time now,
    and the thread that waited finds the pack built. The first export waits (at most 20 s) for a second to start,
    so that before the fix both are inside the exporter together."""
    import threading

    import torch

    from idcli.identity.resolve import synthetic_face_models_folder

    monkeypatch.setenv("IDCLI_HOME", str(tmp_path / "home"))
    real_export = torch.onnx.export
    counting = threading.Lock()
    inside, most_inside, exports = [0], [0], [0]
    second_started = threading.Event()

    def export_meeting_the_other_thread(*args, **kwargs):
        with counting:
            inside[0] += 1
            exports[0] += 1
            most_inside[0] = max(most_inside[0], inside[0])
            first = exports[0] == 1
            if inside[0] > 1:
                second_started.set()
        try:
            if first:
                second_started.wait(20)  # before the fix the other thread enters meanwhile
            return real_export(*args, **kwargs)
        finally:
            with counting:
                inside[0] -= 1

    monkeypatch.setattr(torch.onnx, "export", export_meeting_the_other_thread)
    folders: list[Path] = []
    failures: list[BaseException] = []

    def first_use() -> None:
        try:
            folders.append(synthetic_face_models_folder())
        except BaseException as exc:  # reported below, with the thread's error
            failures.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert failures == [], failures
    assert most_inside[0] == 1 and exports[0] == 2  # one export at a time; the pack's two networks exported once
    folder = tmp_path / "home" / "face-models" / "models" / PACK_NAME
    assert folders == [folder, folder]
    assert sorted(p.name for p in folder.iterdir()) == sorted([DETECTOR_FILE, RECOGNISER_FILE, PACK_MARKER])


def test_a_pack_is_built_beside_its_folder_and_renamed_into_place(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process looking while the pack is built finds no folder (before: the detector alone, which InsightFace
    loads as a pack without a recogniser); one that finished first keeps its complete pack, which this build uses
    rather than writes over; no temporary stays behind."""
    import shutil

    import torch

    other = build_synthetic_face_pack(tmp_path / "other")
    folder = tmp_path / "models" / PACK_NAME
    real_export = torch.onnx.export
    seen: list[bool] = []
    theirs: list[int] = []

    def export_while_another_process_finishes(*args, **kwargs):
        seen.append(folder.exists())
        done = real_export(*args, **kwargs)
        if len(seen) == 2:  # the other process's pack lands between this build's exports and its rename
            shutil.copytree(other, folder, dirs_exist_ok=True)
            theirs.append((folder / PACK_MARKER).stat().st_ino)
        return done

    monkeypatch.setattr(torch.onnx, "export", export_while_another_process_finishes)
    assert build_synthetic_face_pack(tmp_path) == folder
    assert seen == [False, False]
    assert theirs == [(folder / PACK_MARKER).stat().st_ino]  # theirs kept, not written over
    assert all((folder / name).read_bytes() == (other / name).read_bytes()
               for name in (DETECTOR_FILE, RECOGNISER_FILE, PACK_MARKER))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [PACK_NAME]  # no temporary left
