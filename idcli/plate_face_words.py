"""``plate_faces`` as an artist writes it before reading docs/plates.md: words for faces, or faces by name.

``plate_faces: [left, right]`` and ``plate_faces: {mara: 0, theo: 1}`` are what a person looking at the plate
writes. The type checks answered them in general words ("a whole number or a list is expected here ... write a whole
number without quotes", "a list is expected here, not fields"), which say neither how faces are counted nor that the
list goes by the prompt's order. Here they are answered with both, and, for faces given by name, the list to write.
A word with no list (``plate_faces: left``) is answered so too (the general hint, ``[left]``, fails again), and a box
of other than 4 numbers says what the 4 are.
"""

from __future__ import annotations

from typing import Any

from .shotlist import PlaceholderError, placeholders
from .yamlsafe import PathKey

COUNTED = ("faces are counted from the left, from 0; without plate_faces the characters take the faces left to "
           "right, in the prompt's order; 'idcli plan' lists which face each character takes")
BOX = ("x, y: its top-left corner, w, h: its width and height, in plate pixels; or give a detected face's index, 0 "
       "for the leftmost face")


def plate_faces_words(loc: PathKey, value: Any, data: Any) -> tuple[str, str] | None:
    """Message and hint for ``plate_faces`` (at ``loc`` in the document ``data``) written as words or by name, or
    a box of other than 4 numbers; None for anything else, which the general words answer."""
    if len(loc) == 5 and loc[0] == "shots" and loc[2] == "plate_faces" and loc[4] in (0, 1):
        return _before_the_edge(value, box_given(data, loc[1], loc[3]))
    if len(loc) not in (3, 4) or loc[0] != "shots" or loc[2] != "plate_faces":
        return None
    face = len(loc) == 4  # one face of the list, else the field itself
    if face and isinstance(value, list) and len(value) != 4:
        # 'the list has 3 items (give at least 4 items)' said nothing of what the 4 numbers are
        return f"a plate face box has 4 numbers, [x, y, w, h], not {len(value) or 'none'}", BOX
    if isinstance(value, str) and _number_text(value):
        return None  # a quoted number: the general hint (write it without quotes; plate_faces: [1]) is right
    if face and isinstance(value, str):
        return (f"'{_shown(value)}' is not a plate face: give a detected face's index (0 is the leftmost face) or a "
                "box [x, y, w, h]", COUNTED)
    if isinstance(value, str):
        # plate_faces: left -- the general hint's list, plate_faces: [left], fails again
        return (f"a list is expected here, not the text '{_shown(value)}', and '{_shown(value)}' is not a plate "
                "face: give a list of one detected face's index (0 is the leftmost face) or box [x, y, w, h] per "
                "character, as plate_faces: [0]", COUNTED)
    if not face and isinstance(value, dict):
        message = ("a list is expected here, not fields (a mapping): plate_faces gives one face per character in the "
                   "order the prompt names them, not by name")
        prompt = _prompt(data, loc[1])
        absent = _not_in_prompt(value, prompt, data)
        if absent is not None:
            return message + absent[0], absent[1]
        return message, _by_name_hint(value, prompt)
    return None


def _before_the_edge(value: Any, box: list[int] | None) -> tuple[str, str] | None:
    """A box whose x or y is negative: the box ``plan`` prints for a face cut by the plate's left or top edge reaches
    past it, and given back in plate_faces it was refused as 'must be at least 0, not -3', naming neither x nor the
    edge. Said as the right and bottom edges are (plates.assign_faces), with the box's part inside the plate; the
    plate's size is not known here (with_plate_problems adds its edges when the plate is readable)."""
    if box is None or not isinstance(value, int) or isinstance(value, bool) or value >= 0:
        return None
    return outside_the_plate(box)


def outside_the_plate(box: list[int], size: tuple[int, int] | None = None) -> tuple[str, str] | None:
    """Message and hint for a box ``[x, y, w, h]`` reaching past the plate: every edge it crosses (left and top; right
    and bottom too when the plate's ``size`` (width, height) is known), and its part inside the plate when that is a
    box big enough to give. None for a box inside the plate."""
    x, y, w, h = box
    width, height = size if size is not None else (x + w, y + h)  # no size: only the left and top edges are known
    past = " and ".join(part for part, over in ((f"its left edge x = {x} is left of 0", x < 0),
                                                (f"its top edge y = {y} is above 0", y < 0),
                                                (f"its right edge x + w = {x + w} is past {width}", x + w > width),
                                                (f"its bottom edge y + h = {y + h} is past {height}", y + h > height))
                        if over)
    if not past:
        return None
    plate = "the plate" if size is None else f"the {width}x{height} plate"
    hint = "a box lies inside the plate: x and y at least 0"
    if size is not None:
        hint += f", x + w at most {width}, y + h at most {height}"
    left, top = max(x, 0), max(y, 0)
    inside = [left, top, min(x + w, width) - left, min(y + h, height) - top]
    if inside[2] >= 8 and inside[3] >= 8:  # a box's least size (plates.md, "Fields")
        hint += ("; for a face cut by the plate's edge (plan shows its box reaching past it) give the face's index, "
                 f"or the box's part inside the plate: [{', '.join(str(v) for v in inside)}]")
    return f"box [{x}, {y}, {w}, {h}] is outside {plate}: {past}", hint


def box_given(data: Any, shot: Any, face: Any) -> list[int] | None:
    """The plate_faces box as the document gives it: 4 whole numbers, else None."""
    try:
        box = data["shots"][shot]["plate_faces"][face]
    except (KeyError, IndexError, TypeError):
        return None
    if isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in box):
        return box
    return None


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


def _number_text(value: str) -> bool:
    try:
        float(value.strip().replace(",", "."))
    except ValueError:
        return False
    return True


def _prompt(data: Any, index: Any) -> str | None:
    try:
        prompt = data["shots"][index]["prompt"]
    except (KeyError, IndexError, TypeError):
        return None
    return prompt if isinstance(prompt, str) else None


def _face_text(face: Any) -> str | None:
    if isinstance(face, int) and not isinstance(face, bool):
        return str(face)
    if isinstance(face, list) and len(face) == 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in face):
        return f"[{', '.join(str(v) for v in face)}]"
    return None


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _not_in_prompt(faces: dict[Any, Any], prompt: str | None, data: Any) -> tuple[str, str] | None:
    """Words and hint for faces given by name to characters this shot's prompt does not name, else None.

    ``{theo: 0, ines: 1}`` with ines in the cast but not in the prompt: the list in the prompt's order cannot be
    written, and the general "not by name" hint did not say why ines has no face here, nor how she gets one: a shot's
    characters are the ones its prompt names as ``{ines}`` (docs/shot-lists.md).
    """
    try:
        named = list(dict.fromkeys(placeholders(prompt))) if prompt is not None else []
    except PlaceholderError:
        return None  # the prompt's own problem, said at its line
    cast = data.get("characters") if isinstance(data, dict) else None
    cast_names = sorted(str(name) for name in cast) if isinstance(cast, dict) else []
    given = [name for name in faces if isinstance(name, str)]
    absent = [name for name in given if name not in named and name in cast_names]
    unknown = [name for name in given if name not in named and name not in cast_names]
    if not absent and not unknown:
        return None
    words = ""
    if absent:
        quoted = _names([f"'{name}'" for name in absent])
        words += f"; {quoted} {'is' if len(absent) == 1 else 'are'} not named in this shot's prompt"
    if unknown:
        quoted = _names([f"'{_shown(name)}'" for name in unknown])
        listed = f"its characters: {', '.join(cast_names)}" if cast_names else "it defines no characters"
        words += f"; {quoted} {'is' if len(unknown) == 1 else 'are'} no character of this shot list ({listed})"
    hints = []
    if absent:
        them = f"'{absent[0]}' a face" if len(absent) == 1 else "them faces"
        like = f", as it names {_names(['{' + n + '}' for n in named])}" if named else ""
        hints.append(f"to give {them}, name {_names(absent)} in the prompt as "
                     f"{_names(['{' + n + '}' for n in absent])}{like}")
    letters = "abcdefghijklmnopqrstuvwxyz"
    if 0 < len(named) <= len(letters):
        faces_of = _names([f"{name} face {letters[k]}" for k, name in enumerate(named)])
        hints.append(f"as the prompt stands, plate_faces: [{', '.join(letters[:len(named)])}] gives {faces_of}")
    elif not named:
        hints.append("the prompt names no character")
    return words, "; ".join(hints)


def _by_name_hint(faces: dict[Any, Any], prompt: str | None) -> str:
    """The list in the prompt's order when the names are the prompt's and each face is written as one can be."""
    general = "plate_faces: [a, b]: the first character the prompt names takes face a, the second b"
    try:
        named = list(dict.fromkeys(placeholders(prompt))) if prompt is not None else []
    except PlaceholderError:
        return general
    texts = [_face_text(faces[name]) if name in faces else None for name in named]
    if not named or set(faces) != set(named) or None in texts:
        return general
    return f"plate_faces: [{', '.join(t for t in texts if t is not None)}] ({', '.join(named)})"
