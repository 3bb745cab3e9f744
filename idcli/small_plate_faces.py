"""Plate face boxes too small for the face models: said (a note), not refused (docs/plates.md, "Checks").

A box in ``plate_faces`` may be as small as 8 pixels, and the face re-generated into it is worked at the model's full
size all the same; but it is composited back at the box's size, and identity QA looks for faces in the rendered
plate with insightface's SCRFD detector, which sees the whole plate scaled to fit its 640x640 input
(``identity.faces.DETECTION_SIZE``). SCRFD's smallest anchors are 16 pixels (base size 16 at stride 8, its first
feature level; the buffalo_l and antelopev2 packs' det_10g/scrfd_10g configs): a face smaller than that in the
detector's input is not found. QA then records no face for the character, the take is flagged, and
``render --retake-flagged`` spends takes on a face it can never find; at that size the identity can barely show
either (ArcFace compares faces aligned to 112x112: a 10-pixel face is mostly interpolation there).
"""

from __future__ import annotations

import math

from .errors import Problem
from .identity.faces import DETECTION_SIZE
from .plates import PlateFace, PlateShot
from .shotlist import LoadedShotList

SMALLEST_DETECTED = 16  # pixels in the detector's input: SCRFD's smallest anchor (base size 16, stride 8)


def smallest_found_side(plate_size: tuple[int, int]) -> int:
    """The shortest box side, in plate pixels, whose face the detector can find in a plate of ``plate_size``
    (width, height): the plate is scaled by DETECTION_SIZE / its longer side before detection."""
    return math.ceil(SMALLEST_DETECTED * max(plate_size) / DETECTION_SIZE)


def small_face_words(face: PlateFace, plate_size: tuple[int, int]) -> tuple[str, str] | None:
    """Message and hint for a box given in ``plate_faces`` too small for the face models to find its face; None when
    it is large enough or the face was found by them (then it is large enough by definition)."""
    if face.detected:
        return None
    x, y, w, h = face.box
    limit = smallest_found_side(plate_size)
    if min(w, h) >= limit:
        return None
    width, height = plate_size
    seen = min(w, h) * DETECTION_SIZE / max(plate_size)
    # Rounded, a face just under the limit (15.68) would be said to be as large as the smallest found (16): one
    # decimal, cut not rounded, there.
    shown = f"{seen:.0f}" if round(seen) < SMALLEST_DETECTED else f"{math.floor(seen * 10) / 10:.1f}"
    return (f"the face box [{x}, {y}, {w}, {h}] of '{face.character}' is too small for the face models: they see "
            f"this {width}x{height} plate scaled to fit {DETECTION_SIZE}x{DETECTION_SIZE}, where the face is "
            f"{shown} pixels and the smallest they find is {SMALLEST_DETECTED}, so identity QA will find no face "
            f"there and flag every take (render --retake-flagged would spend its takes on it), and the identity can "
            f"barely show at that size",
            f"give a larger box, at least {limit}x{limit} in this plate, or use a closer framing, a plate in which the "
            "face is larger")


def small_face_notes(loaded: LoadedShotList, shots: dict[int, PlateShot]) -> list[Problem]:
    """validate's notes of boxes too small for the face models, at their ``plate_faces`` entry, in the words of plan's
    and render's warning."""
    notes = []
    for i, plate_shot in sorted(shots.items()):
        for j, face in enumerate(plate_shot.faces):
            words = small_face_words(face, plate_shot.plate.size)
            if words is None:
                continue
            line, column = loaded.position(("shots", i, "plate_faces", j))
            notes.append(Problem(words[0], f"shots[{i}].plate_faces[{j}]", line, column, words[1]))
    return notes
