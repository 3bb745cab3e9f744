"""Pydantic's validation errors as idcli's shot-list problems: the file's line and column, the field's path as
the document writes it, what is allowed and the nearest valid word — never pydantic's own wording.

``partial_shotlist`` keeps what did parse, so that the rules that span fields (``shotlist_checks``) still run
on it and ``validate`` lists every problem at once (README).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Problem
from .field_ranges import FieldRange, field_range, number_kind
from .number_notes import octal_hint
from .other_tools_keys import adapter_knob_hint, other_tools_hint, seed_hint
from .plate_face_words import plate_faces_words
from .shotlist import (
    AdapterSpec,
    C2paSpec,
    Character,
    Expression,
    MethodParams,
    ModelSpec,
    ProvenanceSpec,
    RenderParams,
    Shot,
    ShotList,
)
from .suggest import did_you_mean
from .validation_words import (
    BOUNDS,
    EXPECTED,
    SHAPE_KINDS,
    bound_problem,
    length_problem,
    number_hint,
    shape_problem,
    type_problem,
    written,
)
from .yamlhints import number_problem, placeholder_problem
from .yamlsafe import LoadedYaml
from .yamlsafe import path_text as _path_text

_MODEL_AT: dict[str, type[BaseModel]] = {"model": ModelSpec, "defaults": RenderParams}


def range_at(loc: tuple[Any, ...]) -> FieldRange:
    """The allowed range of the number field at ``loc`` (``duration``, or an item of ``seeds``), from the schema."""
    annotation, item = _annotation_at(loc)
    return FieldRange() if annotation is None else field_range(annotation, item=item)


def _annotation_at(loc: tuple[Any, ...]) -> tuple[Any, bool]:
    """The schema's annotation of the field at ``loc`` (None: no field there), and whether ``loc`` is an item of it."""
    item = bool(loc) and isinstance(loc[-1], int)
    key, model = (loc[-2], _model_for(loc[:-2])) if item and len(loc) >= 2 else (loc[-1] if loc else None,
                                                                                  _model_for(loc[:-1]))
    if model is None or not isinstance(key, str) or key not in model.model_fields:
        return None, item
    return model.model_fields[key].annotation, item


def decimal_comma_hint(loc: tuple[Any, ...], text: str) -> str | None:
    """The fix for ``steps: 2,5`` in a {...} mapping (YAML reads steps 2 and a key 5; yamlsafe says so) as the field
    at ``loc`` takes numbers: a whole-number field's whole numbers in its range (``steps: 2 or steps: 3``), where
    "write a decimal point: steps: 2.5" offered what it refuses; a decimal field's number with a point, and its range
    when that is outside it. None for a field that takes no number (yamlsafe's own words then)."""
    annotation, item = _annotation_at(loc)
    kind = None if annotation is None else number_kind(annotation, item=item)
    if kind is None:
        return None
    return number_hint(kind, loc, text, None, field_range(annotation, item=item)) or None


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose keys are valid at ``loc`` (the location of a mapping)."""
    if not loc:
        return ShotList
    head = loc[0]
    if head in _MODEL_AT and len(loc) == 1:
        return _MODEL_AT[head]
    if head == "shots" and len(loc) == 2:
        return Shot
    if head == "shots" and len(loc) == 3 and loc[2] == "expression":
        return Expression
    if head == "shots" and len(loc) == 4 and loc[2] == "expressions":
        return Expression
    if (head == "shots" and len(loc) == 3 and loc[2] == "method_params") or loc == ("defaults", "method_params"):
        return MethodParams
    if head == "characters" and len(loc) == 2:
        return Character
    if head == "model" and len(loc) == 2 and loc[1] == "adapter":
        return AdapterSpec
    if loc == ("provenance",):
        return ProvenanceSpec
    if loc == ("provenance", "c2pa"):
        return C2paSpec
    return None


_TAGS = {"str", "Expression", "list[str]", "tuple[int, int]", "constrained-str", "constrained-int", "int", "float"}


def _clean_loc(loc: tuple[Any, ...], loaded: LoadedYaml | None = None) -> tuple[Any, ...]:
    # pydantic adds union-member and validator tags ("str", "Expression", "function-before[...]");
    # they are noise to a person, not part of the document's path — unless the document itself has a
    # key of that name there (an unknown key 'int' must keep its name).
    kept: tuple[Any, ...] = ()
    for part in loc:
        tag = isinstance(part, str) and (part in _TAGS or "[" in part)
        if not tag or (loaded is not None and (*kept, part) in loaded.key_marks):
            kept = (*kept, part)
    return kept


def problems_from_validation(exc: ValidationError, loaded: LoadedYaml) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    errors = [(_clean_loc(tuple(err["loc"]), loaded), err) for err in exc.errors(include_url=False)]
    all_locs = {loc for loc, _err in errors}
    all_kinds = {(loc, err["type"]) for loc, err in errors}
    # A union's members that all failed on the value's type ('plate_faces: [1.5]': neither a whole number nor
    # a list): one problem naming each thing that would do, not one problem per member.
    type_kinds: dict[tuple[Any, ...], list[str]] = {}
    for loc, err in errors:
        if loc != tuple(err["loc"]) and err["type"] in EXPECTED:
            type_kinds.setdefault(loc, []).append(err["type"])
    spoken: set[tuple[Any, ...]] = set()
    box_words: set[tuple[tuple[Any, ...], str]] = set()  # a plate box's words, said once per box
    for loc, err in errors:
        kind = err["type"]
        if kind.startswith("union") or (loc, kind) in seen:
            continue
        # A union member that failed at the value itself ('expression: Input should be a valid
        # string') is noise when another member got further and failed deeper inside it. A bad
        # mapping key ('[key]' in the loc) is no union member: it is always reported.
        tagged = loc != tuple(err["loc"]) and "[key]" not in err["loc"]
        if tagged and any(len(other) > len(loc) and other[: len(loc)] == loc for other in all_locs):
            continue
        # Likewise 'not an integer' beside the other member's own complaint ('plate_faces: [[1, 2, 3]]': a box
        # of 3 numbers is no face index either): the member of the value's own type speaks.
        if tagged and kind.endswith("_type") and any(
                other == loc and not other_kind.endswith("_type") for other, other_kind in all_kinds):
            continue
        seen.add((loc, kind))
        if kind in EXPECTED and len(type_kinds.get(loc, [])) > 1:
            if loc in spoken:
                continue
            spoken.add(loc)
        hint = ""
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_for(loc[:-1])
            allowed = sorted(model.model_fields) if model else []
            hint = ((adapter_knob_hint(key) if model is AdapterSpec else "")
                    or seed_hint(key, err.get("input"), allowed) or other_tools_hint(key, allowed)
                    or did_you_mean(key, allowed) or (f"allowed: {', '.join(allowed)}" if allowed else ""))
            message = f"unknown key '{key}'"
            line_col = loaded.mark(loc, key=True)
        elif kind == "missing":
            message = f"missing required key '{loc[-1]}'"
            line_col = loaded.mark(loc[:-1])
        elif kind == "literal_error":
            value = err.get("input")
            expected = err.get("ctx", {}).get("expected", "")
            options = re.findall(r"'([^']*)'", expected) or re.findall(r"\d+", expected)
            # The text as written ('Ddim'), true/false as YAML writes them; a list or mapping in words, not
            # as Python writes it ("'['ddim']' is not allowed").
            shown = f"'{str(value).lower() if isinstance(value, bool) else value}'"
            message = (f"{shown} is not allowed" if isinstance(value, (str, int, float))
                       else f"{written(value)} {'is' if isinstance(value, list) else 'are'} not allowed")
            suggestion = did_you_mean(str(value), options) if isinstance(value, str) else ""
            if isinstance(value, str) and value in options:  # version: '1' is text, not the number
                suggestion = "write it without quotes"
            hint = "; ".join(x for x in (suggestion, f"allowed: {', '.join(options)}") if x)
            line_col = loaded.mark(loc)
        elif kind == "string_type" and loc in loaded.flow_placeholders:
            # prompt: {mara} on a pier -- YAML read a mapping: say so, and how to quote it.
            message, hint = placeholder_problem(_path_text(loc), loaded.flow_placeholders[loc])
            line_col = loaded.mark(loc)
        elif kind == "string_type" and loc in loaded.plain_scalars:
            # id: 0010 -- YAML read a number (octal 8): say so, and how to quote it.
            message, hint = number_problem(_path_text(loc), loaded.plain_scalars[loc], err.get("input"))
            line_col = loaded.mark(loc)
        elif (words := plate_faces_words(loc, err.get("input"), loaded.data)) is not None:
            # plate_faces: [left, right] or {mara: 0, theo: 1}: how faces are counted, and the list to write.
            message, hint = words
            if (loc[:-1], message) in box_words:
                continue  # [-4, -2, 146, 175]: x and y fail alike, and the words at x name both edges already
            box_words.add((loc[:-1], message))
            line_col = loaded.mark(loc)
        elif kind in SHAPE_KINDS and len(type_kinds.get(loc, [])) <= 1:
            # 'Input should be a valid dictionary or instance of Shot': the parser's words, a class name.
            message, hint = shape_problem(kind, loc, err)
            line_col = loaded.mark(loc)
        elif kind in EXPECTED:
            # 'Input should be a valid integer': types are strict, so say what would do and how to write it.
            # prompt: [dusk] -- a list written on one line: the fix quotes it as written (validation_words).
            raw = loaded.plain_scalars.get(loc) or (loaded.flow_texts.get(loc) if kind == "string_type" else None)
            message, hint = type_problem(type_kinds.get(loc, [kind]), loc, err.get("input"), raw, range_at(loc))
            line_col = loaded.mark(loc)
        elif kind in BOUNDS:
            message = bound_problem(kind, err)
            # steps: -010 -- 'not -8' names a number never written: say YAML read it as octal (number_notes).
            hint = octal_hint(loaded.plain_scalars.get(loc))
            line_col = loaded.mark(loc)
        elif kind in {"string_too_short", "string_too_long", "too_long"}:
            message, hint = length_problem(kind, err)
            line_col = loaded.mark(loc)
        else:
            message = err["msg"].removeprefix("Value error, ")
            hint = str(err.get("ctx", {}).get("hint", ""))  # a validator's own suggestion (framing_words)
            if kind in {"finite_number"}:
                message = "must be a finite number (not NaN or infinity)"
            line_col = loaded.mark(loc, key="[key]" in err["loc"])  # a bad mapping key: point at it
        line, col = line_col or (None, None)
        problems.append(Problem(message, _path_text(loc), line, col, hint))
    return _one_problem_per_misspelled_key(problems)


def _one_problem_per_misspelled_key(problems: list[Problem]) -> list[Problem]:
    """Without the 'missing required key' of a key misspelled beside it: 'projct: demo' is one typo, and the
    unknown key's "did you mean 'project'?" says how to fix both."""
    def parent(path: str) -> str:
        return path.rsplit(".", 1)[0] if "." in path else ""

    misspelled = {(parent(p.path), p.hint) for p in problems if p.message.startswith("unknown key '")}
    return [p for p in problems if not (
        p.message.startswith("missing required key '")
        and (parent(p.path), f"did you mean '{p.path.rsplit('.', 1)[-1]}'?") in misspelled)]


def partial_shotlist(data: dict[str, Any], exc: ValidationError, loaded: LoadedYaml) -> ShotList | None:
    """The document without what failed its types, for the checks that follow them; None when that is unsafe.

    A shot with a type error stands as None (skipped; indices, and so lines, stay); a character with one
    keeps its name (so placeholders naming it are not called unknown) but no files; a ``model``,
    ``defaults`` or ``provenance`` field with one falls back to its default. Not built (type errors only)
    when ``characters`` or ``defaults`` as a whole is unusable, where a check could report what is not wrong.
    """
    bad: dict[Any, set[Any]] = {}
    for error in exc.errors(include_url=False):
        loc = _clean_loc(tuple(error["loc"]), loaded)
        if not loc:
            return None  # the document as a whole
        bad.setdefault(loc[0], set()).add(loc[1] if len(loc) > 1 else None)
    if None in bad.get("characters", set()) or None in bad.get("defaults", set()):
        return None
    fields: dict[str, Any] = {}
    sections: dict[str, type[BaseModel]] = {"model": ModelSpec, "defaults": RenderParams, "provenance": ProvenanceSpec}
    for name, spec in sections.items():
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in bad.get(name, set())}
        try:
            fields[name] = spec.model_validate(value)
        except ValidationError:
            if name == "defaults":
                return None  # the shots' checks read the defaults (method, fusion window)
    characters: dict[str, Character] = {}
    for name, value in (data.get("characters") or {}).items():
        try:
            characters[name] = (Character.model_construct() if name in bad.get("characters", set())
                                else Character.model_validate(value))
        except ValidationError:
            characters[name] = Character.model_construct()
    shots: list[Shot | None] = []
    raw_shots = data.get("shots")
    for i, value in enumerate(raw_shots if isinstance(raw_shots, list) else []):
        try:
            shots.append(None if i in bad.get("shots", set()) else Shot.model_validate(value))
        except ValidationError:
            shots.append(None)
    return ShotList.model_construct(version=1, project="partial", characters=characters, shots=shots, **fields)
