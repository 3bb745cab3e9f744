"""Identity QA: the faces in a rendered image matched to the shot's cast.

The face models (``identity/faces.py``, the only insightface importer) detect every face and embed
it with ArcFace. Each face is compared with each cast member's reference embedding by cosine, and
faces are matched to characters one to one so that the sum of the matched cosines is largest (the
assignment FastComposer's and UMO's evaluations use). The record says, per face, its box, its score,
the character it was matched to, its cosine to every cast member and its area as a share of the
frame; per image, the **leakage** — the highest cosine of any face to a character it was *not*
matched to (faces matched to nobody count against every character), ``None`` when no such pair
exists — and the flags:

* ``no_face``: the shot has a cast and no face was found;
* ``missing_character``: a cast member was matched to no face (fewer faces than characters);
* ``low_identity``: a matched face's cosine to its character is below ``low_identity``;
* ``leakage``: the leakage is at or above ``leakage``.

**Plate images** (docs/plates.md; the sidecar has a ``plate`` block) are checked by region: a character may
only be matched to a detected face that overlaps one of its recorded boxes — the face's centre lies inside
the box grown by ``REGION_MARGIN`` of its width and height on each side. A face overlapping no recorded box is
the plate's own, untouched person: recorded with ``plate_face`` true and no character, and left out of the
assignment, the leakage and the flags (``no_face`` then means no face in any recorded box). Plate records
are version 2 (``plate_face`` on every face); text-to-image records are unchanged, version 1.

The cast is the characters whose identities condition the image (``method: single``'s others and characters at
identity strength 0 are in it through their descriptions only, and their faces count as leakage, never as
theirs). A character the prompt names several times (a mirror) may be matched to as many faces: its further
places are matched among the faces left after the one-to-one assignment (``named_repeats``, ``_repeat_pairs``).

Only images with a cast are checked: a shot no identity conditions has no identity to hold. Both thresholds default
to 0.35, the same-person threshold of identity aggregation (buffalo_l: about 0.4-0.8 for two photos
of one person, 0.0-0.2 for two people), and are set per run (``--qa-low-identity``,
``--qa-leakage``). QA reads pixels only: it never changes a job key or an image.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..option_words import Option

QA_VERSION = 1
PLATE_QA_VERSION = 2  # plate images: every face record has ``plate_face``
REGION_MARGIN = 0.25  # a recorded plate box grown by this share of its width/height on each side
LOW_IDENTITY = 0.35  # = identity.aggregate.SAME_PERSON_THRESHOLD; not imported, so the two can part later
LEAKAGE = 0.35
MAX_FACES = 32  # the largest faces are kept: a crowd must not make the sidecar unbounded
FLAGS = ("no_face", "missing_character", "low_identity", "leakage")


class QAError(InputError):
    """QA that cannot run for an image (its cast's identity pack is gone or changed)."""


@dataclass(frozen=True)
class QAThresholds:
    """Where QA starts flagging; cosines are in [-1, 1]."""

    low_identity: float = LOW_IDENTITY
    leakage: float = LEAKAGE

    def __post_init__(self) -> None:
        for name in ("low_identity", "leakage"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and -1.0 <= value <= 1.0):
                raise InputError(f"QA threshold {name}={value!r}: give a cosine between -1 and 1")

    def record(self) -> dict[str, float]:
        return {"low_identity": self.low_identity, "leakage": self.leakage}


@dataclass(frozen=True)
class CastMember:
    """A character of the shot and its reference embedding in the QA face models' space."""

    name: str
    embedding: np.ndarray = field(repr=False)  # (512,), unit length


# -- assignment and leakage: pure functions of the cosine matrix ------------------------------------


def best_assignment(cosines: np.ndarray) -> list[tuple[int, int]]:
    """(face, character) pairs, one to one, maximising the sum of cosines; min(faces, cast) pairs.

    scipy's Hungarian solver when scipy is installed (it comes with insightface's scikit-image);
    otherwise an exact search over subsets of the smaller side, fine for a cast of a few characters.
    """
    cosines = np.asarray(cosines, dtype=np.float64)
    if cosines.size == 0:
        return []
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # pragma: no cover - scipy is a transitive dependency
        return exact_assignment(cosines)
    rows, cols = linear_sum_assignment(cosines, maximize=True)
    return sorted(zip(rows.tolist(), cols.tolist(), strict=True))


def exact_assignment(cosines: np.ndarray) -> list[tuple[int, int]]:
    """The same optimum as ``best_assignment`` by dynamic programming over subsets of the smaller side."""
    cosines = np.asarray(cosines, dtype=np.float64)
    transposed = cosines.shape[0] < cosines.shape[1]
    matrix = cosines.T if transposed else cosines  # rows: the larger side; columns: at most ~12
    n_rows, n_cols = matrix.shape
    if n_cols > 16:
        raise ValueError(f"exact assignment of {n_cols} characters is too large; install scipy")
    full = (1 << n_cols) - 1
    # best[mask]: the best total over the rows seen so far with exactly the columns in mask used.
    best: dict[int, tuple[float, tuple[tuple[int, int], ...]]] = {0: (0.0, ())}
    for row in range(n_rows):
        step = dict(best)
        for mask, (total, pairs) in best.items():
            for col in range(n_cols):
                if mask & (1 << col):
                    continue
                candidate = (total + matrix[row, col], (*pairs, (row, col)))
                key = mask | (1 << col)
                if key not in step or candidate[0] > step[key][0] + 1e-12:
                    step[key] = candidate
        best = step
    needed = min(n_rows, n_cols)
    finals = [v for m, v in best.items() if bin(m).count("1") == needed and m <= full]
    pairs = max(finals, key=lambda v: v[0])[1]
    if transposed:
        pairs = tuple((col, row) for row, col in pairs)
    return sorted(pairs)


def leakage_of(cosines: np.ndarray, pairs: Sequence[tuple[int, int]],
               alike: AbstractSet[tuple[int, int]] = frozenset()) -> tuple[float, int, int] | None:
    """The highest cosine of a face to a character it was not matched to, with that (face, character).

    A face matched to nobody is compared with every character (a second copy of one character's face
    is leakage too). None when there is no such pair (one face and one character, or no face). ``alike``: pairs
    of characters (i < j) who share one face (identity/twins.py): a face matched to one of them is not leakage
    against the other, as which of them it shows cannot be told."""
    cosines = np.asarray(cosines, dtype=np.float64)
    matched = dict(pairs)
    best: tuple[float, int, int] | None = None
    for face, character in itertools.product(range(cosines.shape[0]), range(cosines.shape[1])):
        own = matched.get(face)
        if own == character or (own is not None and (min(own, character), max(own, character)) in alike):
            continue
        value = float(cosines[face, character])
        if best is None or value > best[0]:
            best = (value, face, character)
    return best


Box = Sequence[float]  # x, y, width, height in image pixels


def plate_regions(plate: Mapping[str, Any] | None) -> dict[str, list[Box]] | None:
    """character -> its recorded boxes, from a sidecar's (or job's) ``plate`` block; None: not a plate image."""
    if not isinstance(plate, Mapping):
        return None
    regions: dict[str, list[Box]] = {}
    for face in plate.get("faces") or []:
        box = face["box"]
        if not (isinstance(box, list | tuple) and len(box) == 4):
            raise ValueError(f"a face box is {box!r}, not [x, y, w, h]")
        regions.setdefault(str(face["character"]), []).append([float(v) for v in box])
    return regions


def _in_region(bbox: Sequence[float], box: Box) -> bool:
    """Whether a detected face (x1, y1, x2, y2) overlaps a recorded box: its centre inside the grown box."""
    cx, cy = (float(bbox[0]) + float(bbox[2])) / 2, (float(bbox[1]) + float(bbox[3])) / 2
    x, y, w, h = (float(v) for v in box)
    return (x - REGION_MARGIN * w <= cx <= x + w + REGION_MARGIN * w
            and y - REGION_MARGIN * h <= cy <= y + h + REGION_MARGIN * h)


def _region_assignment(faces: Sequence[Any], names: Sequence[str], cosines: np.ndarray,
                       regions: Mapping[str, Sequence[Box]]) -> tuple[list[tuple[int, int]], list[bool]]:
    """Plate images: the best one-to-one assignment among (face, character) pairs whose face overlaps one
    of the character's boxes, and per face whether it overlaps no recorded box (the plate's own face).
    A character without a recorded box may take any face that overlaps some box."""
    every_box = [box for boxes in regions.values() for box in boxes]
    plate_face = [not any(_in_region(f.bbox, box) for box in every_box) for f in faces]
    allowed = np.array([[not plate_face[i] and (name not in regions or any(_in_region(f.bbox, box)
                                                                           for box in regions[name]))
                         for name in names] for i, f in enumerate(faces)], dtype=bool).reshape(cosines.shape)
    # Disallowed pairs cost far more than any cosine gains, so the optimum uses as many allowed pairs as
    # exist; the disallowed pairs it still has to take (it pairs min(faces, cast)) are dropped.
    pairs = best_assignment(np.where(allowed, cosines, -1e6))
    return [(face, character) for face, character in pairs if allowed[face, character]], plate_face


def named_repeats(shot_prompt: Any) -> dict[str, int]:
    """character -> how many times the shot's prompt (placeholders kept) names it; {} when unknown."""
    if not isinstance(shot_prompt, str):
        return {}
    from ..shotlist import placeholders

    try:
        names = placeholders(shot_prompt)
    except ValueError:
        return {}
    return {name: names.count(name) for name in names}


def _repeat_pairs(cosines: np.ndarray, pairs: Sequence[tuple[int, int]], names: Sequence[str],
                  repeats: Mapping[str, int], low_identity: float) -> list[tuple[int, int]]:
    """(face, character) pairs for a character the prompt names several times (`{mara} looks at {mara} in a
    mirror`): its further places are matched among the faces left after the one-to-one assignment, so its
    second face is its own rather than leakage, and a stranger there is low identity. With more faces than the
    prompt's places (a crowd), which face stands in a further place cannot be told: only one that looks like the
    character (``low_identity`` or more) takes it, and the others stay extra faces (a crowd is not a fault)."""
    slots = [j for j, name in enumerate(names) for _ in range(max(0, repeats.get(name, 1) - 1))]
    taken = {face for face, _ in pairs}
    free = [i for i in range(cosines.shape[0]) if i not in taken]
    if not slots or not free:
        return []
    extra = [(free[face], slots[slot]) for face, slot in best_assignment(cosines[free][:, slots])]
    if cosines.shape[0] > len(names) + len(slots):
        extra = [(face, character) for face, character in extra if cosines[face, character] >= low_identity]
    return extra


def _kept_faces(faces: list[Any], cast: Sequence[CastMember], regions: Mapping[str, Sequence[Box]] | None,
                repeats: Mapping[str, int]) -> list[Any]:
    """At most ``MAX_FACES`` of the faces (largest first), a character's own face among them however many larger
    strangers stand around it (a crowd): in a plate image every face in a recorded box, otherwise each character's
    most similar faces (as many as the prompt names it), then the largest of the others."""
    if len(faces) <= MAX_FACES:
        return faces
    first: set[int] = set()
    if regions is not None:
        every_box = [box for boxes in regions.values() for box in boxes]
        first = {i for i, f in enumerate(faces) if any(_in_region(f.bbox, box) for box in every_box)}
    elif cast:
        cosines = np.stack([f.embedding for f in faces]).astype(np.float64) @ np.stack(
            [m.embedding for m in cast]).astype(np.float64).T
        for j, member in enumerate(cast):
            first.update(np.argsort(-cosines[:, j], kind="stable")[:max(1, repeats.get(member.name, 1))].tolist())
    chosen = sorted(first)[:MAX_FACES]
    others = [i for i in range(len(faces)) if i not in first][:MAX_FACES - len(chosen)]
    return [faces[i] for i in sorted(chosen + others)]  # indices ascending: still largest first


def usable_embedding(embedding: Any) -> bool:
    """Whether a detected face's embedding can be compared: finite and not all zeros. insightface normalises an
    all-zero ArcFace embedding to NaN (0 / 0), whose cosines are no number a sidecar may hold (verify refuses NaN as
    not JSON) and which scipy's assignment refuses: such a face is recorded ``unusable`` and compared with no one."""
    vector = np.asarray(embedding, dtype=np.float64)
    return bool(vector.size and np.isfinite(vector).all() and np.any(vector))


def assess(faces: Sequence[Any], cast: Sequence[CastMember], width: int, height: int,
           thresholds: QAThresholds = QAThresholds(),
           regions: Mapping[str, Sequence[Box]] | None = None,
           repeats: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The QA record of one image from its detected faces (largest first) and its cast.

    ``regions`` (``plate_regions``): a plate image's recorded boxes per character; None for text-to-image.
    ``repeats`` (``named_repeats``): how many places the prompt gives each character (text-to-image only: a plate
    character takes one face); ``characters`` records its first, best match, every matched face names it."""
    faces = _kept_faces(list(faces), cast, regions, repeats or {})
    names = [member.name for member in cast]
    usable = [usable_embedding(f.embedding) for f in faces]
    if faces and cast:
        cosines = np.stack([f.embedding if ok else np.zeros_like(f.embedding) for f, ok in zip(faces, usable,
                                                                                               strict=True)]
                           ).astype(np.float64) @ np.stack([m.embedding for m in cast]).astype(np.float64).T
    else:
        cosines = np.zeros((len(faces), len(cast)))
    # An unusable face takes no character: it costs far more than any cosine gains (as a disallowed plate pair), so
    # the optimum pairs it only where no usable face is left, and that pair is dropped.
    priced = np.where(np.array(usable, dtype=bool)[:, None], cosines, -1e6) if faces else cosines
    if regions is None:
        pairs = [(f, c) for f, c in best_assignment(priced) if usable[f]]
        plate_face = [False] * len(faces)
        repeated = [(f, c) for f, c in _repeat_pairs(priced, pairs, names, repeats or {}, thresholds.low_identity)
                    if usable[f]]
    else:
        pairs, plate_face = _region_assignment(faces, names, priced, regions)
        pairs = [(f, c) for f, c in pairs if usable[f]]
        repeated = []
    matched = dict(pairs + repeated)
    frame = float(width * height)
    face_records = []
    for i, face in enumerate(faces):
        x1, y1, x2, y2 = (float(v) for v in face.bbox)
        box = [max(0.0, min(x1, width)), max(0.0, min(y1, height)), max(0.0, min(x2, width)),
               max(0.0, min(y2, height))]
        character = matched.get(i)
        face_records.append({
            "box": [round(v, 1) for v in box],
            "det_score": round(float(face.det_score), 4),
            "character": names[character] if character is not None else None,
            "cosine": round(float(cosines[i, character]), 4) if character is not None else None,
            "cosines": {name: round(float(cosines[i, j]), 4) if usable[i] else None for j, name in enumerate(names)},
            "area_share": round((box[2] - box[0]) * (box[3] - box[1]) / frame, 5) if frame else 0.0,
        })
        if regions is not None:
            face_records[-1]["plate_face"] = plate_face[i]
        if not usable[i]:  # only then: every other record stays as it was
            face_records[-1]["unusable"] = True
    by_character: dict[str, dict[str, Any]] = {name: {"face": None, "cosine": None} for name in names}
    for face, character in pairs:
        by_character[names[character]] = {"face": face, "cosine": round(float(cosines[face, character]), 4)}
    # The plate's own faces are nobody's to match: they are left out of the leakage and the flags.
    # An unusable face is compared with no one (its cosines are no measure): left out of the leakage too.
    candidates = [i for i in range(len(faces)) if not plate_face[i] and usable[i]]
    from ..identity.twins import same_face_pairs

    alike = same_face_pairs([member.embedding for member in cast])  # twins: one taken for the other is no fault
    leak = leakage_of(cosines[candidates], [(candidates.index(f), c) for f, c in pairs + repeated], alike)
    if leak is not None:
        leak = (leak[0], candidates[leak[1]], leak[2])
    flags = []
    if cast and not candidates:
        flags.append("no_face")
    if any(entry["face"] is None for entry in by_character.values()):
        flags.append("missing_character")
    if any(cosines[face, character] < thresholds.low_identity for face, character in pairs + repeated):  # unrounded
        flags.append("low_identity")
    if leak is not None and leak[0] >= thresholds.leakage:
        flags.append("leakage")
    return {
        "version": QA_VERSION if regions is None else PLATE_QA_VERSION,
        "cast": names,
        "faces": face_records,
        "characters": by_character,
        "leakage": None if leak is None else round(leak[0], 4),
        "leakage_pair": None if leak is None else _leakage_pair(leak[1], leak[2], names, alike),
        "flags": flags,
        "thresholds": thresholds.record(),
    }


def _leakage_pair(face: int, character: int, names: Sequence[str],
                  alike: AbstractSet[tuple[int, int]]) -> dict[str, Any]:
    """The record's ``leakage_pair``: the face and the character it looks like, and that character's ``twins`` (the
    cast members who share its face, ``alike``) when it has any: the face looks as much like them, and the record is
    all ``qa_findings`` reads, so it names them there rather than only the first of equal cosines."""
    pair: dict[str, Any] = {"face": face, "character": names[character]}
    twins = [names[j] for j in range(len(names)) if j != character and (min(j, character), max(j, character)) in alike]
    if twins:  # only then: every other record stays as it was
        pair["twins"] = twins
    return pair


# -- running it: face models, the cast's references, images ------------------------------------------


class IdentityQA:
    """QA with one face-model pack; references of the cast are computed once per identity.

    A character's reference is the embedding that conditioned the render when its pack was made
    with these face models; with other face models it is re-embedded from the pack's aligned
    112-pixel crops (mean of the kept selfies), because embeddings of different models do not compare.
    """

    def __init__(self, models: Any, thresholds: QAThresholds = QAThresholds(), analyzer: Any = None) -> None:
        self.models = models  # identity.faces.FaceModels
        self.thresholds = thresholds
        self._analyzer = analyzer
        self._references: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    def for_preset(cls, preset: str, face_models: str | None = None, thresholds: QAThresholds = QAThresholds(),
                   hint: tuple[Any, ...] = ("Or pass ", Option("qa", False, negated="--no-qa"),
                                            " to render without identity QA.")) -> IdentityQA:
        """The face models a render of ``preset`` uses (``--face-models``, ``$IDCLI_FACE_MODELS``, preset)."""
        from ..errors import ModelUnavailableError
        from ..identity.resolve import face_models_for

        try:
            models = face_models_for(preset, face_models)
        except ModelUnavailableError as exc:
            raise ModelUnavailableError("identity QA: ", *exc.message_parts, *((" ", *hint) if hint else ())) from None
        return cls(models, thresholds)

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from ..identity.resolve import shared_analyzer

            self._analyzer = shared_analyzer(self.models)
        return self._analyzer

    def reference(self, name: str, embedding_sha256: str, face_models_hash: str | None, pack_path: str | None,
                  embedding: np.ndarray | None = None) -> np.ndarray:
        key = (embedding_sha256, self.models.hash)
        if key in self._references:
            return self._references[key]
        if embedding is not None and face_models_hash == self.models.hash:
            reference = np.asarray(embedding, dtype=np.float32)
        else:
            pack = self._pack(name, embedding_sha256, pack_path)
            if embedding is None and pack.meta.get("face_models", {}).get("hash") == self.models.hash:
                reference = pack.embedding.astype(np.float32)
            else:
                used = [i for i, s in enumerate(pack.meta.get("selfies", [])) if s.get("used", True)]
                crops = pack.tensors["crops_112"][used or list(range(len(pack.tensors["crops_112"])))]
                # A selfie these face models cannot embed (zero or not a number) would pull the mean to zero, and
                # every image of the character read as a stranger (low_identity) for a fault of the models.
                embedded = [e for e in self.analyzer.embed_aligned(crops) if usable_embedding(e)]
                if not embedded:
                    raise QAError(f"character '{name}': the face models in {self.models.folder} embed none of the "
                                  f"pack's {len(crops)} selfie face(s) (zero or not a number), so there is no "
                                  "reference to compare with; check those face models, or give the ones the pack "
                                  "was made with")
                mean = np.mean(embedded, axis=0)
                reference = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
        if not usable_embedding(reference):
            raise QAError(f"character '{name}': its identity's embedding is zero or not a number; re-encode the "
                          "selfies (or re-render) to recreate its pack")
        reference = reference / float(np.linalg.norm(reference))
        self._references[key] = reference
        return reference

    @staticmethod
    def _pack(name: str, embedding_sha256: str, pack_path: str | None) -> Any:
        from ..identity.pack import PackError, read_pack

        if not pack_path:
            raise QAError(f"character '{name}': the sidecar names no identity pack to compare with")
        try:
            pack = read_pack(Path(pack_path))
        except PackError as exc:
            raise QAError(f"character '{name}': {exc}; re-render (or re-encode the selfies) to recreate it") from None
        if pack.embedding_sha256 != embedding_sha256:
            raise QAError(f"character '{name}': the identity pack {pack_path} no longer holds the identity the "
                          "image was rendered with (its embedding changed)")
        return pack

    def check(self, rgb: np.ndarray, cast: Sequence[CastMember],
              regions: Mapping[str, Sequence[Box]] | None = None,
              repeats: Mapping[str, int] | None = None) -> dict[str, Any]:
        """The QA record of one RGB image (uint8, height x width x 3); ``regions``: a plate image's boxes;
        ``repeats``: how many places the prompt gives each character."""
        start = time.perf_counter()
        faces = self.analyzer.detect(rgb)
        height, width = rgb.shape[:2]
        record = assess(faces, cast, width, height, self.thresholds, regions, repeats)
        record["face_models"] = {"hash": self.models.hash, "synthetic": self.models.synthetic}
        record["seconds"] = round(time.perf_counter() - start, 4)
        return record

    def for_job(self, job: Any, pixels: np.ndarray) -> dict[str, Any] | None:
        """QA of a job just rendered (plan.Job; its identities carry their embeddings); None without a cast."""
        conditioning = set(job.conditioning)
        identities = [c for c in job.identities if c.name in conditioning]
        if not identities:
            return None
        cast = [CastMember(c.name, self.reference(c.name, c.embedding_sha256, c.face_models.get("hash"),
                                                  c.pack_path, c.embedding))
                for c in identities]
        return self.check(pixels, cast, plate_regions(getattr(job, "plate", None)),
                          named_repeats(getattr(job, "shot_prompt", None)))

    def for_record(self, record: dict[str, Any], rgb: np.ndarray) -> dict[str, Any] | None:
        """QA of a committed image from its sidecar's identity entries; None without a cast."""
        cast = []
        entries = record.get("identity") or []
        # A sidecar edited after the render: a QAError (reported, the sidecar left alone), not a traceback.
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                    and isinstance(e.get("embedding_sha256"), str) for e in entries):
            raise QAError("the sidecar's identity entries are damaged (each needs a name and an embedding_sha256)")
        for entry in checked_identities(entries):
            models: dict[str, Any] = entry["face_models"] if isinstance(entry.get("face_models"), dict) else {}
            pack = entry.get("pack_path") if isinstance(entry.get("pack_path"), str) else None
            cast.append(CastMember(entry["name"], self.reference(entry["name"], entry["embedding_sha256"],
                                                                 models.get("hash"), pack)))
        try:
            regions = plate_regions(record.get("plate"))
        except (KeyError, TypeError, ValueError):
            raise QAError("the sidecar's plate block is damaged (each face needs a character and a box)") from None
        return self.check(rgb, cast, regions, named_repeats(record.get("shot_prompt"))) if cast else None


def checked_identities(entries: Any) -> list[dict[str, Any]]:
    """The sidecar identity entries QA checks: the characters whose identities condition the image. A character
    in the picture only through its description (``method: single``'s others, identity strength 0) cannot be
    expected to look like its selfies; its face, matched to nobody, still counts as leakage against the others."""
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("conditions_image", True) is not False]


def commit_hook(qa: IdentityQA) -> Any:
    """``qa(job, pixels)`` for the commit thread (idcli/commit_path.py): a failure is recorded in the sidecar, never
    raised — QA must not cost a rendered image."""

    def check(job: Any, pixels: np.ndarray) -> dict[str, Any] | None:
        try:
            return qa.for_job(job, pixels)
        except Exception as exc:  # onnxruntime and insightface raise many kinds
            return {"version": QA_VERSION, "error": f"{type(exc).__name__}: {exc}", "flags": []}

    return check
