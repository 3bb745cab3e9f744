"""One selfie to one face: detection, choice of face, quality gate, alignment, embedding."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..hashing import sha256_bytes
from ..option_words import Option
from .faces import DetectedFace, FaceAnalyzer, norm_crop
from .images import load_rgb, read_image_file

HEAD_CROP = 384  # a looser head-and-hair crop for adapters that read image features


@dataclass(frozen=True)
class QualityGate:
    """Thresholds a selfie's chosen face must pass. Documented in docs/identity.md."""

    min_det_score: float = 0.5
    min_face_px: int = 64  # shorter side of the face box
    min_sharpness: float = 10.0  # variance of the Laplacian of the 112-pixel grey crop
    max_abs_yaw: float = 45.0  # degrees, estimated from the keypoints


@dataclass(frozen=True)
class SelfieFile:
    """A selfie's bytes, read once: hashed once (cache key and pack record) and decoded from memory,
    so the hash always describes the pixels that were encoded."""

    path: Path
    data: bytes = field(repr=False)
    sha256: str

    @classmethod
    def read(cls, path: Path) -> SelfieFile:
        data = read_image_file(path)
        return cls(path, data, sha256_bytes(data))


@dataclass
class FaceQuality:
    det_score: float
    face_px: float
    sharpness: float
    yaw: float
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def weight(self) -> float:
        """How much this selfie counts in the aggregate: confident, large, frontal faces count most."""
        size = min(1.0, self.face_px / 112.0)
        frontal = max(0.05, math.cos(math.radians(min(abs(self.yaw), 85.0))))
        return max(1e-3, self.det_score * size * frontal)


@dataclass
class SelfieEncoding:
    path: str
    sha256: str
    width: int
    height: int
    faces: list[dict[str, Any]]  # every face found: bbox and score, largest first
    face_index: int
    quality: FaceQuality
    embedding: np.ndarray = field(repr=False)
    crop_112: np.ndarray = field(repr=False)
    crop_224: np.ndarray = field(repr=False)
    crop_head: np.ndarray = field(repr=False)

    def record(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "width": self.width, "height": self.height,
                "faces": self.faces, "face_index": self.face_index,
                "quality": {**asdict(self.quality), "passed": self.quality.passed,
                            "weight": round(self.quality.weight, 6)}}


class SelfieError(InputError):
    """A selfie with no usable face."""


def estimate_yaw(kps: np.ndarray) -> float:
    """Head yaw in degrees from the nose's offset between the eyes (rough; 0 is frontal)."""
    left_eye, right_eye, nose = kps[0], kps[1], kps[2]
    half = float(np.linalg.norm(right_eye - left_eye)) / 2.0
    if half < 1e-6:
        return 90.0
    offset = (float(nose[0]) - float(left_eye[0] + right_eye[0]) / 2.0) / half
    return math.degrees(math.asin(max(-1.0, min(1.0, offset))))


def sharpness(crop_112: np.ndarray) -> float:
    grey = crop_112.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var())


def head_crop(rgb: np.ndarray, bbox: np.ndarray, size: int = HEAD_CROP) -> np.ndarray:
    """A square crop of twice the face box around its centre (padded with grey), resized."""
    from PIL import Image

    x1, y1, x2, y2 = (float(v) for v in bbox)
    side = 2.0 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    box = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    image = Image.fromarray(rgb)
    canvas = Image.new("RGB", (box[2] - box[0], box[3] - box[1]), (127, 127, 127))
    canvas.paste(image, (-box[0], -box[1]))
    return np.asarray(canvas.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def assess(face: DetectedFace, crop_112: np.ndarray, gate: QualityGate) -> FaceQuality:
    quality = FaceQuality(face.det_score, face.size, sharpness(crop_112), estimate_yaw(face.kps))
    if quality.det_score < gate.min_det_score:
        quality.reasons.append(f"detection score {quality.det_score:.2f} < {gate.min_det_score}")
    if quality.face_px < gate.min_face_px:
        quality.reasons.append(f"face is {quality.face_px:.0f} px < {gate.min_face_px} px; use a closer photo")
    if quality.sharpness < gate.min_sharpness:
        quality.reasons.append(f"blurred (sharpness {quality.sharpness:.1f} < {gate.min_sharpness})")
    if abs(quality.yaw) > gate.max_abs_yaw:
        quality.reasons.append(f"head turned {quality.yaw:+.0f}° (limit ±{gate.max_abs_yaw:.0f}°); use a frontal photo")
    return quality


def encode_selfie(analyzer: FaceAnalyzer, selfie: Path | SelfieFile, face_index: int | None = None,
                  gate: QualityGate | None = None) -> SelfieEncoding:
    """Detect, choose (largest unless ``face_index``), gate, align and embed one selfie."""
    gate = gate or QualityGate()
    if not isinstance(selfie, SelfieFile):
        selfie = SelfieFile.read(Path(selfie))
    path = selfie.path
    rgb = load_rgb(path, selfie.data)
    faces = analyzer.detect(rgb)
    listing = [{"index": i, "bbox": [round(float(v), 1) for v in f.bbox], "score": round(f.det_score, 4)}
               for i, f in enumerate(faces)]
    if not faces:
        raise SelfieError(f"{path}: no face found; use a photo where the face is clearly visible", file=path)
    index = 0 if face_index is None else face_index
    if not 0 <= index < len(faces):
        raise SelfieError(f"{path}: ", Option("face_index", index, flag="--face"),
                          f" asked, but {len(faces)} face(s) were found: "
                          + "; ".join(f"{d['index']}: box {d['bbox']} score {d['score']}" for d in listing),
                          file=path)
    face = faces[index]
    crop_112 = norm_crop(rgb, face.kps, 112)
    quality = assess(face, crop_112, gate)
    if not quality.passed:
        raise SelfieError(f"{path}: face {index} fails the quality gate: " + "; ".join(quality.reasons), file=path)
    return SelfieEncoding(
        path=str(path), sha256=selfie.sha256, width=rgb.shape[1], height=rgb.shape[0], faces=listing,
        face_index=index, quality=quality, embedding=face.embedding.astype(np.float32),
        crop_112=crop_112, crop_224=norm_crop(rgb, face.kps, 224), crop_head=head_crop(rgb, face.bbox))
