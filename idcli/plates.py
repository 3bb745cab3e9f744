"""Plate shots at plan time: read each plate once, find its faces once, give each character its face.

Faces are detected with the face models once per plate and cached by the plate's content and the
models' hash (``<state>/plate-faces/``), so ``idcli validate`` and ``idcli plan`` report a plate with
too few or too many faces, at the shot's line, before anything renders. Detected faces are counted
left to right (by the box's left edge); without ``plate_faces`` the characters take them in the
order the prompt names them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine.plates import DEFAULT_STRENGTH, Box
from .errors import Problem, ShotListError, in_file_order
from .hashing import tagged_hash
from .paths import state_dir
from .plate_files import Plate, PlateError, read_plate
from .safeio import atomic_write, remove_dead_temporaries
from .shotlist import LoadedShotList, Shot, placeholders

PLATE_FACES_TAG = "idcli-plate-faces-v1"


@dataclass(frozen=True)
class PlateFace:
    character: str
    box: Box  # x, y, w, h in plate pixels
    detected: bool  # found by the face models (else given as a box in plate_faces)


@dataclass(frozen=True)
class PlateShot:
    """A plate shot's plate and the face each named character takes."""

    plate: Plate
    faces: tuple[PlateFace, ...]
    strength: float


def _box(bbox: Any) -> Box:
    x1, y1, x2, y2 = (float(v) for v in bbox[:4])
    return round(x1), round(y1), max(1, round(x2 - x1)), max(1, round(y2 - y1))


def detect_plate_faces(plate: Plate, analyzer_for: Any, models_hash: str) -> list[Box]:
    """The plate's face boxes, left to right; cached by the plate's sha256 and the face models' hash.

    ``analyzer_for``: a callable giving the FaceAnalyzer, called only on a cache miss.
    """
    key = tagged_hash(PLATE_FACES_TAG, {"plate": plate.sha256, "face_models": models_hash})
    cached = state_dir() / "plate-faces" / f"{key.split(':')[1][:32]}.json"
    try:
        record = json.loads(cached.read_text("utf-8"))
        if record.get("key") == key:
            return [tuple(int(v) for v in box) for box in record["boxes"]]  # type: ignore[misc]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no entry, or a damaged one: detect again
    from .engine.plates import rgb_of

    faces = analyzer_for().detect(rgb_of(plate.pixels))
    boxes = sorted((_box(face.bbox) for face in faces), key=lambda b: (b[0], b[1]))
    cached.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(cached.parent)  # a render killed mid-write left its temporary in the cache
    atomic_write(cached, json.dumps({"key": key, "boxes": [list(b) for b in boxes]}).encode("utf-8"))
    return boxes


def _where(boxes: list[Box]) -> str:
    return ", ".join(f"#{i} at [{b[0]}, {b[1]}, {b[2]}, {b[3]}]" for i, b in enumerate(boxes)) or "none"


# Why the synthetic face pack finds no face in a grey plate: it finds faces by their drawn skin colours.
GREY_PLATE = "the synthetic face pack finds faces by their skin colours and finds none in a greyscale plate"


def is_greyscale(plate: Plate) -> bool:
    """Whether every pixel of the plate is grey (its three colour channels equal): a greyscale file, or grey as RGB."""
    rgb = plate.pixels[..., :3]
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


CHOOSE = "choose faces with 'plate_faces: [index, ...]' or give boxes [x, y, w, h]"
NO_INDEX = "give its face as a box [x, y, w, h] in plate pixels: no face was found to take by its index"


def _boxes_hint(named: list[str], found: int) -> str:
    """How to give the faces the face models did not find: as boxes in plate_faces, in the prompt's order."""
    order = f" ({', '.join(named)})"
    if found == 0:
        boxes = ", ".join("[x, y, w, h]" for _ in named)
        return (f"give each character's face as a box: plate_faces: [{boxes}]{order}, x, y its top-left corner, w, h "
                "its width and height in plate pixels")
    return (f"give the faces not found as boxes [x, y, w, h] in plate_faces and the ones found by their index, one "
            f"entry per character in the prompt's order{order}")


def assign_faces(shot: Shot, plate: Plate, detect: Any,
                 why_none: Callable[[], str] | None = None) -> tuple[tuple[PlateFace, ...], str, str, str]:
    """Each named character's face; ``((), problem, field, hint)`` when they cannot be given one (the hint may be "").

    ``detect``: a callable giving the plate's detected boxes (left to right), called only when needed.
    ``why_none``: a callable giving why the face models find no face in this plate, when that is known
    (``GREY_PLATE``; else ""), said with a problem of faces not found; called only then.
    """
    named = list(dict.fromkeys(placeholders(shot.prompt)))
    width, height = plate.size
    wanted = shot.plate_faces if shot.plate_faces is not None else list(range(len(named)))
    detected: list[Box] | None = None
    faces = []
    for j, (name, face) in enumerate(zip(named, wanted, strict=False)):
        field = f"plate_faces[{j}]" if shot.plate_faces is not None else "plate"
        if isinstance(face, list):
            x, y, w, h = face
            if x + w > width or y + h > height:
                past = " and ".join(part for part, over in (
                    (f"its right edge x + w = {x + w} is past {width}", x + w > width),
                    (f"its bottom edge y + h = {y + h} is past {height}", y + h > height)) if over)
                return (), (f"box [{x}, {y}, {w}, {h}] is outside the {width}x{height} plate: {past} (a box lies "
                            f"inside the plate: x + w at most {width}, y + h at most {height})"), field, ""
            faces.append(PlateFace(name, (x, y, w, h), False))
            continue
        if detected is None:
            detected = detect()
        because = f"; {reason}" if not detected and why_none is not None and (reason := why_none()) else ""
        if shot.plate_faces is None and len(detected) != len(named):
            few = len(detected) < len(named)
            # Faces the models did not find are given as boxes; an index picks only among those found.
            return (), (f"{'too few' if few else 'too many'} faces in the plate: {len(detected)} found "
                        f"({_where(detected)}) for {len(named)} character{'s' if len(named) != 1 else ''} named in "
                        f"the prompt{because}"), "plate", _boxes_hint(named, len(detected)) if few else CHOOSE
        if face >= len(detected):
            return (), (f"plate face {face} does not exist: {len(detected)} found ({_where(detected)}){because}"), \
                field, CHOOSE if detected else NO_INDEX
        faces.append(PlateFace(name, detected[face], True))
    if shot.plate_faces is not None and (twice := _given_twice(faces, shot.plate_faces)) is not None:
        return (), twice[1], f"plate_faces[{twice[0]}]", "each character needs its own face"
    return tuple(faces), "", "", ""


def _given_twice(faces: list[PlateFace], wanted: list[Any]) -> tuple[int, str] | None:
    """The first plate_faces entry (its index, the problem) that gives a face an earlier character has, else None.

    One face given to two characters lays the later one's face over the earlier's in full: the image loses a
    character. Two equal indices are refused before (shotlist_checks: 'the same plate face is given twice'); an index
    and a box equal to that detected face, or two equal boxes, are the same face too.
    """
    first: dict[Box, int] = {}
    for j, face in enumerate(faces):
        k = first.setdefault(face.box, j)
        if k == j or (isinstance(wanted[k], int) and isinstance(wanted[j], int)):
            continue
        box, earlier = f"[{', '.join(str(v) for v in face.box)}]", faces[k].character
        if isinstance(wanted[j], int):
            return j, f"plate face #{wanted[j]} is the box {box} given to '{earlier}' already"
        if isinstance(wanted[k], int):
            return j, f"box {box} is plate face #{wanted[k]}, given to '{earlier}' already"
        return j, f"box {box} is given to '{earlier}' already"
    return None


def check_plates(loaded: LoadedShotList, models: Any = None,
                 analyzer_for: Any = None) -> tuple[dict[int, PlateShot], list[Problem]]:
    """Every plate shot's plate and faces, and every problem (at the shot's line) with them.

    ``models``/``analyzer_for``: the face models and a callable giving their analyzer; when None,
    faces that would need detecting are not checked (the caller says so).
    """
    problems: list[Problem] = []
    shots: dict[int, PlateShot] = {}
    read: dict[Path, Plate | PlateError] = {}
    for i, shot in enumerate(loaded.shotlist.shots):
        if shot is None or shot.plate is None:  # None: a shot left out (see with_plate_problems)
            continue

        def problem(message: str, field: str = "plate", hint: str = "", i: int = i) -> None:
            loc: tuple[str | int, ...] = ("shots", i, *_field_path(field))
            line, column = loaded.position(loc)
            problems.append(Problem(message, f"shots[{i}].{field}", line, column, hint))

        path = loaded.resolve_path(shot.plate)
        if path not in read:
            try:
                read[path] = read_plate(path)
            except PlateError as exc:
                read[path] = exc
        plate = read[path]
        if isinstance(plate, PlateError):
            problem(f"plate '{shot.plate}' cannot be used: {str(plate).replace(str(path), shot.plate)}")
            continue
        if models is None and (shot.plate_faces is None or any(isinstance(f, int) for f in shot.plate_faces)):
            continue  # faces to detect and no face models here: checked where they are

        def why_none(plate: Plate = plate) -> str:  # looked at only when no face was found
            return GREY_PLATE if models is not None and models.synthetic and is_greyscale(plate) else ""

        faces, message, field, hint = assign_faces(
            shot, plate, lambda plate=plate: detect_plate_faces(plate, analyzer_for, models.hash), why_none)
        if message:
            problem(message, field, hint)
            continue
        strength = shot.plate_strength if shot.plate_strength is not None else DEFAULT_STRENGTH
        shots[i] = PlateShot(plate, faces, strength)
    return shots, problems


# Names the crop/mask/blend/composite arithmetic of idcli/engine/plates.py: bump it when any of it changes.
PLATE_ALGORITHM = "idcli-plate-v1"


def _method_constants() -> dict[str, Any]:
    from .engine import plates as P

    return {"algorithm": PLATE_ALGORITHM, "crop_margin": P.CROP_MARGIN, "mask_growth": P.MASK_GROWTH,
            "feather": P.FEATHER}


def plate_key_material(shot: PlateShot) -> dict[str, Any]:
    """What a plate adds to a job's key material (job_keys.key_material's, which it extends, unchanged):
    the plate's content, each face's box and crop box, the strength and the method's constants.
    Text-to-image keys have no ``plate`` entry, so they are unchanged by plates existing."""
    from .engine.plates import crop_box

    faces = [{"character": face.character, "box": list(face.box), "crop_box": list(crop_box(face.box, shot.plate.size))}
             for face in shot.faces]
    return {"plate": {"sha256": shot.plate.sha256, "size": list(shot.plate.size), "faces": faces,
                      "strength": shot.strength, "method": _method_constants()}}


def plate_record(shot: PlateShot, path_text: str, expressions: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's ``plate`` block (docs/file-formats.md): the file, and per face its box, crop box,
    character, expression (``expressions``: character -> its resolved record, or None) and strength."""
    from .engine.plates import crop_box
    from .hashing import sha256_bytes

    profile = shot.plate.icc_profile
    return {"sha256": shot.plate.sha256, "path": path_text, "size": list(shot.plate.size),
            "faces": [{"character": face.character, "box": list(face.box),
                       "crop_box": list(crop_box(face.box, shot.plate.size)), "detected": face.detected,
                       "expression": expressions.get(face.character), "strength": shot.strength}
                      for face in shot.faces],
            # The plate's colour profile the PNG carries (iCCP): `idcli reproduce` writes it again only for a
            # record that says so, so a take rendered before images carried it (2026-12-02) stays identical.
            **({"icc_profile_sha256": sha256_bytes(profile)} if profile else {})}


def overlapping_faces(faces: list[tuple[Box, Box]], plate_size: tuple[int, int]) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, of faces (face box, crop box) whose feathered masks overlap on the plate.

    The composite lays face j's blend over face i there (docs/plates.md), so ``plan`` says so. Each mask is
    the render's own (``face_mask``), which lies inside its crop box: only pairs whose crops meet can overlap.
    """
    from .engine.plates import face_mask

    masks = [face_mask(face, crop, plate_size) for face, crop in faces]
    pairs = []
    for i, (_, crop_i) in enumerate(faces):
        for j in range(i + 1, len(faces)):
            crop_j = faces[j][1]
            left, top = max(crop_i[0], crop_j[0]), max(crop_i[1], crop_j[1])
            right = min(crop_i[0] + crop_i[2], crop_j[0] + crop_j[2])
            bottom = min(crop_i[1] + crop_i[3], crop_j[1] + crop_j[3])
            if right <= left or bottom <= top:
                continue
            mask_i = masks[i][top - crop_i[1]:bottom - crop_i[1], left - crop_i[0]:right - crop_i[0]]
            mask_j = masks[j][top - crop_j[1]:bottom - crop_j[1], left - crop_j[0]:right - crop_j[0]]
            if ((mask_i > 0) & (mask_j > 0)).any():
                pairs.append((i, j))
    return pairs


def overlap_words(under: PlateFace, over: PlateFace) -> tuple[str, str]:
    """Message and hint for two faces whose masks overlap (``over`` laid over ``under``): plan's and render's warning,
    validate's note."""
    return (f"the face masks of '{under.character}' {list(under.box)} and '{over.character}' {list(over.box)} "
            f"overlap; where they do, the face of '{over.character}' is laid over that of '{under.character}'",
            "keep the boxes apart, or give one box holding both faces to one character")


def overlap_notes(loaded: LoadedShotList, shots: dict[int, PlateShot]) -> list[Problem]:
    """validate's notes of faces whose masks overlap, at the later face's ``plate_faces`` entry (else its ``plate``),
    as plan and render warn of them: an artist checking a shot list with validate learns of it before the render."""
    from .engine.plates import crop_box

    notes = []
    for i, plate_shot in sorted(shots.items()):
        faces, size = plate_shot.faces, plate_shot.plate.size
        given = loaded.shotlist.shots[i].plate_faces
        for k, j in overlapping_faces([(face.box, crop_box(face.box, size)) for face in faces], size):
            loc: tuple[str | int, ...] = ("shots", i, "plate_faces", j) if given is not None else ("shots", i, "plate")
            line, column = loaded.position(loc)
            message, hint = overlap_words(faces[k], faces[j])
            notes.append(Problem(message, f"shots[{i}]." + (f"plate_faces[{j}]" if given is not None else "plate"),
                                 line, column, hint))
    return notes


def _field_path(field: str) -> tuple[str | int, ...]:
    if "[" in field:
        name, index = field.rstrip("]").split("[")
        return name, int(index)
    return (field,)


def plate_shots(loaded: LoadedShotList, face_models: str | None = None, preset: str | None = None, *,
                need_faces: bool = True) -> dict[int, PlateShot]:
    """Every plate shot's plate and faces (shot index -> PlateShot); a ShotListError with every problem.

    Called by ``validate`` (``need_faces=False``: without face models here, faces that would need detecting
    are not checked, as before) and by ``plan_shotlist`` (so by every render), which needs every face: a
    missing face-model pack is then a ModelUnavailableError. A shot list with plates is checked fully
    (files, boxes, faces, identities) before anything is planned, so nothing is half-rendered.
    """
    if not any(shot is not None and shot.plate is not None for shot in loaded.shotlist.shots):
        return {}
    from .errors import ModelUnavailableError
    from .identity.resolve import face_models_for, shared_analyzer

    try:
        models = face_models_for(preset or loaded.shotlist.model.preset, face_models)
    except ModelUnavailableError:
        if need_faces and any(_detects(shot) for shot in loaded.shotlist.shots
                              if shot is not None and shot.plate is not None):
            raise
        models = None
    shots, problems = check_plates(loaded, models, (lambda: shared_analyzer(models)) if models else None)
    problems.extend(_identity_problems(loaded))
    if problems:  # in file order, lineless last, as ShotListError lists every input document's problems
        raise ShotListError(loaded.source, problems)
    return shots


def with_plate_problems(error: ShotListError, face_models: str | None = None) -> ShotListError:
    """``error`` (a shot list's problems) with the plate problems of the shots that have none of their own.

    The plate checks read files, so they run after the shot list parses; without this a plate's problem
    (too many faces, a bad file) came only once every other shot was fixed, and README promises every
    problem in one ``validate``. A shot with a problem of its own is checked further once it is fixed, as
    for type errors.
    """
    import re
    from dataclasses import replace

    parsed = error.parsed
    if parsed is None:
        return error
    # a box left of or above the plate: its right and bottom edges too, in the same round, when the plate reads
    error = replace(error, problems=[_with_plate_edges(p, parsed) for p in error.problems])
    flagged = {int(m.group(1)) for p in error.problems if (m := re.match(r"shots\[(\d+)\]", p.path or ""))}
    shots = [None if i in flagged else shot for i, shot in enumerate(parsed.shotlist.shots)]
    rest = replace(parsed, shotlist=parsed.shotlist.model_copy(update={"shots": shots}))
    try:
        plate_shots(rest, face_models, need_faces=False)
    except ShotListError as more:
        problems = in_file_order(error.problems + more.problems)
        return ShotListError(error.source, problems)
    return error


def _with_plate_edges(problem: Problem, loaded: LoadedShotList) -> Problem:
    """A box left of or above the plate (refused by the schema, which knows no plate size) with the right and bottom
    edges it crosses too, when its plate is readable: a box past the top and the right edge was said in two rounds,
    the top first and the right edge only once the top was fixed."""
    import re
    from dataclasses import replace

    from .plate_face_words import box_given, outside_the_plate

    at = re.fullmatch(r"shots\[(\d+)\]\.plate_faces\[(\d+)\]\[[01]\]", problem.path or "")
    data = loaded.yaml.data if loaded.yaml is not None else None
    if at is None or not problem.message.startswith("box [") or data is None:
        return problem
    shot, face = int(at.group(1)), int(at.group(2))
    box = box_given(data, shot, face)
    try:
        plate = data["shots"][shot]["plate"]
    except (KeyError, IndexError, TypeError):
        return problem
    if box is None or not isinstance(plate, str):
        return problem
    try:
        size = read_plate(loaded.resolve_path(plate)).size
    except PlateError:
        return problem  # the plate's own problem is said at its line; the box's known edges stand
    x, y, w, h = box
    if x + w <= size[0] and y + h <= size[1]:
        return problem  # left of or above the plate only: said in full already
    words = outside_the_plate(box, size)
    return problem if words is None else replace(problem, message=words[0], hint=words[1])


def _detects(shot: Shot) -> bool:
    """Whether a plate shot needs the face models (some face is an index, not a box)."""
    return shot.plate_faces is None or any(isinstance(face, int) for face in shot.plate_faces)


def _identity_problems(loaded: LoadedShotList) -> list[Problem]:
    """A plate face is re-generated with its character's identity: a character (or shot) whose identity
    strength is 0 has none to give, so naming it in a plate shot is an error at the line that says 0.

    (Characters always have selfies or a pack; one whose selfies are unusable blocks the shot's takes as it
    does any shot's, with the selfie's problem.)"""
    problems = []
    for i, shot in enumerate(loaded.shotlist.shots):
        if shot is None or shot.plate is None:
            continue
        if shot.identity_strength == 0:
            line, column = loaded.position(("shots", i, "identity_strength"))
            problems.append(Problem("a plate shot re-generates each face with its character's identity, and "
                                    "identity_strength 0 turns identities off", f"shots[{i}].identity_strength",
                                    line, column, "remove identity_strength, or remove 'plate' to render from text"))
            continue
        for name in dict.fromkeys(placeholders(shot.prompt)):
            character = loaded.shotlist.characters.get(name)
            if character is not None and character.identity_strength == 0:
                line, column = loaded.position(("shots", i, "plate"))
                problems.append(Problem(f"'{name}' has identity_strength 0, so it has no identity to put into a "
                                        "plate face", f"shots[{i}].plate", line, column,
                                        f"give '{name}' an identity_strength above 0, or leave it out of this shot"))
    return problems
