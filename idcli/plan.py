"""From a validated shot list to a plan of content-keyed jobs. Pure: no torch, no files written.

A job is one shot x one take. Its key hashes everything that can change its pixels (see
``key_material``) and nothing that cannot (output path, batch size), so a re-run skips exactly the
jobs whose inputs are unchanged.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .expressions import ResolvedExpression, expression_prompt, key_record, scene_phrase, vocabulary_record
from .expressions import resolve as resolve_expression
from .hashing import tagged_hash
from .method import (
    DEFAULT_METHOD,
    MAX_PREPENDED_REFERENCES,
    FusionParams,
    balanced_strength,
    framing_prefix,
    key_params,
    shot_fusion,
    with_framing,
)
from .models import ModelIdentity
from .presets import get_preset
from .shotlist import LoadedShotList, RenderParams, Shot
from .versions import ENGINE_ALGORITHM, JOB_KEY_TAG


@dataclass(frozen=True)
class IdentityLine:
    """One character's identity line in a dual-line image: its prompt, identity and where it sits.

    ``spans`` are the character offsets of the character's phrase in the job's *semantic* prompt,
    from which the engine takes that character's attention and so its mask.
    """

    name: str
    prompt: str
    strength: float
    spans: tuple[tuple[int, int], ...]
    embedding: Any = field(compare=False, repr=False)  # numpy (512,)
    references: Any = field(default=None, compare=False, repr=False)  # numpy (k, 512) for 'prepend'
    # FaceID-Plus v2: CLIP rows (aggregate, then each kept selfie's), numpy (1 + k, tokens, hidden); else None.
    clip: Any = field(default=None, compare=False, repr=False)

    def rows(self, count: int) -> Any:
        """The ``count`` embeddings its identity tokens are made from: the aggregate, then references."""
        import numpy as np

        rows = [np.asarray(self.embedding, np.float32)[None]]
        if count > 1:
            rows.append(np.asarray(self.references, np.float32)[:count - 1])
        return np.concatenate(rows)

    def clip_rows(self, count: int) -> Any:
        """The CLIP features paired with ``rows(count)``, row for row (FaceID-Plus v2)."""
        import numpy as np

        return np.asarray(self.clip, np.float32)[:count]


@dataclass(frozen=True)
class PlateFaceRequest:
    """One face of a plate job: the identity line (by character name) it takes, and where it sits."""

    character: str  # the name of one of the request's identity lines (``identity_lines()``)
    box: tuple[int, int, int, int]  # the face box, x, y, w, h in plate pixels
    crop_box: tuple[int, int, int, int]  # the square worked at the model's size (engine/plates.crop_box)


@dataclass(frozen=True)
class PlateRequest:
    """A plate job's plate (docs/plates.md): the engine re-generates each face's crop image-to-image at the
    request's working size (``width`` x ``height``, square) and composites it back into these pixels."""

    pixels: Any = field(compare=False, repr=False)  # numpy uint8 (h, w, 3|4), upright, as read from the file
    sha256: str
    faces: tuple[PlateFaceRequest, ...]
    strength: float  # the fraction of the schedule re-run on each face (engine/plates.start_index)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in plate pixels: the output image's size."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


@dataclass(frozen=True)
class RenderRequest:
    """What the engine needs for one image. Requests in one batch share their ``batch_signature``;
    the identity (embedding and strength) is per image, so one batch can hold several characters."""

    prompt: str
    negative_prompt: str
    seed: int
    width: int
    height: int
    steps: int
    guidance: float
    sampler: str
    identity_embedding: Any = field(default=None, compare=False, repr=False)  # numpy (512,) or None
    identity_strength: float = 0.0
    # How the identity is applied: "text" (none), "single" or "dual-line" (docs/method.md).
    method: str = "text"
    fusion: FusionParams | None = None  # dual-line's parameters (aggregation for single too)
    # The semantic line's prompt (dual-line) and where the conditioning character's phrase sits in it,
    # as character offsets: the engine turns them into token positions for the fusion mask.
    semantic_prompt: str | None = None
    subject_spans: tuple[tuple[int, int], ...] = ()
    identity_references: Any = field(default=None, compare=False, repr=False)  # numpy (k, 512) for 'prepend'
    # Several characters (dual-line): one identity line per conditioning character, in order of first
    # appearance; the fields above then hold the first one's identity. Empty: one character, described
    # by the fields above alone (the one-character arithmetic, unchanged).
    lines: tuple[IdentityLine, ...] = ()
    subject: str = ""  # the conditioning character's name (one character)
    # CLIP windows of 77 tokens each UNet row of this job gets (its longest text's; idcli/prompt_tokens.py).
    # All rows of one forward share a sequence length, and padding a row with windows changes its image,
    # so jobs batch only with jobs of the same count.
    text_windows: int = 1
    # A plate job (docs/plates.md): the faces of ``plate`` are re-generated at the working size, one crop per
    # face, each with its character's identity line and the face mask as that line's fusion mask; the
    # image returned is the plate, at the plate's size. None: text-to-image.
    plate: PlateRequest | None = None
    # FaceID-Plus v2: the identity's CLIP rows (the aggregate, then each kept selfie's), numpy
    # (1 + k, tokens, hidden), paired row for row with ``identity_rows()``. None for FaceID and text jobs.
    identity_clip: Any = field(default=None, compare=False, repr=False)

    def identity_lines(self) -> tuple[IdentityLine, ...]:
        """The identity lines of a dual-line image: one per conditioning character."""
        if self.lines:
            return self.lines
        if self.identity_embedding is None:
            return ()
        return (IdentityLine(self.subject, self.prompt, self.identity_strength, self.subject_spans,
                             self.identity_embedding, self.identity_references, self.identity_clip),)

    def identity_clip_rows(self) -> Any:
        """The CLIP features paired with ``identity_rows()`` (FaceID-Plus v2), or None."""
        import numpy as np

        if self.identity_clip is None or self.identity_embedding is None:
            return None
        return np.asarray(self.identity_clip, np.float32)[:len(self.identity_rows())]

    def identity_rows(self) -> Any:
        """The embeddings the identity tokens are made from: (n, 512), or None without an identity."""
        import numpy as np

        if self.identity_embedding is None:
            return None
        rows = [np.asarray(self.identity_embedding, np.float32)[None]]
        if self.fusion is not None and self.fusion.aggregation == "prepend" and self.identity_references is not None:
            rows.append(np.asarray(self.identity_references, np.float32)[:MAX_PREPENDED_REFERENCES])
        return np.concatenate(rows)

    def identity_count(self) -> int:
        """How many embeddings make this image's identity tokens (rows of one batch must agree)."""
        # Counted, not built: this runs for every job when planning and every request when batching.
        if (self.identity_embedding is None or self.fusion is None or self.fusion.aggregation != "prepend"
                or self.identity_references is None):
            return 1
        if self.lines:
            # Every line of one image runs in the same forward, so all take as many references as the
            # character with the fewest has.
            return 1 + min(min(len(line.references), MAX_PREPENDED_REFERENCES) for line in self.lines)
        return 1 + min(len(self.identity_references), MAX_PREPENDED_REFERENCES)

    def batch_signature(self) -> tuple[Any, ...]:
        signature = (self.width, self.height, self.steps, self.guidance, self.sampler, self.identity_count(),
                     self.text_windows)
        if self.plate is None:
            return signature  # text-to-image signatures are unchanged by plates existing
        from .engine.plates import start_index

        # Plate crops start at the schedule step their strength gives: crops batch with crops that share it.
        return (*signature, "plate", start_index(self.steps, self.plate.strength))


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
        from .suggest import did_you_mean

        known = {j.shot_id for j in self.jobs} | {b.shot_id for b in self.blocked}
        for shot_id in only:
            if shot_id not in known:
                hint = did_you_mean(shot_id, known)
                if "," in shot_id:  # ids hold no commas: a list was meant
                    hint = "one shot id per --only: " + " ".join(f"--only {s.strip()}" for s in shot_id.split(","))
                raise InputError(f"--only {shot_id}: no such shot in {self.source}" + (f"; {hint}" if hint else ""))
        wanted = set(only)
        jobs = [j for j in self.jobs if j.shot_id in wanted]
        # As make_plan does: no identity adapter is loaded for a selection of text-only shots.
        selected = Plan(self.project, self.source, self.model, jobs, self.adapter,
                        [b for b in self.blocked if b.shot_id in wanted], self.problems, list(self.warnings))
        selected.adapter = self.adapter if selected.needs_adapter else None
        return selected


def derived_seed(shot_id: str, take: int) -> int:
    """The seed of a take when the shot gives none: stable under edits to any other shot or field."""
    digest = hashlib.sha256(f"idcli-seed-v1:{shot_id}:{take}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def resolve_prompt(template: str, loaded: LoadedShotList) -> str:
    """Placeholders replaced by each character's description (its name when it has none).

    A plain substitution, not ``str.format``: format specs and attribute access never run, whatever
    the text holds (validation has already refused any placeholder that names no character).
    """
    return resolve_prompt_spans(template, loaded, None)[0]


def resolve_prompt_spans(template: str, loaded: LoadedShotList, subject: str | None
                         ) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The resolved prompt and the character offsets of each substitution of ``subject``.

    Parsed with the grammar validation checked (``string.Formatter().parse``: ``{{``/``}}`` are literal
    braces, every field a character name), but substituted by hand: nothing of ``format`` runs.
    """
    names = {name: (c.description or name) for name, c in loaded.shotlist.characters.items()}
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    for literal, field_name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        length += len(literal)
        if field_name is None:
            continue
        text = names.get(field_name, f"{{{field_name}}}")
        if subject is not None and field_name == subject:
            spans.append((length, length + len(text)))
        out.append(text)
        length += len(text)
    return "".join(out), tuple(spans)


def take_count(shot: Shot, defaults: RenderParams) -> int:
    """How many takes a shot renders: its seeds, else its takes, else the defaults' takes, else 1."""
    if shot.seeds is not None:
        return len(shot.seeds)
    return shot.takes or defaults.takes or 1


def _seeds(shot: Shot, takes: int) -> list[int]:
    given = list(shot.seeds or [])[:takes]
    # Takes past the given seeds (added by --retake-flagged) get derived seeds, as `takes:` would give them.
    return given + [derived_seed(shot.id, take) for take in range(len(given) + 1, takes + 1)]


def own_words(template: str) -> str:
    """A shot prompt's own words, without what its placeholders stand for: whether it already says its framing
    is decided on these, so a description ('in a full-body wetsuit') never stands in for the framing."""
    # A placeholder becomes a break that no framing pattern spans; '{{' and '}}' are their literal braces.
    return "".join(literal + (" ; " if field is not None else "")
                   for literal, field, _spec, _conversion in string.Formatter().parse(template))


def shot_characters(shot: Shot) -> tuple[str, ...]:
    """Characters a shot names, in order of first appearance; the first one conditions the image."""
    from .shotlist import placeholders

    return tuple(dict.fromkeys(placeholders(shot.prompt)))


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
    takes_override = takes
    for index, shot in enumerate(doc.shots):
        def pick(name: str, fallback: Any, shot: Shot = shot) -> Any:
            value = getattr(shot, name)
            if value is None:
                value = getattr(defaults, name)
            return fallback if value is None else value

        width, height = pick("size", preset.size)
        takes = max(take_count(shot, defaults), (takes_override or {}).get(shot.id, 0))
        framing = pick("framing", None)
        characters = shot_characters(shot)
        failed = next((c for c in characters if c in unusable), None)
        if failed is not None:
            blocked.extend(BlockedJob(shot.id, take, seed, failed, unusable[failed])
                           for take, seed in enumerate(_seeds(shot, takes), start=1))
            continue
        known = [identities[c] for c in characters if identities and c in identities]
        cast = _cast(shot, characters, identities if adapter is not None else None)
        if plates and index in plates:
            # A plate shot: each named character's face re-generated into an existing frame (docs/plates.md).
            jobs.extend(_plate_jobs(shot, plates[index], loaded, model, adapter, cast, known, groups, framing,
                                    min(width, height), takes, pick, measure, warnings))
            continue
        if len(characters) > 1 and cast and pick("method", DEFAULT_METHOD) == "dual-line":
            # Several characters: one identity line each (docs/method.md, "Several characters").
            jobs.extend(_multi_character_jobs(shot, loaded, model, adapter, cast, known, groups, framing,
                                              width, height, takes, pick, measure, warnings))
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
        others = _others_expressions(shot, loaded, subject, expression)
        own = own_words(shot.prompt)
        prompt = with_framing(_join(_join(base, expression_prompt(expression) if expression else ""), others),
                              framing, own)
        semantic = with_framing(_join(_join(base, scene_phrase(expression) if expression else ""), others),
                                framing, own)
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
            warnings.append(f"shot {shot.id}: '{{{subject}}}' makes no CLIP token, so the fusion mask cannot "
                            "find the character and the identity line is never applied; give it a description")
        for take, seed in enumerate(_seeds(shot, takes), start=1):
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
                                    subject=subject if condition is not None else "")
            material = key_material(model, request, condition, adapter, expression)
            signature = request.batch_signature()
            group = groups.setdefault(signature, f"g{len(groups) + 1}")
            jobs.append(Job(key=tagged_hash(JOB_KEY_TAG, material), shot_id=shot.id, take=take, request=request,
                            framing=framing, characters=characters,
                            expression=None if expression is None else {
                                **expression.as_record(),
                                "given": _plain((shot.expressions or {}).get(subject) or shot.expression),
                                "vocabulary": vocabulary_record()},
                            group=group, key_material=material, subject=None if condition is None else subject,
                            identities=tuple(known), prompt_tokens=prompt_tokens))
    plan = Plan(doc.project, loaded.source, model, jobs, blocked=blocked,
                problems=[unusable[name] for name in sorted(unusable)], warnings=warnings)
    plan.adapter = adapter if plan.needs_adapter else None
    return plan


# How a character's identity line names the other characters of the shot: plainly, so that the line is
# focused on its own character's description and expression (docs/method.md, "Several characters").
OTHER_PERSON = "another person"


def character_expression(shot: Shot, name: str | None) -> ResolvedExpression | None:
    """A character's expression in a shot: its own entry in ``expressions``, else the shot's ``expression``."""
    own = (shot.expressions or {}).get(name) if name is not None else None
    if own is None:
        return shot_expression(shot)
    label = own if isinstance(own, str) else own.label
    return resolve_expression(label, None if isinstance(own, str) else own.intensity)


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


def _focused_prompt(template: str, loaded: LoadedShotList, focus: str) -> str:
    """The prompt with ``focus`` described and every other character named plainly."""
    described = loaded.shotlist.characters[focus].description or focus
    out: list[str] = []
    for literal, field_name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if field_name is not None:
            out.append(described if field_name == focus else OTHER_PERSON)
    return "".join(out)


def _cast_lines(shot: Shot, loaded: LoadedShotList, cast: list[tuple[Any, float, ResolvedExpression | None]],
                framing: str | None) -> tuple[str, list[IdentityLine]]:
    """A shot's semantic prompt and one identity line per conditioning character (its description and
    expression; the others named plainly): several-character dual-line jobs and plate jobs alike."""
    base = resolve_prompt(shot.prompt, loaded)
    descriptions = {name: (c.description or name) for name, c in loaded.shotlist.characters.items()}
    # The semantic line reads each character's expression by name of its description, without the
    # facial detail (as for one character); that prompt is also the image's prompt of record.
    # One phrase for all when every character shares it (CLIP reads 77 tokens: repeat nothing needlessly).
    # A named character without an identity line (strength 0) is in the image through its description:
    # its expression, when it has one, is read here too.
    conditioning = {identity.name: e for identity, _s, e in cast}
    named = [(name, conditioning[name] if name in conditioning else character_expression(shot, name))
             for name in shot_characters(shot)]
    scene = [(name, scene_phrase(e) if e is not None else "") for name, e in named
             if name in conditioning or e is not None]
    phrases = [scene[0][1]] if len({phrase for _n, phrase in scene}) == 1 else [
        f"{descriptions[name]}: {phrase}" for name, phrase in scene if phrase]
    # Every line decides on the shot's own words whether to add the framing phrase, so all agree.
    own = own_words(shot.prompt)
    semantic = with_framing(_join(base, ", ".join(p for p in phrases if p)), framing, own)
    shift = len(framing_prefix(framing, own))
    lines = []
    for identity, strength, expression in cast:
        spans = resolve_prompt_spans(shot.prompt, loaded, identity.name)[1]
        focused = _focused_prompt(shot.prompt, loaded, identity.name)
        prompt = with_framing(_join(focused, expression_prompt(expression) if expression else ""), framing, own)
        lines.append(IdentityLine(identity.name, prompt, strength,
                                  tuple((start + shift, end + shift) for start, end in spans),
                                  identity.embedding, identity.references, identity.clip))
    return semantic, lines


def _multi_character_jobs(shot: Shot, loaded: LoadedShotList, model: ModelIdentity, adapter: Any,
                          cast: list[tuple[Any, float, ResolvedExpression | None]], known: list[Any],
                          groups: dict[tuple[Any, ...], str], framing: str | None, width: int, height: int,
                          takes: int, pick: Any, measure: Any = None, warnings: list[str] | None = None) -> list[Job]:
    """The jobs of a dual-line shot naming several characters: a semantic line and one identity line
    per conditioning character (its description and expression; the others named plainly)."""
    semantic, lines = _cast_lines(shot, loaded, cast, framing)
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
            warnings.append(f"shot {shot.id}: '{{{line.name}}}' makes no CLIP token, so the fusion mask cannot "
                            "find the character and its identity line is never applied; give it a description")
    shot_level = shot_expression(shot)
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
                        cast=records, prompt_tokens=prompt_tokens))
    return jobs


def _plate_jobs(shot: Shot, plate: Any, loaded: LoadedShotList, model: ModelIdentity, adapter: Any,
                cast: list[tuple[Any, float, ResolvedExpression | None]], known: list[Any],
                groups: dict[tuple[Any, ...], str], framing: str | None, side: int, takes: int, pick: Any,
                measure: Any = None, warnings: list[str] | None = None) -> list[Job]:
    """The jobs of a plate shot: each face's crop re-generated at ``side`` x ``side`` (the shot's shorter
    side) with its character's identity line, the semantic line being the shot prompt, which describes
    the plate. ``plate``: the shot's ``plates.PlateShot`` (faces in the prompt's order)."""
    from .plates import plate_key_material, plate_record

    faces = [face.character for face in plate.faces]
    if [identity.name for identity, _s, _e in cast] != faces:
        # plates.plate_shots refuses identity strength 0; here only a caller that passed no identities.
        missing = sorted(set(faces) - {identity.name for identity, _s, _e in cast})
        raise ValueError(f"shot {shot.id}: the plate faces of {', '.join(missing)} have no identity to take")
    if shot.method is not None and shot.method != "dual-line" and warnings is not None:
        warnings.append(f"shot {shot.id}: method '{shot.method}' does not apply to a plate shot (each face takes "
                        "its character's identity line inside its face mask)")
    semantic, lines = _cast_lines(shot, loaded, cast, framing)
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
                                       for face in plate.faces), plate.strength)
    for face in request_plate.faces if warnings is not None else ():
        (x, y, w, h), (cx, cy, side_px, _) = face.box, face.crop_box
        if x < cx or y < cy or x + w > cx + side_px or y + h > cy + side_px:
            # The crop is square and inside the plate: a face box wider than the plate's shorter side
            # cannot fit, and only its part inside the crop is re-generated.
            warnings.append(f"shot {shot.id}: the face box [{x}, {y}, {w}, {h}] of '{face.character}' does not fit "
                            f"in its {side_px}x{side_px} crop (the plate's shorter side); only the part inside "
                            "the crop is re-generated")
    if warnings is not None:
        from .plates import overlapping_faces

        requested = request_plate.faces
        for i, j in overlapping_faces([(face.box, face.crop_box) for face in requested], plate.plate.size):
            under, over = requested[i], requested[j]
            warnings.append(f"shot {shot.id}: the face masks of '{under.character}' {list(under.box)} and "
                            f"'{over.character}' {list(over.box)} overlap; where they do, '{over.character}''s "
                            f"face is laid over '{under.character}''s (keep the boxes apart, or give one box "
                            "holding both faces to one character)")
    shot_level = shot_expression(shot)
    records = tuple({"name": identity.name, "strength": strength,
                     "expression": None if e is None else e.as_record()} for identity, strength, e in cast)
    record = plate_record(plate, shot.plate, {r["name"]: r["expression"] for r in records})
    # abs_path: the file as resolved when planned (as selfie_files records selfies), so idcli reproduce finds it.
    record.update({"abs_path": str(Path(plate.plate.path).absolute()), "working_size": side,
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
                        cast=records, prompt_tokens=prompt_tokens, plate=record))
    return jobs


def _measure_texts(measure: Any, prompt: str, negative: str, semantic: str | None,
                   more: list[str] | None = None) -> tuple[int | None, int]:
    """The prompt's token count and the CLIP windows of the job's longest text (1 when unknown);
    ``more``: further texts of its rows (several characters' identity lines)."""
    if measure is None:
        return None, 1
    texts = [prompt, negative] + ([semantic] if semantic is not None else []) + (more or [])
    return measure.tokens(prompt), measure.windows(*texts)


def shot_expression(shot: Shot) -> ResolvedExpression | None:
    """The shot's expression resolved against the vocabulary (validation has checked the label)."""
    spec = shot.expression
    if spec is None:
        return None
    label = spec if isinstance(spec, str) else spec.label
    given = None if isinstance(spec, str) else spec.intensity
    return resolve_expression(label, given if given is not None else shot.expression_intensity)


def _others_expressions(shot: Shot, loaded: LoadedShotList, subject: str | None,
                        expression: ResolvedExpression | None) -> str:
    """The expressions of a shot's other named characters, by their descriptions ('a young man: intense
    anger'), for a prompt that conditions at most ``subject``; '' for those without one or with the subject's."""
    said = scene_phrase(expression) if expression is not None else ""
    phrases = []
    for name in shot_characters(shot):
        own = character_expression(shot, name) if name != subject else None
        phrase = scene_phrase(own) if own is not None else ""
        if phrase and phrase != said:
            phrases.append(f"{loaded.shotlist.characters[name].description or name}: {phrase}")
    return ", ".join(phrases)


def _join(text: str, phrase: str) -> str:
    return f"{text.rstrip().rstrip(',.')}, {phrase}" if phrase else text


def key_material(model: ModelIdentity, request: RenderRequest, condition: Any = None,
                 adapter: Any = None, expression: ResolvedExpression | None = None,
                 cast: list[tuple[Any, ResolvedExpression | None]] | None = None) -> dict[str, Any]:
    """Everything that can change a job's pixels. Documented in docs/file-formats.md.

    ``cast`` (several characters): each conditioning character's identity and expression, in line
    order; their lines are added under ``method.characters`` (a one-character key has no such entry).
    """
    method: dict[str, Any] = {"name": "text"}
    if condition is not None and request.fusion is not None:
        params = key_params(request.method, request.fusion, len(request.lines) or 1)
        # The identity by what made it (identity/resolve.py), not its embedding's float bits, so another
        # machine's encoding of the same selfies keeps the key.
        identity = {"identity_key": condition.key, "strength": request.identity_strength}
        if params.get("aggregation") == "prepend":
            if condition.source == "pack":  # from selfies the identity key already covers the references
                identity["references_sha256"] = condition.references_sha256
            identity["references"] = min(len(condition.references), MAX_PREPENDED_REFERENCES)
        method = {"name": request.method, "identity": identity, "adapter": adapter.key_material(), "params": params}
        if request.method == "dual-line":
            method["semantic_prompt"] = request.semantic_prompt
            method["subject_spans"] = [list(span) for span in request.subject_spans]
        if request.lines and cast:
            method["characters"] = [_line_material(line, identity, e, params.get("aggregation"),
                                                   request.identity_count() - 1)
                                    for line, (identity, e) in zip(request.lines, cast, strict=True)]
    cfg = request.guidance > 1.0  # at or below 1 the engine runs no unconditional branch
    # Prompts longer than one CLIP window were cut at 77 tokens before issue 18; they are encoded in full
    # now, so their keys name the window count (and their old, truncated renders are stale). Keys of
    # prompts that fit one window are unchanged: so are their images.
    windows = {"text_windows": request.text_windows} if request.text_windows > 1 else {}
    return {
        "engine": ENGINE_ALGORITHM,
        "model": model.key_material(),
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt if cfg else "",
        "seed": request.seed,
        "size": [request.width, request.height],
        "steps": request.steps,
        "guidance": request.guidance if cfg else 1.0,
        "sampler": request.sampler,
        "method": method,
        "expression": None if expression is None else key_record(expression),
        **windows,
    }


def _line_material(line: IdentityLine, identity: Any, expression: ResolvedExpression | None,
                   aggregation: str | None, references: int) -> dict[str, Any]:
    """What of one character's identity line can change the pixels."""
    # The identity as the one-character key names it (``identity_key``: what made it, not float bits).
    record = {"name": line.name, "identity_key": identity.key, "strength": line.strength,
              "prompt": line.prompt, "subject_spans": [list(span) for span in line.spans],
              "expression": None if expression is None else key_record(expression)}
    if aggregation == "prepend":
        if identity.source == "pack":  # from selfies the identity key already covers the references
            record["references_sha256"] = identity.references_sha256
        record["references"] = references
    return record


def _plain(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
