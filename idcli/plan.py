"""From a validated shot list to a plan of content-keyed jobs. Pure: no torch, no files written.

A job is one shot x one take. Its key hashes everything that can change its pixels (see
``job_keys.key_material``) and nothing that cannot (output path, batch size), so a re-run skips exactly the
jobs whose inputs are unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from .expressions import ResolvedExpression, expression_prompt, key_record, scene_phrase, vocabulary_record
from .hashing import tagged_hash
from .job_keys import key_material
from .method import DEFAULT_METHOD, balanced_strength, framing_prefix, shot_fusion, with_framing
from .models import ModelIdentity
from .paths import absolute
from .presets import get_preset
from .render_request import PlateFaceRequest, PlateRequest, RenderRequest
from .shot_prompts import (
    cast_lines,
    character_descriptions,
    character_expression,
    join_phrase,
    others_expressions,
    own_words,
    resolve_prompt,
    resolve_prompt_spans,
    shot_characters,
    shot_expression,
)
from .shotlist import LoadedShotList, RenderParams, Shot
from .versions import JOB_KEY_TAG
from .yamlsafe import PathKey, path_text


class TakeFiles:
    """The files of one take in the output folder, named from its shot id and take, never from counters."""

    shot_id: str
    take: int

    @property
    def stem(self) -> str:
        return f"{self.shot_id}_t{self.take}"

    @property
    def image_relpath(self) -> str:
        return f"{self.shot_id}/{self.stem}.png"

    @property
    def sidecar_relpath(self) -> str:
        return f"{self.shot_id}/{self.stem}.json"

    @property
    def mask_relpath(self) -> str:
        return f"{self.shot_id}/{self.stem}.mask.png"


@dataclass(frozen=True)
class Job(TakeFiles):
    key: str
    shot_id: str
    take: int  # 1-based
    request: RenderRequest
    framing: str | None
    expression: Any  # recorded as given; acted on by the expression engine
    characters: tuple[str, ...]
    group: str  # batch group label, g1, g2, ... in order of first appearance
    key_material: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    subject: str | None = None  # the (first) character whose identity conditions the image
    identities: tuple[Any, ...] = field(default=(), compare=False, repr=False)  # CharacterIdentity per character
    # Per conditioning character, in line order: name, applied strength and expression record.
    cast: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)
    prompt_tokens: int | None = None  # the prompt's CLIP tokens (None: the model's tokenizer is not here)
    # A plate job's sidecar ``plate`` block (plates.plate_record, with the working size and start step).
    plate: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    # The shot's prompt as the shot list wrote it ({name} placeholders kept): the sidecar's ``shot_prompt``, so that a
    # later edit of these words is told from a prompt composed anew for a new expression, framing or cast.
    shot_prompt: str | None = field(default=None, compare=False, repr=False)
    # Each named character's description (shot_prompts.character_descriptions): the sidecar's ``descriptions``, so
    # that an edit of one is named as such, not as the prompt's.
    descriptions: dict[str, str | None] | None = field(default=None, compare=False, repr=False)

    @property
    def conditioning(self) -> tuple[str, ...]:
        """The characters whose identities condition the image (one, several, or none)."""
        if self.cast:
            return tuple(c["name"] for c in self.cast)
        return () if self.subject is None else (self.subject,)



@dataclass(frozen=True)
class BlockedJob(TakeFiles):
    """A take that cannot be planned: a character it names could not be turned into an identity."""

    shot_id: str
    take: int
    seed: int
    character: str
    problem: Any  # errors.Problem, with the character's (or its selfie's) line



@dataclass
class Plan:
    project: str
    source: str
    model: ModelIdentity
    jobs: list[Job]
    adapter: Any = None  # AdapterIdentity when some job is conditioned on an identity
    # Takes of shots naming a character that cannot be used (failures stay local: the rest render).
    blocked: list[BlockedJob] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)  # errors.Problem per such character
    warnings: list[str] = field(default_factory=list)  # said by ``plan`` and ``render`` (nothing is cut silently)

    @property
    def needs_adapter(self) -> bool:
        return any(j.request.identity_embedding is not None for j in self.jobs)

    def select(self, only: list[str] | None) -> Plan:
        """The plan restricted to some shot ids (``--only``); unknown ids are an input error."""
        if not only:
            return self
        from .errors import InputError
        from .option_words import Option
        from .suggest import did_you_mean

        known = {j.shot_id for j in self.jobs} | {b.shot_id for b in self.blocked}
        for shot_id in only:
            if is_pattern(shot_id):
                if not any(fnmatchcase(shot, shot_id) for shot in known):
                    raise InputError(Option("only", shot_id), f": no shot in {self.source} matches it",
                                     *_unmatched_hint(shot_id, known), field="only")
            elif shot_id not in known:
                close = did_you_mean(shot_id, known)
                hint: tuple[object, ...] = (f"; {close}",) if close else ()
                if "," in shot_id:  # ids hold no commas: a list was meant
                    hint = ("; one shot id each: ", Option("only", [s.strip() for s in shot_id.split(",")]))
                raise InputError(Option("only", shot_id), f": no such shot in {self.source}", *hint, field="only")
        wanted = set(selected_shots(only, sorted(known)))
        jobs = [j for j in self.jobs if j.shot_id in wanted]
        # As make_plan does: no identity adapter is loaded for a selection of text-only shots.
        selected = Plan(self.project, self.source, self.model, jobs, self.adapter,
                        [b for b in self.blocked if b.shot_id in wanted], self.problems, list(self.warnings))
        selected.adapter = self.adapter if selected.needs_adapter else None
        return selected


def is_pattern(only: str) -> bool:
    """Whether an ``--only`` value is a pattern (``sc01_*``, ``sh0?0``): a shot id holds none of ``*?[``."""
    return any(mark in only for mark in "*?[")


def _unmatched_hint(pattern: str, known: set[str]) -> tuple[object, ...]:
    """What an ``--only`` pattern matching no shot meant, as an id is told (hostile-read-31): a comma list, each
    value to give on its own (quoted as a shell needs it: ``sh0*`` unquoted is OUT's ``sh010/`` there), or the
    shots it matches in another case."""
    import shlex

    from .option_words import EachSurface, Option

    if "," in pattern:
        values = [value.strip() for value in pattern.split(",") if value.strip()]
        return ("; one shot id or pattern each: ",
                EachSurface(Option("only", values).as_python(), " ".join(f"--only {shlex.quote(v)}" for v in values)))
    other_case = sorted(shot for shot in known if fnmatchcase(shot.lower(), pattern.lower()))
    if other_case:
        shown = ", ".join(other_case[:3]) + (f", … ({len(other_case)} shots)" if len(other_case) > 3 else "")
        return (f"; a pattern is case-sensitive: it matches {shown} in another case",)
    return ()


def selected_shots(only: list[str], shots: list[str]) -> list[str]:
    """The shot ids of ``shots`` (in their order) that ``--only``'s values select: each id itself, each pattern the
    ids it matches (``fnmatch``, case-sensitive: ``sc01_*``). A film's selection said as a pattern or two, where one
    ``--only`` per shot made hundreds (night-counts-3, 2026-12-02)."""
    exact = {value for value in only if not is_pattern(value)}
    patterns = [value for value in only if is_pattern(value)]
    return [shot for shot in shots if shot in exact or any(fnmatchcase(shot, pattern) for pattern in patterns)]


def derived_seed(shot_id: str, take: int) -> int:
    """The seed of a take when the shot gives none: stable under edits to any other shot or field."""
    digest = hashlib.sha256(f"idcli-seed-v1:{shot_id}:{take}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def take_count(shot: Shot, defaults: RenderParams) -> int:
    """How many takes a shot renders: its seeds, else its takes, else the defaults' takes, else 1."""
    if shot.seeds is not None:
        return len(shot.seeds)
    return shot.takes or defaults.takes or 1


def _seeds(shot: Shot, takes: int) -> list[int]:
    given = list(shot.seeds or [])[:takes]
    # Takes past the given seeds (added by --retake-flagged) get derived seeds, as `takes:` would give them.
    return given + [derived_seed(shot.id, take) for take in range(len(given) + 1, takes + 1)]


def make_plan(loaded: LoadedShotList, model: ModelIdentity, identities: dict[str, Any] | None = None,
              adapter: Any = None, unusable: dict[str, Any] | None = None, measure: Any = None,
              takes: dict[str, int] | None = None, plates: dict[int, Any] | None = None) -> Plan:
    """Every job of the shot list, in shot order, with keys and batch groups.

    ``identities`` (character name -> CharacterIdentity) and ``adapter`` (AdapterIdentity) turn on
    identity conditioning; without them every job is text-only. ``unusable`` (character name ->
    Problem): characters whose identity could not be made; the takes of shots naming one are
    ``blocked``, not planned (a shot without a usable identity must not render as text-only).
    ``measure`` (a ``prompt_tokens.PromptMeasure`` of the model's tokenizer) counts each prompt's tokens
    and CLIP windows; without it counts are unknown and every job is taken to fit one window (the engine
    still encodes every prompt in full, and never batches jobs of different window counts).
    ``takes`` (shot id -> count) raises the take count of some shots (``--retake-flagged``); it never
    lowers one. ``plates`` (shot index -> ``plates.PlateShot``, from ``plates.plate_shots``): the plate
    shots' plates and faces; a plate shot's jobs are plate jobs (docs/plates.md).
    """
    unusable = unusable or {}
    blocked: list[BlockedJob] = []
    doc = loaded.shotlist
    preset = get_preset(model.preset)
    defaults = doc.defaults
    groups: dict[tuple[Any, ...], str] = {}
    jobs: list[Job] = []
    warnings: list[str] = []
    for index, shot in enumerate(doc.shots):
        def pick(name: str, fallback: Any, shot: Shot = shot) -> Any:
            value = getattr(shot, name)
            if value is None:
                value = getattr(defaults, name)
            return fallback if value is None else value

        width, height = pick("size", preset.size)
        shot_takes = max(take_count(shot, defaults), (takes or {}).get(shot.id, 0))
        framing = pick("framing", None)
        characters = shot_characters(shot)
        failed = next((c for c in characters if c in unusable), None)
        if failed is not None:
            blocked.extend(BlockedJob(shot.id, take, seed, failed, unusable[failed])
                           for take, seed in enumerate(_seeds(shot, shot_takes), start=1))
            continue
        known = [identities[c] for c in characters if identities and c in identities]
        cast = _cast(shot, characters, identities if adapter is not None else None)
        if plates and index in plates:
            # A plate shot: each named character's face re-generated into an existing frame (docs/plates.md).
            jobs.extend(_plate_jobs(index, plates[index], loaded, model, adapter, cast, known, groups, framing,
                                    min(width, height), shot_takes, pick, measure, warnings))
            continue
        if len(characters) > 1 and cast and pick("method", DEFAULT_METHOD) == "dual-line":
            # Several characters: one identity line each (docs/method.md, "Several characters").
            jobs.extend(_multi_character_jobs(shot, loaded, model, adapter, cast, known, groups, framing,
                                              width, height, shot_takes, pick, measure, warnings))
            continue
        subject = characters[0] if characters else None
        condition = identities.get(subject) if identities and subject and adapter is not None else None
        if condition is not None and condition.strength <= 0:
            condition = None  # strength 0 is text-only, exactly
        expression = character_expression(shot, subject)
        strength = 0.0
        if condition is not None:
            strength = balanced_strength(condition.strength, shot.identity_strength,
                                         key_record(expression)["intensity"] if expression else 0.0)
            if strength <= 0:
                condition = None
        base, spans = resolve_prompt_spans(shot.prompt, loaded, subject)
        # The framing phrase goes first, the expression last. The identity line (and single and text
        # renders) get the expression's facial detail; the semantic line only its name, enough for the
        # scene and the body to read it. The other characters named (method single, a text-only shot) are
        # there through their descriptions, and so are their own expressions.
        # Both lines decide on the shot's own words, so they agree and the spans shift by the same amount.
        others = others_expressions(shot, loaded, subject, expression)
        own = own_words(shot.prompt)
        prompt = with_framing(join_phrase(join_phrase(base, expression_prompt(expression) if expression else ""),
                                          others), framing, own)
        semantic = with_framing(join_phrase(join_phrase(base, scene_phrase(expression) if expression else ""),
                                            others), framing, own)
        shift = len(framing_prefix(framing, own))
        spans = tuple((start + shift, end + shift) for start, end in spans)
        negative = resolve_prompt(pick("negative_prompt", ""), loaded)
        method = "text" if condition is None else pick("method", DEFAULT_METHOD)
        fusion = shot_fusion(shot, defaults) if condition is not None else None
        guidance = float(pick("guidance", preset.guidance))
        prompt_tokens, windows = _measure_texts(measure, prompt, negative if guidance > 1.0 else "",
                                                semantic if method == "dual-line" else None)
        if measure is not None and method == "dual-line" and spans and not any(
                measure.tokens(semantic[:end]) > measure.tokens(semantic[:start]) for start, end in spans):
            warnings.append(_no_token_warning(loaded, shot, subject or "", "the"))
        for take, seed in enumerate(_seeds(shot, shot_takes), start=1):
            request = RenderRequest(prompt=prompt, negative_prompt=negative, seed=seed, width=width,
                                    height=height, steps=pick("steps", preset.steps),
                                    guidance=guidance, text_windows=windows,
                                    sampler=pick("sampler", preset.sampler),
                                    identity_embedding=None if condition is None else condition.embedding,
                                    identity_strength=0.0 if condition is None else strength,
                                    method=method, fusion=fusion,
                                    semantic_prompt=semantic if method == "dual-line" else None,
                                    subject_spans=spans if method == "dual-line" else (),
                                    identity_references=None if condition is None else condition.references,
                                    identity_clip=None if condition is None else condition.clip,
                                    subject=(subject or "") if condition is not None else "")  # conditioned: a subject
            material = key_material(model, request, condition, adapter, expression)
            signature = request.batch_signature()
            group = groups.setdefault(signature, f"g{len(groups) + 1}")
            jobs.append(Job(key=tagged_hash(JOB_KEY_TAG, material), shot_id=shot.id, take=take, request=request,
                            framing=framing, characters=characters,
                            expression=None if expression is None else {
                                **expression.as_record(),
                                "given": _plain((shot.expressions or {}).get(subject or "") or shot.expression),
                                "vocabulary": vocabulary_record()},
                            group=group, key_material=material, subject=None if condition is None else subject,
                            identities=tuple(known), prompt_tokens=prompt_tokens, shot_prompt=shot.prompt,
                            descriptions=character_descriptions(loaded, characters)))
    plan = Plan(doc.project, loaded.source, model, jobs, blocked=blocked,
                problems=[unusable[name] for name in sorted(unusable)], warnings=warnings)
    plan.adapter = adapter if plan.needs_adapter else None
    return plan


def _cast(shot: Shot, characters: tuple[str, ...], identities: dict[str, Any] | None
          ) -> list[tuple[Any, float, ResolvedExpression | None]]:
    """The characters that condition a shot: (identity, balanced strength, expression), strength > 0."""
    cast = []
    for name in characters:
        identity = identities.get(name) if identities else None
        if identity is None or identity.strength <= 0:
            continue
        expression = character_expression(shot, name)
        strength = balanced_strength(identity.strength, shot.identity_strength,
                                     key_record(expression)["intensity"] if expression else 0.0)
        if strength > 0:
            cast.append((identity, strength, expression))
    return cast


def _multi_character_jobs(shot: Shot, loaded: LoadedShotList, model: ModelIdentity, adapter: Any,
                          cast: list[tuple[Any, float, ResolvedExpression | None]], known: list[Any],
                          groups: dict[tuple[Any, ...], str], framing: str | None, width: int, height: int,
                          takes: int, pick: Any, measure: Any = None, warnings: list[str] | None = None) -> list[Job]:
    """The jobs of a dual-line shot naming several characters: a semantic line and one identity line
    per conditioning character (its description and expression; the others named plainly)."""
    semantic, lines = cast_lines(shot, loaded, cast, framing)
    first = lines[0]
    negative = resolve_prompt(pick("negative_prompt", ""), loaded)
    fusion = shot_fusion(shot, loaded.shotlist.defaults)
    guidance = float(pick("guidance", get_preset(model.preset).guidance))
    # The job's windows are those of its longest text: every identity line's prompt is one of its rows.
    prompt_tokens, windows = _measure_texts(measure, semantic, negative if guidance > 1.0 else "", semantic,
                                            [line.prompt for line in lines])
    for line in lines:
        if measure is not None and warnings is not None and not any(
                measure.tokens(semantic[:end]) > measure.tokens(semantic[:start]) for start, end in line.spans):
            warnings.append(_no_token_warning(loaded, shot, line.name, "its"))
    # Keyed and recorded only while a character takes it: a take left done when it changes must not name it.
    shot_level = _keyed_shot_expression(shot, shot_expression(shot))
    records = tuple({"name": identity.name, "strength": strength,
                     "expression": None if e is None else e.as_record()} for identity, strength, e in cast)
    jobs = []
    for take, seed in enumerate(_seeds(shot, takes), start=1):
        request = RenderRequest(prompt=semantic, negative_prompt=negative, seed=seed, width=width, height=height,
                                steps=pick("steps", get_preset(model.preset).steps),
                                guidance=guidance, text_windows=windows,
                                sampler=pick("sampler", get_preset(model.preset).sampler),
                                identity_embedding=first.embedding, identity_strength=first.strength,
                                method="dual-line", fusion=fusion, semantic_prompt=semantic,
                                identity_references=first.references, identity_clip=first.clip,
                                lines=tuple(lines), subject=first.name)
        material = key_material(model, request, cast[0][0], adapter, shot_level,
                                cast=[(identity, e) for identity, _s, e in cast])
        group = groups.setdefault(request.batch_signature(), f"g{len(groups) + 1}")
        jobs.append(Job(key=tagged_hash(JOB_KEY_TAG, material), shot_id=shot.id, take=take, request=request,
                        framing=framing, characters=shot_characters(shot),
                        expression=None if shot_level is None else {
                            **shot_level.as_record(), "given": _plain(shot.expression),
                            "vocabulary": vocabulary_record()},
                        group=group, key_material=material, subject=first.name, identities=tuple(known),
                        cast=records, prompt_tokens=prompt_tokens, shot_prompt=shot.prompt,
                        descriptions=character_descriptions(loaded, shot_characters(shot))))
    return jobs


def _plate_jobs(index: int, plate: Any, loaded: LoadedShotList, model: ModelIdentity, adapter: Any,
                cast: list[tuple[Any, float, ResolvedExpression | None]], known: list[Any],
                groups: dict[tuple[Any, ...], str], framing: str | None, side: int, takes: int, pick: Any,
                measure: Any = None, warnings: list[str] | None = None) -> list[Job]:
    """The jobs of a plate shot: each face's crop re-generated at ``side`` x ``side`` (the shot's shorter
    side) with its character's identity line, the semantic line being the shot prompt, which describes
    the plate. ``index``: the shot's place in the shot list; ``plate``: its ``plates.PlateShot`` (faces in the
    prompt's order). 'method' on a plate shot is said by shotlist_checks.plate_method_notes."""
    from .plates import plate_key_material, plate_record

    shot = loaded.shotlist.shots[index]
    faces = [face.character for face in plate.faces]
    if [identity.name for identity, _s, _e in cast] != faces:
        # plates.plate_shots refuses identity strength 0; here only a caller that passed no identities.
        missing = sorted(set(faces) - {identity.name for identity, _s, _e in cast})
        raise ValueError(f"shot {shot.id}: the plate faces of {', '.join(missing)} have no identity to take")
    semantic, lines = cast_lines(shot, loaded, cast, framing)
    first = lines[0]
    negative = resolve_prompt(pick("negative_prompt", ""), loaded)
    preset = get_preset(model.preset)
    guidance = float(pick("guidance", preset.guidance))
    steps = pick("steps", preset.steps)
    prompt_tokens, windows = _measure_texts(measure, semantic, negative if guidance > 1.0 else "", semantic,
                                            [line.prompt for line in lines])
    from .engine.plates import crop_box, start_index

    request_plate = PlateRequest(plate.plate.pixels, plate.plate.sha256,
                                 tuple(PlateFaceRequest(face.character, tuple(face.box),
                                                        crop_box(face.box, plate.plate.size))
                                       for face in plate.faces), plate.strength, plate.plate.icc_profile)
    if warnings is not None:
        def face_field(k: int) -> PathKey:
            """Where face ``k`` is chosen: its entry of plate_faces, else the plate its face was found in."""
            given = shot.plate_faces is not None and k < len(shot.plate_faces)
            return ("shots", index, "plate_faces", k) if given else ("shots", index, "plate")

        for k, face in enumerate(request_plate.faces):
            (x, y, w, h), (cx, cy, side_px, _) = face.box, face.crop_box
            # Only the part of the box inside the plate: a face cut by the frame's edge (a detected box may
            # reach past it) fits when its part in the plate does, and its mask reaches the plate's edge.
            pw, ph = request_plate.size
            if max(x, 0) < cx or max(y, 0) < cy or min(x + w, pw) > cx + side_px or min(y + h, ph) > cy + side_px:
                # The crop is square and inside the plate: a face box wider than the plate's shorter side
                # cannot fit, and only its part inside the crop is re-generated.
                warnings.append(_warning(loaded, face_field(k), f"the face box [{x}, {y}, {w}, {h}] of "
                                         f"'{face.character}' does not fit in its {side_px}x{side_px} crop (the "
                                         "plate's shorter side); only the part inside the crop is re-generated"))
        if plate.plate.profile_not_carried:  # plate_files.MAX_CARRIED_PROFILE
            warnings.append(_warning(
                loaded, ("shots", index, "plate"), f"the plate's colour profile ({plate.plate.profile_not_carried:,} "
                "bytes) is too large for the image's PNG to carry readably (Pillow refuses one over 1 MiB), so the "
                "image carries none and shows the plate's values as sRGB",
                "convert the plate to sRGB first (magick plate.jpg -profile sRGB.icc plate_srgb.png), or embed a "
                "smaller profile of its colour space"))
        from .small_plate_faces import small_face_words

        for k, plate_face in enumerate(plate.faces):  # a box given too small for QA's face detector to find it
            if (small := small_face_words(plate_face, plate.plate.size)) is not None:
                warnings.append(_warning(loaded, face_field(k), *small))
        from .plates import overlap_words, overlapping_faces

        requested = request_plate.faces
        for i, j in overlapping_faces([(face.box, face.crop_box) for face in requested], plate.plate.size):
            # Said at the face laid over the other: the later one in plate_faces order (validate notes it so too).
            warnings.append(_warning(loaded, face_field(j), *overlap_words(plate.faces[i], plate.faces[j])))
    # Keyed and recorded only while a character takes it: a take left done when it changes must not name it.
    shot_level = _keyed_shot_expression(shot, shot_expression(shot))
    records = tuple({"name": identity.name, "strength": strength,
                     "expression": None if e is None else e.as_record()} for identity, strength, e in cast)
    if shot.plate is None:  # plates.plate_shots gave this shot its plate from shot.plate
        raise ValueError(f"shot {shot.id}: a plate job without a plate")
    record = plate_record(plate, shot.plate, {r["name"]: r["expression"] for r in records})
    # abs_path: the file as resolved when planned (as selfie_files records selfies), so idcli reproduce finds it.
    record.update({"abs_path": str(absolute(plate.plate.path)), "working_size": side,
                   "start_step": start_index(steps, plate.strength)})
    jobs = []
    for take, seed in enumerate(_seeds(shot, takes), start=1):
        request = RenderRequest(prompt=semantic, negative_prompt=negative, seed=seed, width=side, height=side,
                                steps=steps, guidance=guidance, text_windows=windows,
                                sampler=pick("sampler", preset.sampler),
                                identity_embedding=first.embedding, identity_strength=first.strength,
                                method="plate", fusion=shot_fusion(shot, loaded.shotlist.defaults),
                                semantic_prompt=semantic, identity_references=first.references,
                                identity_clip=first.clip, lines=tuple(lines), subject=first.name,
                                plate=request_plate)
        # The text-to-image key's material, unchanged, plus what the plate adds (idcli/plates.py).
        material = {**key_material(model, request, cast[0][0], adapter, shot_level,
                                   cast=[(identity, e) for identity, _s, e in cast]),
                    **plate_key_material(plate)}
        group = groups.setdefault(request.batch_signature(), f"g{len(groups) + 1}")
        jobs.append(Job(key=tagged_hash(JOB_KEY_TAG, material), shot_id=shot.id, take=take, request=request,
                        framing=framing, characters=shot_characters(shot),
                        expression=None if shot_level is None else {
                            **shot_level.as_record(), "given": _plain(shot.expression),
                            "vocabulary": vocabulary_record()},
                        group=group, key_material=material, subject=first.name, identities=tuple(known),
                        cast=records, prompt_tokens=prompt_tokens, plate=record,
                        shot_prompt=shot.prompt, descriptions=character_descriptions(loaded, shot_characters(shot))))
    return jobs


def _keyed_shot_expression(shot: Shot, shot_level: ResolvedExpression | None) -> ResolvedExpression | None:
    """The shot's own expression as a group or plate shot's key and record name it: only while a character takes it.

    Each character's expression is keyed with its line (key_material's ``cast``) and its words are in the prompts, so
    one that every character overrides in ``expressions`` reaches no pixel; keyed, it made the takes stale for nothing
    (before 2026-12-02). Where a character takes it the key is as it always was."""
    own = shot.expressions or {}
    return shot_level if any(own.get(name) is None for name in shot_characters(shot)) else None


def _warning(loaded: LoadedShotList, path: PathKey, message: str, hint: str = "") -> str:
    """A plan warning as validate's notes are said: the shot list's file, the line of the field, the field."""
    from .errors import Problem

    line, column = loaded.position(path)
    return Problem(message, path_text(path), line, column, hint).format(str(loaded.source))


def _no_token_warning(loaded: LoadedShotList, shot: Shot, name: str, line_word: str) -> str:
    """A character of a dual-line shot whose phrase makes no CLIP token. Only a description can do that (without one
    the name itself stands in, shot_prompts.resolve_prompt_spans): said at the description's line."""
    return _warning(loaded, ("characters", name, "description"),
                    f"the description of '{name}' makes no CLIP token, so in shot '{shot.id}' the fusion mask cannot "
                    f"find the character and {line_word} identity line is never applied",
                    f"write words that describe '{name}'")


def _measure_texts(measure: Any, prompt: str, negative: str, semantic: str | None,
                   more: list[str] | None = None) -> tuple[int | None, int]:
    """The prompt's token count and the CLIP windows of the job's longest text (1 when unknown);
    ``more``: further texts of its rows (several characters' identity lines)."""
    if measure is None:
        return None, 1
    texts = [prompt, negative] + ([semantic] if semantic is not None else []) + (more or [])
    return measure.tokens(prompt), measure.windows(*texts)


def _plain(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
