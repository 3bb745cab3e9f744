"""Face models: finding an insightface pack on disk and running detection + recognition.

The only module that imports insightface. It never downloads: insightface fetches missing packs
from GitHub at run time, and its pretrained models are licensed for non-commercial research only,
so idcli only ever loads a folder the user put in place (`idcli models fetch` fills one on request).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailableError
from ..hashing import sha256_file_cached, tagged_hash
from ..library_quiet import quiet_face_alignment
from ..option_words import Option

ENV_VAR = "IDCLI_FACE_MODELS"
EMBEDDING_SIZE = 512  # ArcFace's, what IP-Adapter FaceID projects (identity packs hold it: identity/pack.py)
DEFAULT_PACK = "buffalo_l"
LICENCE_NOTE = ("The pretrained insightface models (buffalo_l, antelopev2) are licensed for non-commercial "
                "research only; check that your use is allowed.")


@dataclass(frozen=True)
class FaceModels:
    """A folder of insightface ONNX models and the hashes that identify it."""

    folder: Path
    files: dict[str, str]  # file name -> sha256
    synthetic: bool  # a random-weight test pack built by idcli.synthetic_faces
    # "--face-models", "IDCLI_FACE_MODELS", "preset" or "default", as `idcli models list --json` does (face_pack.py);
    # never recorded in a sidecar. Messages name the argument in the surface's words instead (``chosen_words``).
    chosen_by: str

    @property
    def hash(self) -> str:
        return tagged_hash("idcli-face-models-v1", self.files)

    def record(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "files": self.files, "hash": self.hash, "synthetic": self.synthetic}


def chosen_words(chosen_by: str) -> Any:
    """Where the face models were chosen, as a message part: the argument in the surface's words (``face_models``
    to a Python caller, ``--face-models`` on the command line), else the variable's or the default's name."""
    return Option("face_models") if chosen_by == "--face-models" else chosen_by


def default_face_models_folder() -> Path:
    return Path("~/.insightface/models").expanduser() / DEFAULT_PACK


ACCEPT_FLAG = "--accept-insightface-license"


def fetch_command(folder: Path, chosen_by: str, preset: str = "PRESET") -> str:
    """The ``idcli models fetch`` that puts a pack in ``folder``. Fetch finds $IDCLI_FACE_MODELS and the default
    folder itself; a folder given by ``--face-models`` must be given again, or the command said fills
    ~/.insightface and the next render fails the same way. Quoted as every suggested path is (a name that is not
    UTF-8 in bash's ``$'\\xNN'`` form: shell_words.py)."""
    from ..shell_words import quote_word

    where = f" --face-models {quote_word(str(folder))}" if chosen_by == "--face-models" else ""
    return f"idcli models fetch {preset} {ACCEPT_FLAG}{where}"


def face_models_folder(option: str | Path | None = None,
                       preset_default: str | None = None) -> tuple[Path | None, str]:
    """The face-model folder and how it was chosen: ``--face-models``, else ``$IDCLI_FACE_MODELS``, else the preset's
    default (``"synthetic"`` for the tiny presets), else insightface's usual ``~/.insightface/models/buffalo_l``.
    The word ``synthetic`` anywhere means the random-weight test pack, built on first use: its folder is None."""
    if option:
        choice, chosen = str(option), "--face-models"
    elif os.environ.get(ENV_VAR):
        choice, chosen = os.environ[ENV_VAR], ENV_VAR
    elif preset_default:
        choice, chosen = preset_default, "preset"
    else:
        choice, chosen = None, "default"
    if choice == "synthetic":
        return None, chosen
    return (Path(choice).expanduser() if choice else default_face_models_folder()), chosen


def face_model_files(folder: Path, chosen: str) -> list[Path]:
    """The ``.onnx`` files of ``folder`` (sorted), none read; the ModelUnavailableError a render stops with when
    there are none (``idcli validate`` notes the same, reading no weight)."""
    onnx = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    if not onnx:
        state = "has no .onnx files" if folder.is_dir() else ("is a file, not a folder" if folder.exists()
                                                              else "does not exist")
        below = _packs_below(folder)
        if below:  # insightface's root (~/.insightface) or its models/ folder: the pack is a folder further down
            state += f" (packs below it: {', '.join(str(p) for p in below)}; pass one of those)"
        raise ModelUnavailableError(
            f"face models: {folder} (", chosen_words(chosen), f") {state}. Put an insightface model pack there — for "
            "buffalo_l: det_10g.onnx (SCRFD detector) and w600k_r50.onnx (ArcFace recogniser) — or pass ",
            Option("face_models", "DIR"), f" / set {ENV_VAR} (or ", Option("face_models", "synthetic"),
            " for the random-weight test pack). A render never downloads them; "
            f"'{fetch_command(folder, chosen)}' fetches buffalo_l once (docs/models.md). {LICENCE_NOTE}")
    return onnx


def resolve_face_models(option: str | Path | None = None, preset_default: str | None = None) -> FaceModels:
    """The face models of ``face_models_folder``, each file hashed (the pack's identity)."""
    folder, chosen = face_models_folder(option, preset_default)
    if folder is None:
        from .resolve import synthetic_face_models_folder

        folder = synthetic_face_models_folder()
    onnx = face_model_files(folder, chosen)
    synthetic = is_synthetic_pack(folder)
    # insightface 2.1 also honours a manifest.json (routing, preprocessing): it is part of the identity.
    extra = [folder / "manifest.json"] if (folder / "manifest.json").is_file() else []
    files = {p.name: sha256_file_cached(p) for p in [*onnx, *extra]}
    return FaceModels(folder.resolve(), files, synthetic, chosen)


def is_synthetic_pack(folder: Path) -> bool:
    """Whether ``folder``'s PACK.json marks it idcli's random-weight test pack; read bounded (models.read_model_json):
    a received folder's may be nested past Python's stack or hundreds of MB."""
    from ..models import read_model_json

    with contextlib.suppress(OSError, ValueError, AttributeError):
        return bool(read_model_json(folder / "PACK.json").get("synthetic"))
    return False


def _routed_files(folder: Path) -> str:
    """Each ONNX file of ``folder`` with what insightface takes it for (its signature decides), for an error
    that says why a pack is incomplete: 'det_10g.onnx (detection), odd.onnx (not recognised)'."""
    from insightface.model_zoo import model_zoo

    described = []
    for file in sorted(folder.glob("*.onnx")):
        try:
            model = model_zoo.get_model(str(file), providers=["CPUExecutionProvider"])
            what = getattr(model, "taskname", None) or "not recognised"
        except Exception as exc:  # a damaged file: onnxruntime raises many kinds
            what = f"unreadable: {type(exc).__name__}"
        described.append(f"{file.name} ({what})")
    return ", ".join(described) or "no .onnx files"


def _packs_below(folder: Path, depth: int = 2) -> list[Path]:
    """Folders up to ``depth`` levels below ``folder`` that hold .onnx files (at most five, sorted)."""
    def subfolders(parent: Path) -> list[Path]:
        try:
            return [child for child in parent.iterdir() if child.is_dir()]
        except OSError:  # a folder this user may not list (another user's home): passed over, as glob does
            return []

    found: list[Path] = []
    level = [folder] if folder.is_dir() else []
    for _ in range(depth):
        level = sorted(child for parent in level for child in subfolders(parent))[:200]
        found.extend(child for child in level if any(child.glob("*.onnx")))
    return found[:5]


class _IgnoredDuplicates:
    """The ONNX files insightface's FaceAnalysis passes over because an earlier one (by file name) does the same task.

    It loads every ``*.onnx`` of a folder in sorted order and keeps the first detector and the first recogniser,
    noting the others only in a debug log line. A folder holding two packs (antelopev2's files copied beside
    buffalo_l's for InstantID) so took antelopev2's ``glintr100.onnx`` over buffalo_l's ``w600k_r50.onnx``, which
    FaceID was trained with, without a word. Hearing that line names them.

    It stands in for the module's logger object while one folder loads, rather than being a logging handler: a
    handler hears nothing once the user's logging config silences the line (``logging.disable(logging.INFO)``, or
    ``dictConfig``/``fileConfig`` disabling the loggers that exist), and the two packs then loaded without a word.
    Every call still reaches insightface's logger, which the user's config governs as before."""

    def __init__(self) -> None:
        self.files: list[tuple[str, str]] = []  # (file, task)
        self._logger: logging.Logger | None = None

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if str(msg).startswith("duplicated model task type") and len(args) == 2:
            file, task = args
            self.files.append((Path(str(file)).name, str(task)))
        if self._logger is not None:
            self._logger.debug(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # info, warning, ...: insightface's logger itself
        return getattr(logging.getLogger(_FACE_ANALYSIS), name)

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """While FaceAnalysis loads one folder: one at a time, so no load hears another folder's lines."""
        from insightface.app import face_analysis

        with _LISTENING:
            self._logger = face_analysis.logger
            face_analysis.logger = self
            try:
                yield
            finally:
                face_analysis.logger = self._logger
                self._logger = None


_FACE_ANALYSIS = "insightface.app.face_analysis"  # the module whose logger names the files it passes over
_LISTENING = threading.Lock()


def _two_packs_in_one(folder: Path, kept: dict[str, Any], ignored: list[tuple[str, str]]) -> tuple[Any, ...]:
    """Why a folder with two detectors or two recognisers is refused, naming which file insightface would use."""
    clashes = []
    for task in sorted({task for _file, task in ignored}):
        used = Path(str(getattr(kept.get(task), "model_file", "?"))).name
        others = ", ".join(file for file, other in ignored if other == task)
        clashes.append(f"two {task} models: {used} (insightface takes the first by name) and {others}")
    return (f"face models in {folder}: {'; '.join(clashes)}. A face-model folder holds one pack: the identity "
            "would depend on file names. To fix: move the other pack's files to a folder of their own (for "
            "antelopev2: scrfd_10g_bnkps.onnx, glintr100.onnx, …) and pass the one you mean with ",
            Option("face_models"), "; IP-Adapter FaceID was trained with buffalo_l's w600k_r50.onnx")


def _check_embedding_width(folder: Path, recogniser: Any, width: Any = None) -> None:
    """Refuse a recogniser whose embedding is not the 512 values IP-Adapter FaceID reads (and identity packs hold).

    insightface takes any model with a square input of 112 px or more for ArcFace, so a 128- or 256-value face
    recogniser loads; the pack it made was then refused on reading as "incomplete (missing a 512-value embedding)",
    after encode-identity had written it, and every shot of the character failed the same way. ``width``: the
    embedding's, once one is computed; else the width the ONNX file states (a named dimension is not judged)."""
    if width is None:
        shape = getattr(recogniser, "output_shape", None)
        width = shape[-1] if isinstance(shape, (list, tuple)) and shape else None
    if not isinstance(width, int) or width == EMBEDDING_SIZE:
        return
    raise ModelUnavailableError(
        f"face models in {folder}: the recogniser {Path(str(recogniser.model_file)).name} gives {width}-value "
        f"embeddings, but IP-Adapter FaceID reads ArcFace's {EMBEDDING_SIZE} (buffalo_l's w600k_r50.onnx; antelopev2's "
        "glintr100.onnx gives 512 too). To fix: use an ArcFace recogniser with 512-value embeddings")


@dataclass
class DetectedFace:
    bbox: np.ndarray  # x1, y1, x2, y2 in pixels
    kps: np.ndarray  # 5 x 2: eyes, nose, mouth corners
    det_score: float
    embedding: np.ndarray = field(repr=False)  # L2-normalised, 512

    @property
    def size(self) -> float:
        """The shorter side of the face box, in pixels."""
        return float(min(self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]))

    @property
    def area(self) -> float:
        return float((self.bbox[2] - self.bbox[0]) * (self.bbox[3] - self.bbox[1]))


# The square insightface's SCRFD detector sees an image scaled to fit (its det_size): the smallest face it finds in a
# plate depends on it (small_plate_faces.py).
DETECTION_SIZE = 640


class FaceAnalyzer:
    """insightface's FaceAnalysis (SCRFD detection + ArcFace recognition) on a resolved pack."""

    def __init__(self, models: FaceModels,
                 det_size: tuple[int, int] = (DETECTION_SIZE, DETECTION_SIZE)) -> None:
        import onnxruntime
        from insightface.app import FaceAnalysis

        available = onnxruntime.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.models = models
        self.providers = providers
        ignored = _IgnoredDuplicates()
        try:
            # An existing folder passed as the name is used as is: insightface's downloader is never reached.
            with ignored.listening():
                app = FaceAnalysis(name=str(models.folder), allowed_modules=["detection", "recognition"],
                                   providers=providers)
        except AssertionError:  # insightface asserts, with no message, that it found a detector
            raise ModelUnavailableError(
                f"face models in {models.folder}: no SCRFD face detection model (an ONNX file with 5 or more "
                f"outputs, such as buffalo_l's det_10g.onnx); found: {_routed_files(models.folder)}") from None
        except Exception as exc:  # onnxruntime and insightface raise many kinds
            raise ModelUnavailableError(f"face models in {models.folder} could not be loaded: {exc}") from None
        if ignored.files:
            raise ModelUnavailableError(*_two_packs_in_one(models.folder, app.models, ignored.files))
        if "recognition" not in app.models:
            raise ModelUnavailableError(f"face models in {models.folder}: no ArcFace recognition model "
                                        "(a square 112x112-input ONNX file such as w600k_r50.onnx); found: "
                                        f"{_routed_files(models.folder)}")
        _check_embedding_width(models.folder, app.models["recognition"])
        app.prepare(ctx_id=0 if providers[0] == "CUDAExecutionProvider" else -1, det_size=det_size)
        self.app = app

    @quiet_face_alignment()
    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB image, largest first, each with its normalised ArcFace embedding."""
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # insightface works on OpenCV's BGR order
        faces = [DetectedFace(np.asarray(f.bbox, dtype=np.float32), np.asarray(f.kps, dtype=np.float32),
                              float(f.det_score), np.asarray(f.normed_embedding, dtype=np.float32))
                 for f in self.app.get(bgr)]
        for face in faces[:1]:  # a recogniser whose width its file leaves open (a named dimension)
            _check_embedding_width(self.models.folder, self.app.models["recognition"], face.embedding.size)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        """Normalised ArcFace embeddings of faces already aligned to 112 x 112 (RGB, n x 112 x 112 x 3).

        Identity QA uses this to bring a pack made with other face models into this pack's embedding
        space (ArcFace spaces of different models are not comparable)."""
        recogniser = self.app.models["recognition"]
        features = np.asarray(recogniser.get_feat([np.ascontiguousarray(c[:, :, ::-1]) for c in crops]),
                              dtype=np.float32).reshape(len(crops), -1)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


@quiet_face_alignment()
def norm_crop(rgb: np.ndarray, kps: np.ndarray, size: int) -> np.ndarray:
    """insightface's ArcFace alignment of the face to ``size`` x ``size`` (a multiple of 112)."""
    from insightface.utils.face_align import norm_crop as _norm_crop

    return np.ascontiguousarray(_norm_crop(rgb, kps, image_size=size))
