"""The shot-list format (schema version 1): structure, validation and error reporting.

Structure is declared once with pydantic (strict types, unknown keys forbidden), which also gives
``idcli schema`` its JSON Schema. Rules that span fields (unique ids, placeholders that name a
character, files that must exist) are checked here afterwards. Every problem is reported with the
file, ``line:col``, the field path and what is allowed; nothing is rendered while any remain.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import Problem, ShotListError
from .framing_words import aliases_text, canonical_framing
from .framing_words import json_schema as framing_schema
from .method import (
    AGGREGATIONS,
    DEFAULT_METHOD,
    MAX_CHARACTERS_PER_SHOT,
    METHODS,
    check_fusion,
    explicit_params,
    shot_fusion,
)
from .method import FRAMINGS as FRAMING_RULES
from .paths import document_folder, local_path
from .suggest import closest, did_you_mean
from .validation_words import (
    BOUNDS,
    EXPECTED,
    SHAPE_KINDS,
    bound_problem,
    length_problem,
    shape_problem,
    type_problem,
    written,
)
from .yamlhints import number_problem, placeholder_problem
from .yamlsafe import LoadedYaml, PathKey, load_yaml_bytes, read_document
from .yamlsafe import path_text as _path_text

SCHEMA_VERSION = 1
PRESETS = ("tiny-sd", "tiny-sdxl", "sd15", "sdxl")
SAMPLERS = ("ddim", "euler", "heun", "dpmpp-2m", "midpoint")
FRAMINGS = tuple(FRAMING_RULES)
DTYPES = ("auto", "float32", "float16", "bfloat16")

MIN_SIDE, MAX_SIDE = 64, 4096
MAX_PIXELS = 2048 * 2048  # pixel budget per image
MAX_STEPS = 200
MAX_GUIDANCE = 30.0
MAX_TAKES = 100
MAX_SEED = 2**32 - 1
MAX_SHOTS = 10_000
DEFAULT_DURATION = 3.0  # seconds a shot lasts in the animatic (idcli export) when the list gives none
MAX_DURATION = 3600.0

# Always used with .fullmatch(): with .match() a '$' also matches before a trailing newline, so
# an id written as "abc\n" (or a '|' block scalar) passed and named a folder with a newline in it.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CHARACTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
# Names that Windows (and so shared previs storage) refuses as file names, whatever the extension.
RESERVED_NAMES = ({"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)}
                  | {f"lpt{i}" for i in range(10)})


def check_safe_id(value: str, what: str = "id") -> str:
    """A token usable as a file and folder name on every platform, never a path."""
    if not value:
        raise ValueError(f"{what} is empty")
    if "/" in value or "\\" in value or value in {".", ".."} or ".." in value:
        raise ValueError(f"{what} '{value}' is a path; use letters, digits, '_', '-' and '.'")
    if not SAFE_ID.fullmatch(value):
        raise ValueError(f"{what} '{value}' is not a safe file name: 1-64 of ASCII letters, digits, '_', "
                         "'-', '.', starting with a letter or digit")
    if value.split(".")[0].lower() in RESERVED_NAMES:
        raise ValueError(f"{what} '{value}' is a reserved device name on Windows")
    if value.endswith("."):
        raise ValueError(f"{what} '{value}' ends with '.'")
    return value


def _parse_size(value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*", value)
        if not match:
            raise ValueError("size must look like '768x512' (width x height)")
        width, height = int(match.group(1)), int(match.group(2))
    elif isinstance(value, list | tuple) and len(value) == 2 and all(
        type(v) is int for v in value
    ):
        width, height = value
    elif isinstance(value, dict) and set(value) == {"width", "height"} and all(
        type(v) is int for v in value.values()
    ):
        width, height = value["width"], value["height"]
    else:
        raise ValueError("size must be 'WIDTHxHEIGHT', [width, height] or {width: W, height: H}")
    for side in (width, height):
        if side % 8:
            raise ValueError(f"size {width}x{height}: each side must be a multiple of 8")
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ValueError(f"size {width}x{height}: each side must be {MIN_SIDE}..{MAX_SIDE}")
    if width * height > MAX_PIXELS:
        raise ValueError(f"size {width}x{height} is over the pixel budget of {MAX_PIXELS:,} pixels")
    return width, height


Size = Annotated[
    tuple[int, int],
    BeforeValidator(_parse_size),
    WithJsonSchema({
        "description": "Image size: 'WIDTHxHEIGHT', [width, height] or {width, height}; multiples of 8",
        "anyOf": [
            {"type": "string", "pattern": r"^\d+\s*[xX×]\s*\d+$"},
            {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            {"type": "object", "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
             "required": ["width", "height"], "additionalProperties": False},
        ],
    }),
]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def _exact_int(value: Any) -> Any:
    # pydantic's Literal[1] accepts True and 1.0 even in strict mode (True == 1.0 == 1), so
    # 'version: true' validated; the version must be written as the number itself.
    if type(value) is not int:
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": "1"})
    return value


def _check_character_name(name: str) -> str:
    if not CHARACTER_NAME.fullmatch(name):
        raise ValueError(f"character name '{name}' must be 1-32 ASCII letters, digits or '_', "
                         "starting with a letter or '_' (it is used as {name} in prompts)")
    return name


# Checked as the dict's key type (not by a validator on the whole dict) so that the problem is
# reported at the bad name's own line and path, not at the first character of the mapping.
CharacterName = Annotated[str, AfterValidator(_check_character_name)]
Text = Annotated[str, Field(max_length=4000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Expression(_Strict):
    """An expression: label is one of the 135 terms ('idcli expressions'), a synonym, a category or 'neutral';
    intensity is 0 to 1, the term's default when left out (docs/expressions.md)."""

    label: Annotated[str, Field(min_length=1, max_length=64)]
    intensity: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None


ExpressionSpec = Annotated[str, Field(min_length=1, max_length=64)] | Expression


Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class MethodParams(_Strict):
    """Hyper-parameters of the identity methods; each unset one takes its documented default
    (docs/method.md), which may depend on the shot's framing."""

    fusion_start: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Fraction of the steps run on the semantic line alone before fusion starts")
    fusion_end: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Fraction of the steps after which fusion stops")
    mask_threshold: Fraction | None = Field(
        default=None, description="Centre of the soft threshold on the accumulated attention map")
    mask_softness: Annotated[float, Field(gt=0.0, le=0.5, allow_inf_nan=False)] | None = Field(
        default=None, description="Half-width of the threshold's ramp")
    mask_blur: Annotated[float, Field(ge=0.0, le=8.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Gaussian smoothing of the attention map, in latent pixels at a 64-pixel latent")
    head_only: bool | None = Field(default=None, description="Fuse only over the top (head) of the character")
    head_fraction: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Share of the character's height counted as the head")
    aggregation: Literal[AGGREGATIONS] | None = Field(  # type: ignore[valid-type]
        default=None, description="mean: one aggregate identity; prepend: aggregate then each reference")
    mask_exclusivity: Annotated[float, Field(ge=0.0, le=16.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Several characters: power on each character's attention where their masks "
        "overlap (0 shares equally; larger gives a pixel more surely to the most attended character)")


# A framing as a script supervisor writes it (framing_words.py); the schema accepts the same words, no others.
FramingWord = Annotated[Literal[FRAMINGS], BeforeValidator(canonical_framing),  # type: ignore[valid-type]
                        WithJsonSchema(framing_schema())]


class RenderParams(_Strict):
    """Parameters a shot may set and ``defaults`` may set for every shot."""

    size: Size | None = None
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    guidance: Annotated[float, Field(ge=0.0, le=MAX_GUIDANCE, allow_inf_nan=False)] | None = None
    sampler: Literal[SAMPLERS] | None = None  # type: ignore[valid-type]
    negative_prompt: Text | None = None
    framing: FramingWord | None = Field(
        default=None, description="How the shot is framed: close-up, medium, wide or full-body. Script "
        "abbreviations are accepted, any case, with spaces, hyphens or underscores, and read as the framing they "
        f"stand for ({aliases_text()}); ECU, MCU, EWS, ELS, OTS and POV are refused (docs/shot-lists.md)")
    method: Literal[METHODS] | None = Field(  # type: ignore[valid-type]
        default=None, description="How identity is applied: dual-line (default) or single")
    method_params: MethodParams | None = None
    takes: Annotated[int, Field(ge=1, le=MAX_TAKES)] | None = None
    duration: Annotated[float, Field(gt=0.0, le=MAX_DURATION, allow_inf_nan=False)] | None = Field(
        default=None, description="Seconds the shot lasts in the animatic (idcli export) [default: 3]; "
        "changes no image and no job key")


ADAPTER_VARIANTS = ("faceid", "faceid-plusv2")  # docs/identity.md: which to pick and why


class AdapterSpec(_Strict):
    """Which identity adapter renders the shot list: its variant, and (real presets) where its weights are.

    ``variant`` unset: the preset's default (docs/identity.md), except that a file named by ``id`` and
    ``weight_name`` is read as FaceID, as it always was. ``shortcut_scale`` and ``image_encoder`` are
    FaceID-Plus v2's.
    """

    variant: Literal[ADAPTER_VARIANTS] | None = Field(  # type: ignore[valid-type]
        default=None, description="faceid or faceid-plusv2 (ArcFace + CLIP features of the face crop)")
    id: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="Hub repo id or local folder holding the adapter weights")
    weight_name: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None, description="Weight file inside it, e.g. ip-adapter-faceid_sd15.bin")
    subfolder: Annotated[str, Field(max_length=256)] = ""
    revision: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    shortcut_scale: Annotated[float, Field(ge=0.0, le=4.0, allow_inf_nan=False)] = Field(
        default=1.0, description="FaceID-Plus v2: weight of the CLIP face-structure tokens over the ArcFace "
                                 "ones (1.0 as published)")
    image_encoder: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="FaceID-Plus v2: hub id or local folder of the CLIP ViT-H image encoder; "
                                  "default: the preset's (h94/IP-Adapter, models/image_encoder)")
    image_encoder_subfolder: Annotated[str, Field(max_length=256)] = ""

    @model_validator(mode="after")
    def _file_named_whole(self) -> AdapterSpec:
        if (self.id is None) != (self.weight_name is None):
            raise ValueError("give both 'id' (hub id or folder) and 'weight_name' (the file in it), or neither "
                             "(the preset's own adapter)")
        # FaceID has no CLIP branch: these would change nothing, and an artist who set them expects them to.
        plus_only = [name for name in ("shortcut_scale", "image_encoder", "image_encoder_subfolder")
                     if name in self.model_fields_set]
        if self.variant == "faceid" and plus_only:
            one = len(plus_only) == 1
            raise ValueError(f"{', '.join(plus_only)} {'is' if one else 'are'} FaceID-Plus v2's and "
                             f"{'changes' if one else 'change'} nothing with variant: faceid; set variant: "
                             f"faceid-plusv2 or remove {'it' if one else 'them'}")
        return self


class ModelSpec(_Strict):
    """Which model renders the shot list. ``--preset`` on the command line overrides ``preset``."""

    preset: Literal[PRESETS] = "tiny-sd"  # type: ignore[valid-type]
    id: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="Hub repo id (org/name) or a local diffusers folder; real presets only")
    revision: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="Hub revision: a commit hash pins the weights exactly")
    dtype: Literal[DTYPES] = "auto"  # type: ignore[valid-type]
    allow_pickle: bool = Field(
        default=False, description="Allow pickle (.bin/.ckpt) weights, loaded weights-only; off by default")
    adapter: AdapterSpec | None = Field(
        default=None, description="IP-Adapter FaceID weights; default: the preset's (random for tiny presets)")


class Character(_Strict):
    """A character: selfies to encode, or an identity pack made by ``idcli encode-identity``."""

    selfies: Annotated[list[Annotated[str, Field(min_length=1, max_length=1024)]],
                       Field(min_length=1, max_length=32)] | None = None
    identity: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    description: Annotated[str, Field(min_length=1, max_length=300)] | None = Field(
        default=None, description="How prompts name the character, e.g. 'a woman in a red coat'")
    identity_strength: Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)] = Field(
        default=1.0, description="Identity adapter strength for this character (0 turns it off)")

    @model_validator(mode="after")
    def _one_source(self) -> Character:
        if (self.selfies is None) == (self.identity is None):
            raise ValueError("give exactly one of 'selfies' (a list of images) or 'identity' (a pack file)")
        return self


MAX_PLATE_FACES = 8
PlateBox = Annotated[list[Annotated[int, Field(ge=0, le=65535)]], Field(min_length=4, max_length=4)]
PlateFace = Annotated[int, Field(ge=0, lt=64)] | PlateBox


class Shot(RenderParams):
    """One shot: a prompt with ``{character}`` placeholders and how many takes to render."""

    id: Annotated[str, Field(description="Safe file-name token; names the output folder")]
    prompt: Annotated[str, Field(min_length=1, max_length=4000)]
    expression: ExpressionSpec | None = Field(
        default=None, description="One of the 135 expression terms (see 'idcli expressions'), a synonym, a "
        "category or 'neutral'; or {label, intensity}")
    expression_intensity: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        default=None, description="The expression's intensity, 0 to 1 [default: the term's own]")
    expressions: dict[CharacterName, ExpressionSpec] | None = Field(
        default=None, description="Per-character expressions, e.g. {mara: grief, theo: {label: hope, intensity: "
        "0.6}}; a character without an entry takes 'expression'")
    identity_strength: Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Identity strength for this shot, overriding the character's and the "
        "expression balance rule (docs/method.md)")
    seeds: Annotated[list[Seed], Field(min_length=1, max_length=MAX_TAKES)] | None = None
    # --- plates (docs/plates.md): put the named characters' faces into an existing frame ---
    plate: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="An existing frame (PNG, JPEG or WebP, relative to the shot list) whose faces "
        "are replaced by the characters the prompt names, with the shot's expression")
    plate_faces: Annotated[list[PlateFace], Field(min_length=1, max_length=MAX_PLATE_FACES)] | None = Field(
        default=None, description="Which plate face each named character takes, in the prompt's order: an index "
        "among the detected faces counted left to right, or a box [x, y, w, h] in plate pixels [default: the "
        "detected faces left to right]")
    plate_strength: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        default=None, description="How much of the denoising schedule re-generates each face, 0..1 [default: 0.6]")

    @field_validator("id")
    @classmethod
    def _safe(cls, value: str) -> str:
        return check_safe_id(value, "shot id")


class C2paSpec(_Strict):
    """C2PA signing credentials (docs/provenance.md); paths are relative to the shot list."""

    cert: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        description="PEM certificate chain: the signer's end-entity certificate first, then its issuers")
    key: Annotated[str, Field(min_length=1, max_length=1024)] = Field(description="PEM private key of the signer")
    password_env: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="Environment variable holding the key's password [default: "
        "IDCLI_C2PA_KEY_PASSWORD]")
    ta_url: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="Time-stamp authority URL; none by default (fully offline)")


class ProvenanceSpec(_Strict):
    """Provenance beyond the sidecar: C2PA content credentials on every image."""

    c2pa: C2paSpec | None = None


class ShotList(_Strict):
    """A whole shot list, schema version 1."""

    version: Annotated[Literal[1], BeforeValidator(_exact_int)]
    project: Annotated[str, Field(description="Project name; a safe file-name token")]
    model: ModelSpec = ModelSpec()
    defaults: RenderParams = RenderParams()
    characters: dict[CharacterName, Character] = Field(default_factory=dict)
    shots: Annotated[list[Shot], Field(min_length=1, max_length=MAX_SHOTS)]
    provenance: ProvenanceSpec | None = Field(
        default=None, description="C2PA signing of every image (docs/provenance.md)")

    @field_validator("project")
    @classmethod
    def _safe(cls, value: str) -> str:
        return check_safe_id(value, "project")


@dataclass(frozen=True)
class LoadedShotList:
    """A validated shot list with where it came from (relative paths resolve from ``base_dir``)."""

    shotlist: ShotList
    source: str
    base_dir: Path
    raw_sha256: str
    # Where each field was written (line, column), for problems found after validation (a selfie with
    # no face is found only when it is encoded).
    yaml: LoadedYaml | None = _field(default=None, compare=False, repr=False)

    def position(self, path: PathKey, *, key: bool = False) -> tuple[int | None, int | None]:
        """The 1-based line and column of a field of the document; (None, None) when unknown."""
        mark = self.yaml.mark(path, key=key) if self.yaml is not None else None
        return mark or (None, None)
    notes: tuple[Problem, ...] = ()  # not errors: what `idcli validate` mentions (shotlist_notes)

    def resolve_path(self, value: str) -> Path:
        return local_path(value, self.base_dir) or self.base_dir / value


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a shot list, for editors' YAML completion."""
    schema = ShotList.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "idcli shot list (schema version 1)"
    return schema


# --- turning pydantic errors into problems with line numbers ------------------------------------

_MODEL_AT: dict[str, type[BaseModel]] = {"model": ModelSpec, "defaults": RenderParams}


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


def _problems_from_validation(exc: ValidationError, loaded: LoadedYaml) -> list[Problem]:
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
            hint = did_you_mean(key, allowed) or (f"allowed: {', '.join(allowed)}" if allowed else "")
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
        elif kind in SHAPE_KINDS and len(type_kinds.get(loc, [])) <= 1:
            # 'Input should be a valid dictionary or instance of Shot': the parser's words, a class name.
            message, hint = shape_problem(kind, loc, err)
            line_col = loaded.mark(loc)
        elif kind in EXPECTED:
            # 'Input should be a valid integer': types are strict, so say what would do and how to write it.
            message, hint = type_problem(type_kinds.get(loc, [kind]), loc, err.get("input"),
                                          loaded.plain_scalars.get(loc))
            line_col = loaded.mark(loc)
        elif kind in BOUNDS:
            message = bound_problem(kind, err)
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


# --- rules that span fields ---------------------------------------------------------------------

def placeholders(text: str) -> list[str]:
    """Names of ``{name}`` placeholders in a prompt; ``{{`` and ``}}`` are literal braces."""
    names = []
    for _literal, field_name, spec, conversion in string.Formatter().parse(text):
        if field_name is None:
            continue
        if spec or conversion or not CHARACTER_NAME.fullmatch(field_name):
            raise ValueError(f"'{{{field_name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}}' is not a character placeholder")
        names.append(field_name)
    return names


def _semantic_problems(doc: ShotList, loaded: LoadedYaml, base_dir: Path, check_files: bool = True) -> list[Problem]:
    problems: list[Problem] = []

    def add(message: str, loc: PathKey, hint: str = "", key: bool = False) -> None:
        line, col = loaded.mark(loc, key=key) or (None, None)
        problems.append(Problem(message, _path_text(loc), line, col, hint))

    def add_file(message: str, loc: PathKey, hint: str = "", key: bool = False) -> None:
        if check_files:  # the files a shot list names (selfies, packs, plates, models, keys)
            add(message, loc, hint, key)

    def check_placeholders(text: str | None, loc: PathKey) -> None:
        if text is None:
            return
        try:
            names = placeholders(text)
        except ValueError as exc:
            add(str(exc), loc, "write {{ and }} for literal braces")
            return
        for name in names:
            if name not in doc.characters:
                defined = sorted(doc.characters)
                hint = did_you_mean(name, defined) or (
                    f"defined characters: {', '.join(defined)}" if defined else "no characters are defined")
                add(f"placeholder '{{{name}}}' names no character", loc, hint)

    check_placeholders(doc.defaults.negative_prompt, ("defaults", "negative_prompt"))
    seen_ids: dict[str, int] = {}
    blamed: set[PathKey] = set()
    for i, shot in enumerate(doc.shots):
        if shot is None:
            continue  # a shot with a type error (_partial_shotlist): its type errors are what it gets
        folded = shot.id.lower()  # case-insensitive file systems would merge these folders
        if folded in seen_ids:
            add(f"duplicate shot id '{shot.id}'", ("shots", i, "id"),
                f"first used by shots[{seen_ids[folded]}]; ids name output folders and must be unique")
        else:
            seen_ids[folded] = i
        for field in ("prompt", "negative_prompt"):
            check_placeholders(getattr(shot, field), ("shots", i, field))
        if shot.seeds is not None and shot.takes is not None and len(shot.seeds) != shot.takes:
            add(f"{len(shot.seeds)} seeds given for {shot.takes} takes", ("shots", i, "seeds"),
                "give 'seeds' or 'takes', or as many seeds as takes")
        if shot.seeds is not None and len(set(shot.seeds)) != len(shot.seeds):
            add("the same seed is given twice", ("shots", i, "seeds"), "each take needs its own seed")
        _check_expression(shot, ("shots", i), add)
        _check_cast(shot, doc.defaults, ("shots", i), add, set(doc.characters))
        _check_plate_fields(shot, ("shots", i), base_dir, add, add_file)
        broken = check_fusion(shot_fusion(shot, doc.defaults))
        # Blame the shot's own method_params when they set the window, else the defaults (reported once).
        own = explicit_params(shot.method_params) or {}
        sets_window = "fusion_start" in own or "fusion_end" in own
        loc = ("shots", i, "method_params") if sets_window else ("defaults", "method_params")
        if broken and loc not in blamed:
            blamed.add(loc)
            add(broken, loc, "fusion_start and fusion_end are fractions of the steps; see docs/method.md")

    for name, character in doc.characters.items():
        for j, selfie in enumerate(character.selfies or []):
            _check_file(base_dir, selfie, ("characters", name, "selfies", j), "selfie", add_file)
        if character.identity is not None:
            _check_file(base_dir, character.identity, ("characters", name, "identity"), "identity pack", add_file)

    spec = doc.model
    if spec.preset.startswith("tiny-") and (spec.id or spec.revision):
        add(f"preset '{spec.preset}' builds its own random weights and takes no id or revision",
            ("model", "id" if spec.id else "revision"), "remove it, or use preset sd15 / sdxl")
    if spec.id is not None and not spec.preset.startswith("tiny-"):
        _check_source(base_dir, spec.id, ("model", "id"), add_file)
    if spec.adapter is not None and spec.adapter.id is not None:
        _check_source(base_dir, spec.adapter.id, ("model", "adapter", "id"), add_file)
    if spec.adapter is not None and spec.adapter.image_encoder is not None:
        _check_source(base_dir, spec.adapter.image_encoder, ("model", "adapter", "image_encoder"), add_file)
    c2pa = doc.provenance.c2pa if doc.provenance else None
    if c2pa is not None:  # that they sign is checked when a render starts (idcli/signing.py)
        _check_file(base_dir, c2pa.cert, ("provenance", "c2pa", "cert"), "C2PA certificate", add_file)
        _check_file(base_dir, c2pa.key, ("provenance", "c2pa", "key"), "C2PA key", add_file)
    return problems


def _partial_shotlist(data: dict[str, Any], exc: ValidationError, loaded: LoadedYaml) -> ShotList | None:
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
    sections = {"model": ModelSpec, "defaults": RenderParams, "provenance": ProvenanceSpec}
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


# What a folder-taking field needs when it names a file instead (a relative file path looks like 'org/name').
_FILE_NOT_FOLDER = {
    "id": ("model.id takes a diffusers pipeline folder (model_index.json, unet/, vae/, ...) or a hub id; a "
           "single-file checkpoint (.safetensors/.ckpt, as A1111 and ComfyUI keep them) must be converted once "
           "with diffusers: StableDiffusionPipeline.from_single_file(FILE).save_pretrained(FOLDER) "
           "(StableDiffusionXLPipeline for SDXL), then set model.id: FOLDER"),
    "adapter": "give the folder that holds the file as id and the file's name as weight_name",
    "image_encoder": "give the folder that holds the encoder's config.json and model.safetensors",
}


def _check_source(base_dir: Path, value: str, loc: PathKey, add: Any) -> None:
    """A model or adapter id: an existing local folder, else a hub id."""
    local = local_path(value, base_dir)
    if local is None:
        add(f"'{value}': no such user's home folder", loc, "write the folder's full path")
    elif local.exists() and not local.is_dir():
        kind = {("model", "id"): "id", ("model", "adapter", "image_encoder"): "image_encoder"}.get(loc, "adapter")
        add(f"'{value}' is a file, not a folder", loc, _FILE_NOT_FOLDER[kind])
    elif not local.exists() and not HUB_ID.fullmatch(value):
        add(f"'{value}' is neither a local folder nor a hub id", loc,
            "a hub id looks like 'org/name'; a local folder must exist")



def _check_expression(shot: Shot, loc: PathKey, add: Any) -> None:
    from .expressions import UnknownExpression, lookup

    spec = shot.expression
    if spec is None:
        if shot.expression_intensity is not None:
            add("expression_intensity is given but the shot has no expression", (*loc, "expression_intensity"),
                "add 'expression: LABEL', or remove expression_intensity")
        return
    label = spec if isinstance(spec, str) else spec.label
    where = (*loc, "expression") if isinstance(spec, str) else (*loc, "expression", "label")
    try:
        lookup(label)
    except UnknownExpression as exc:
        more = "; 'idcli expressions' lists all 135 terms" if exc.suggestions else ""
        add(f"unknown expression '{label}'", where, exc.hint + more)
    if not isinstance(spec, str) and spec.intensity is not None and shot.expression_intensity is not None:
        add("the intensity is given twice (expression.intensity and expression_intensity)",
            (*loc, "expression_intensity"), "keep one of them")


def _check_plate_fields(shot: Shot, loc: PathKey, base_dir: Path, add: Any, add_file: Any) -> None:
    """The plate fields' own rules; the plate's pixels and faces are checked by idcli/plates.py."""
    if shot.plate is None:
        for name in ("plate_faces", "plate_strength"):
            if getattr(shot, name) is not None:
                add(f"{name} is given but the shot has no plate", (*loc, name), "add 'plate: FILE', or remove it")
        return
    _check_file(base_dir, shot.plate, (*loc, "plate"), "plate", add_file)
    try:
        named = list(dict.fromkeys(placeholders(shot.prompt)))
    except ValueError:
        return  # reported by check_placeholders
    if not named:
        add("a plate shot names no character", (*loc, "prompt"),
            "name the characters whose faces go into the plate, e.g. '{mara} at the window'")
    if shot.plate_faces is None:
        return
    if len(shot.plate_faces) != len(named):
        given, count = len(shot.plate_faces), len(named)
        mentions = placeholders(shot.prompt)
        twice = [name for name in named if mentions.count(name) > 1]  # '{mara} looks at {mara}': one face
        again = "".join(f"; '{name}' is named twice and takes one face" if mentions.count(name) == 2 else
                        f"; '{name}' is named {mentions.count(name)} times and takes one face" for name in twice)
        add(f"{given} plate face{'s' if given != 1 else ''} given for {count} character{'s' if count != 1 else ''} "
            f"named in the prompt{again}",
            (*loc, "plate_faces"), "give one face (index or [x, y, w, h]) per character, in the prompt's order")
    indices = [face for face in shot.plate_faces if isinstance(face, int)]
    if len(set(indices)) != len(indices):
        add("the same plate face is given twice", (*loc, "plate_faces"), "each character needs its own face")
    for j, face in enumerate(shot.plate_faces):
        if isinstance(face, list) and (face[2] < 8 or face[3] < 8):
            add(f"box {face}: width and height must be at least 8 pixels", (*loc, "plate_faces", j),
                "a box is [x, y, width, height] in plate pixels")


def _named(shot: Shot) -> list[str]:
    """The characters a shot's prompt names, in order of first appearance ([] when it cannot be parsed)."""
    try:
        return list(dict.fromkeys(placeholders(shot.prompt)))
    except ValueError:
        return []  # reported by the placeholder check


def _shot_method(shot: Shot, defaults: RenderParams) -> str:
    return shot.method or defaults.method or DEFAULT_METHOD


def _check_cast(shot: Shot, defaults: RenderParams, loc: PathKey, add: Any, characters: set[str]) -> None:
    """Per-character expressions name characters of the prompt; a dual-line shot names at most the limit
    (not a plate shot: each of its faces is a crop of its own, whatever its method says)."""
    from .expressions import UnknownExpression, lookup

    named = _named(shot)
    if len(named) > MAX_CHARACTERS_PER_SHOT and _shot_method(shot, defaults) == "dual-line" and shot.plate is None:
        add(f"the prompt names {len(named)} characters; a dual-line shot may name at most "
            f"{MAX_CHARACTERS_PER_SHOT}", (*loc, "prompt"),
            "split the shot, or use 'method: single' (one identity per image; docs/method.md)")
    for name, spec in (shot.expressions or {}).items():
        if name not in named:
            # Only the prompt's real characters: a typo there ('{alce}') is named on the prompt's own line.
            cast = [n for n in named if n in characters]
            hint = did_you_mean(name, cast) or (f"the prompt names: {', '.join(cast)}" if cast
                                                 else "the prompt names no character")
            add(f"'{name}' is not named in the prompt", (*loc, "expressions", name), hint, key=True)
            continue
        label = spec if isinstance(spec, str) else spec.label
        where = (*loc, "expressions", name) if isinstance(spec, str) else (*loc, "expressions", name, "label")
        try:
            lookup(label)
        except UnknownExpression as exc:
            more = "; 'idcli expressions' lists all 135 terms" if exc.suggestions else ""
            add(f"unknown expression '{label}' for '{name}'", where, exc.hint + more)


def shotlist_notes(doc: ShotList, loaded: LoadedYaml) -> list[Problem]:
    """Things worth saying about a valid shot list (``idcli validate`` prints them): not errors."""
    notes = []
    for i, shot in enumerate(doc.shots):
        named = _named(shot)
        # A plate shot gives every face its own identity line whatever 'method' says (plan warns of that).
        if len(named) > 1 and shot.plate is None and _shot_method(shot, doc.defaults) == "single":
            line, col = loaded.mark(("shots", i, "prompt")) or (None, None)
            notes.append(Problem(f"method 'single' conditions one identity per image: only '{named[0]}' of "
                                 f"{', '.join(named)} is recognisable; the others appear through their "
                                 "descriptions", _path_text(("shots", i, "prompt")), line, col,
                                 "use 'method: dual-line' for one identity line per character"))
    from .expression_notes import faceless_expression_notes
    from .prompt_syntax import foreign_syntax_notes

    return (notes + same_description_notes(doc, loaded) + foreign_syntax_notes(doc, loaded)
            + faceless_expression_notes(doc, loaded))


def same_description_notes(doc: ShotList, loaded: LoadedYaml) -> list[Problem]:
    """A dual-line shot naming two characters with one description (case and spacing aside): their attention
    maps coincide and the masks cannot tell them apart (docs/method.md, failure modes). Said by validate and
    plan at the shot's prompt; it still renders."""
    notes = []
    for i, shot in enumerate(doc.shots):
        named = _named(shot)
        if len(named) < 2 or shot.plate is not None or _shot_method(shot, doc.defaults) != "dual-line":
            continue  # single line: one identity anyway; a plate: each face has its own box
        by_text: dict[str, list[str]] = {}
        for name in named:
            description = (doc.characters[name].description or "") if name in doc.characters else ""
            if description.strip():
                by_text.setdefault(" ".join(description.lower().split()), []).append(name)
        for text, names in by_text.items():
            if len(names) < 2:
                continue
            line, col = loaded.mark(("shots", i, "prompt")) or (None, None)
            notes.append(Problem(f"characters {' and '.join(repr(n) for n in names)} have the same description "
                                 f"('{text}'): in a dual-line shot their attention maps coincide and their masks "
                                 "cannot be told apart (docs/method.md)", _path_text(("shots", i, "prompt")),
                                 line, col, "give each character a distinct description"))
    return notes


def _check_file(base_dir: Path, value: str, loc: PathKey, what: str, add: Any) -> None:
    path = local_path(value, base_dir)
    if path is None:
        add(f"{what} '{value}': no such user's home folder", loc, "write the file's full path")
        return
    if not path.exists() and path.is_symlink():  # the name is there: "did you mean" it would be no help
        add(f"{what} '{value}' is a symbolic link that leads to no file (broken, or a loop)", loc,
            "point the link at the file, or write the file's own path")
    elif not path.exists():
        posix = value.replace("\\", "/")
        if posix != value and (converted := local_path(posix, base_dir)) is not None and converted.exists():
            # A shot list written on Windows: here '\\' is a character of the file name, not a separator.
            add(f"{what} '{value}' does not exist", loc, f"write '/' between folders: '{posix}'")
            return
        siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        hits = closest(path.name, siblings, n=1)
        # Suggested as it would be written: in the same folder as the value ('selfies/mara_1.jpg', not 'mara_1.jpg').
        folder = value[: -len(path.name)] if value.endswith(path.name) else ""
        looked = f" (looked for {path})" if str(path) != value else ""  # where a relative path led
        add(f"{what} '{value}' does not exist{looked}", loc, f"did you mean '{folder}{hits[0]}'?" if hits else "")
    elif not path.is_file():
        add(f"{what} '{value}' is not a regular file", loc)


# --- public entry points ------------------------------------------------------------------------

def parse_shotlist(loaded: LoadedYaml, base_dir: Path, raw_sha256: str = "", *,
                   check_files: bool = True) -> LoadedShotList:
    """Validate a loaded YAML document as a shot list. Raises ShotListError with every problem.
    ``check_files=False``: not whether the files it names exist (review commands read only its order)."""
    data = loaded.data
    if data is None:  # '---' alone or '~': said 'the document is a NoneType, not a mapping'
        raise ShotListError(loaded.source, [Problem("the document is empty",
                                                    hint="a shot list starts with 'version: 1'")])
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ShotListError(loaded.source, [Problem(f"the document is a {kind}, not a mapping", line=1,
                                                    hint="a shot list starts with 'version: 1'")])
    version = data.get("version")
    if type(version) is int and version > SCHEMA_VERSION:
        line, col = loaded.mark(("version",)) or (None, None)
        raise ShotListError(loaded.source, [Problem(
            f"schema version {version} is newer than this idcli understands ({SCHEMA_VERSION})",
            "version", line, col, "upgrade idcli")])
    try:
        doc = ShotList.model_validate(data)
    except ValidationError as exc:
        # Every problem at once (README): the checks after the types run for what parsed (see _partial_shotlist).
        problems = _problems_from_validation(exc, loaded)
        try:
            partial = _partial_shotlist(data, exc, loaded)
        except RecursionError:  # a part nested too deeply: its type errors are what it gets
            partial = None
        later = _semantic_problems(partial, loaded, base_dir, check_files) if partial is not None else []
        if later:  # in the file's order, as a reader goes through it
            problems = sorted(problems + later, key=lambda p: (p.line is None, p.line or 0, p.column or 0))
        parsed = LoadedShotList(partial, loaded.source, base_dir, raw_sha256, loaded) if partial is not None else None
        raise ShotListError(loaded.source, problems, parsed) from None
    except RecursionError:
        raise ShotListError(loaded.source, [Problem("the document is nested too deeply")]) from None
    problems = _semantic_problems(doc, loaded, base_dir, check_files)
    if problems:
        raise ShotListError(loaded.source, problems, LoadedShotList(doc, loaded.source, base_dir, raw_sha256, loaded))
    return LoadedShotList(doc, loaded.source, base_dir, raw_sha256, loaded, tuple(shotlist_notes(doc, loaded)))


def load_shotlist(path: str | Path, *, check_files: bool = True) -> LoadedShotList:
    """Read, bound, parse and validate a shot-list file (``check_files``: see parse_shotlist)."""
    import hashlib

    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        from .errors import InputError

        raise InputError(f"load_shotlist({path!r}): give the path of a shot-list file (str or pathlib.Path)")
    path = Path(path)
    raw = read_document(path)  # read once: the hash is of the very bytes parsed
    loaded = load_yaml_bytes(raw, str(path))
    return parse_shotlist(loaded, document_folder(path), hashlib.sha256(raw).hexdigest(), check_files=check_files)


def loads_shotlist(text: str | bytes, base_dir: str | Path = ".", source: str = "<string>") -> LoadedShotList:
    """Parse a shot list held in memory (tests, pipelines that generate shot lists)."""
    import hashlib

    if not isinstance(text, (str, bytes)):
        from .errors import InputError

        raise InputError(f"loads_shotlist(text={type(text).__name__}): give the shot list's text (str or bytes)")
    try:
        raw = text.encode("utf-8") if isinstance(text, str) else text
    except UnicodeEncodeError as exc:  # a lone surrogate: no file can hold one
        problem = Problem(f"the text holds an unencodable character at index {exc.start}")
        raise ShotListError(source, [problem]) from None
    loaded = load_yaml_bytes(raw, source)
    return parse_shotlist(loaded, Path(base_dir).resolve(), hashlib.sha256(raw).hexdigest())


__all__ = [
    "AGGREGATIONS", "FRAMINGS", "METHODS", "PRESETS", "SAMPLERS", "Character", "LoadedShotList", "MethodParams",
    "ModelSpec", "RenderParams", "Shot",
    "ShotList", "json_schema", "load_shotlist", "loads_shotlist", "placeholders",
]
