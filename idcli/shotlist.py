"""The shot-list format (schema version 1): structure, validation and error reporting.

Structure is declared once with pydantic (strict types, unknown keys forbidden), which also gives
``idcli schema`` its JSON Schema. Rules that span fields (unique ids, placeholders that name a
character, files that must exist) are checked afterwards (``shotlist_checks``), and pydantic's errors are
put in idcli's words (``shotlist_problems``). Every problem is reported with the file, ``line:col``, the
field path and what is allowed; nothing is rendered while any remain.
"""

from __future__ import annotations

import math
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

from .ascii_names import ascii_spelling
from .errors import Problem, ShotListError, in_file_order
from .framing_words import aliases_text, canonical_framing
from .framing_words import json_schema as framing_schema
from .method import (
    AGGREGATIONS,
    METHODS,
)
from .method import FRAMINGS as FRAMING_RULES
from .paths import document_folder, local_path
from .prompt_syntax import wildcard_words
from .yamlsafe import LoadedYaml, PathKey, load_yaml_bytes, read_document

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


# Names idcli itself writes at the top of an output folder, where each shot has its folder: a shot of such an id
# renders, then `idcli review` or `idcli select` cannot write there (review/page_files.REVIEW_DIR,
# review/selects.SELECTS; tests/test_shotlist.py holds them equal). Compared ignoring case: macOS and Windows do.
OUTPUT_FOLDER_NAMES = {"review": "the folder `idcli review` writes the storyboard page to",
                       "selects.json": "the file `idcli select` records the picks in"}


def check_safe_id(value: str, what: str = "id") -> str:
    """A token usable as a file and folder name on every platform, never a path."""
    if not value:
        raise ValueError(f"{what} is empty")
    if "/" in value or "\\" in value or value in {".", ".."} or ".." in value:
        raise ValueError(f"{what} '{value}' is a path; use letters, digits, '_', '-' and '.'")
    if not SAFE_ID.fullmatch(value):
        plain = ascii_spelling(value)
        raise ValueError(f"{what} '{value}' is not a safe file name: 1-64 of ASCII letters, digits, '_', "
                         "'-', '.', starting with a letter or digit"
                         + (f"; write '{plain}'" if plain and SAFE_ID.fullmatch(plain) else ""))
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
    problem = size_problem(width, height)
    if problem is not None:
        rule, lead, sizes = problem
        raise PydanticCustomError("size", "size {size}: {rule}", {
            "size": f"{width}x{height}", "rule": rule,
            "hint": f"{lead}: size: {' or '.join(sizes)}" if sizes else ""})
    return width, height


def size_problem(width: int, height: int) -> tuple[str, str, list[str]] | None:
    """What rule the size ``width``x``height`` breaks, how its suggestions are introduced and the allowed sizes to
    write instead; None for an allowed size. The one judge of a size: a shot list's ``size:`` and ``idcli bench
    --size`` each word it as their surface names the size."""
    for side in (width, height):
        rule = ("each side must be a multiple of 8" if side % 8 else
                f"each side must be {MIN_SIDE}..{MAX_SIDE}" if not MIN_SIDE <= side <= MAX_SIDE else "")
        if rule:
            return rule, "nearest", _nearest_sizes(width, height)
    if width * height > MAX_PIXELS:
        return (f"over the pixel budget of {MAX_PIXELS:,} pixels", "largest of that shape within it",
                [_largest_within_budget(width, height)])
    return None


def _largest_within_budget(width: int, height: int) -> str:
    """The largest size of (as near as the grid allows) the shape of ``width``x``height`` whose sides are multiples of
    8 and whose pixels are within the budget: both sides scaled by one factor, each rounded down to the grid."""
    # side * sqrt(budget / area), rounded down in whole numbers: a float's 2047.9999 would lose a grid step.
    w, h = (max(MIN_SIDE, math.isqrt(side * side * MAX_PIXELS // (width * height)) // 8 * 8)
            for side in (width, height))
    return f"{w}x{h}"


def _nearest_sizes(width: int, height: int) -> list[str]:
    """The allowed sizes nearest a refused one: each side inside MIN_SIDE..MAX_SIDE at its nearest multiple of 8 (the
    lower and the upper one both, half-way between), within the pixel budget."""
    def sides(side: int) -> list[int]:
        side = min(max(side, MIN_SIDE), MAX_SIDE)
        low = side - side % 8
        return [low, low + 8] if side % 8 == 4 else [low] if side % 8 < 4 else [low + 8]

    widths, heights = sides(width), sides(height)
    pairs = dict.fromkeys([(widths[0], heights[0]), (widths[-1], heights[-1])])
    return [f"{w}x{h}" for w, h in pairs if w * h <= MAX_PIXELS]


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
        plain = ascii_spelling(name)
        raise ValueError(f"character name '{name}' must be 1-32 ASCII letters, digits or '_', "
                         "starting with a letter or '_' (it is used as {name} in prompts)"
                         + (f"; write '{plain}', and {{{plain}}} in prompts"
                            if plain and CHARACTER_NAME.fullmatch(plain) else ""))
    return name


# Checked as the dict's key type (not by a validator on the whole dict) so that the problem is
# reported at the bad name's own line and path, not at the first character of the mapping.
CharacterName = Annotated[str, AfterValidator(_check_character_name)]


def _not_blank(value: str) -> str:
    """A text of spaces only, refused as an empty one is (``validation_words.length_problem`` says which)."""
    if not value.strip():
        raise PydanticCustomError("string_too_short", "String should have at least {min_length} character",
                                  {"min_length": 1})
    return value
Text = Annotated[str, Field(max_length=4000)]

# A hub revision: a commit hash, a branch or a tag (git's ref names, as the hub serves them). huggingface_hub reads a
# cached branch from the cache's refs/<revision> file, so '/etc/x' or '../..' read a file outside the cache.
REVISION = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")


def _check_revision(revision: str) -> str:
    if not REVISION.fullmatch(revision) or ".." in revision:
        raise ValueError(f"revision '{revision}' is not a commit hash, branch or tag name: give letters, digits, "
                         "'.', '_', '-' and '/' between names, without '..' (e.g. main, v1.0 or the 40-digit "
                         "commit hash)")
    return revision


Revision = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_check_revision)]


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


# What an adapter's weight file is named (model.adapter.id given one instead of its folder).
_WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


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
    revision: Revision | None = None
    shortcut_scale: Annotated[float, Field(ge=0.0, le=4.0, allow_inf_nan=False)] = Field(
        default=1.0, description="FaceID-Plus v2: weight of the CLIP face-structure tokens over the ArcFace "
                                 "ones (1.0 as published)")
    image_encoder: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="FaceID-Plus v2: hub id or local folder of the CLIP ViT-H image encoder; "
                                  "default: the preset's (h94/IP-Adapter, models/image_encoder)")
    image_encoder_subfolder: Annotated[str, Field(max_length=256)] = ""

    @model_validator(mode="after")
    def _file_named_whole(self) -> AdapterSpec:
        if self.id is not None and self.weight_name is None and self.id.lower().endswith(_WEIGHT_FILE_SUFFIXES):
            # The file itself, as other tools take it: said as the id naming a file with weight_name given is.
            folder, _, name = self.id.rstrip("/").rpartition("/")
            raise ValueError(f"'{self.id}' is a file, not the folder that holds it: write {{id: {folder or '.'}, "
                             f"weight_name: {name}}}")
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
    revision: Revision | None = Field(
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
    # Blank as empty: '{mara}' stands for it, so a prompt of her name alone rendered the framing alone (a blank prompt).
    description: Annotated[str, Field(min_length=1, max_length=300, json_schema_extra={"pattern": r"\S"}),
                           AfterValidator(_not_blank)] | None = Field(
        default=None, description="How prompts name the character, e.g. 'a woman in a red coat'")
    identity_strength: Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)] = Field(
        default=1.0, description="Identity adapter strength for this character (0 turns it off)")
    # Changes no pixel and no key: only which words of a prompt validate and plan take for a forgotten placeholder.
    also_a_word: bool = Field(
        default=False, description="The name is also an ordinary word (rose, will, mark): in lowercase in a prompt "
        "it is that word; capitalised (Rose) it is still said to be the name without braces (docs/shot-lists.md)")

    @model_validator(mode="after")
    def _one_source(self) -> Character:
        if (self.selfies is None) == (self.identity is None):
            raise ValueError("give exactly one of 'selfies' (a list of images) or 'identity' (a pack file)")
        return self


# One plate_faces entry per character named, and a plate shot is not held to the dual-line shot's 6 characters (each
# face is a crop of its own): as many entries as a detected face's index can address (below 64), not 8.
MAX_PLATE_FACES = 64
PlateBox = Annotated[list[Annotated[int, Field(ge=0, le=65535)]], Field(min_length=4, max_length=4)]
PlateFace = Annotated[int, Field(ge=0, lt=MAX_PLATE_FACES)] | PlateBox


class Shot(RenderParams):
    """One shot: a prompt with ``{character}`` placeholders and how many takes to render."""

    id: Annotated[str, Field(description="Safe file-name token; names the output folder")]
    # Blank ('prompt: "   "') as empty: it rendered the framing alone, as if the shot had no prompt. The pattern tells
    # an editor validating against the JSON Schema the same.
    prompt: Annotated[str, Field(min_length=1, max_length=4000, json_schema_extra={"pattern": r"\S"}),
                      AfterValidator(_not_blank)]
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
        check_safe_id(value, "shot id")
        taken = OUTPUT_FOLDER_NAMES.get(value.lower())
        if taken is not None:
            raise ValueError(f"shot id '{value}' is {taken} (OUT/{value.lower()}); rename the shot, e.g. "
                             f"{value.split('.')[0]}_010")
        return value


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


# --- rules that span fields: idcli/shotlist_checks.py; pydantic's errors: idcli/shotlist_problems.py

class PlaceholderError(ValueError):
    """A prompt's placeholder or brace that cannot be read, with the fix (``hint``)."""

    def __init__(self, message: str, hint: str = "write {{ and }} for literal braces") -> None:
        super().__init__(message)
        self.hint = hint


def placeholders(text: str) -> list[str]:
    """Names of ``{name}`` placeholders in a prompt; ``{{`` and ``}}`` are literal braces."""
    names = []
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:  # "Single '}' encountered in format string": Python's words, not idcli's
        raise _unpaired_brace(text) or PlaceholderError(f"the braces do not pair up ({exc})") from None
    for _literal, field_name, spec, conversion in fields:
        if field_name is None:
            continue
        plain = ascii_spelling(field_name) if not spec and not conversion else None
        if plain is not None and CHARACTER_NAME.fullmatch(plain):  # {renée}: a name, in letters a name cannot have
            raise PlaceholderError(f"'{{{field_name}}}' is no character placeholder: character names are ASCII",
                                   f"write {{{plain}}}, with the character named {plain}")
        if spec or conversion or not CHARACTER_NAME.fullmatch(field_name):
            field = f"{field_name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}"
            pasted = wildcard_words(field)  # {red|blue}, { mara }: said as what they are, with their fix
            raise (PlaceholderError(*pasted) if pasted
                   else PlaceholderError(f"'{{{field}}}' is not a character placeholder"))
        names.append(field_name)
    return names


def _unpaired_brace(text: str) -> PlaceholderError | None:
    """The first brace of ``text`` that pairs with none, said with where it is in the text (the 1-based character
    and the words around it); ``{{`` and ``}}`` are literal braces (docs/shot-lists.md)."""
    i = 0
    while i < len(text):
        if text.startswith(("{{", "}}"), i):
            i += 2
            continue
        if text[i] == "{":
            close = text.find("}", i + 1)
            if close < 0:
                return PlaceholderError(f"the '{{' at character {i + 1} opens a placeholder that no '}}' closes: "
                                        f"{_around(text, i)}", "close it: {name}, or write {{ for a literal '{'")
            i = close + 1
            continue
        if text[i] == "}":
            return PlaceholderError(f"the '}}' at character {i + 1} closes no placeholder: {_around(text, i)}",
                                    "write }} for a literal '}'; a placeholder is {name}")
        i += 1
    return None


def _around(text: str, i: int, reach: int = 30) -> str:
    """The words of ``text`` around character ``i``, quoted, '...' where cut."""
    start, end = max(0, i - reach), min(len(text), i + reach + 1)
    return f"'{'...' if start else ''}{text[start:end].strip()}{'...' if end < len(text) else ''}'"


# --- public entry points ------------------------------------------------------------------------

def parse_shotlist(loaded: LoadedYaml, base_dir: Path, raw_sha256: str = "", *,
                   check_files: bool = True) -> LoadedShotList:
    """Validate a loaded YAML document as a shot list. Raises ShotListError with every problem.
    ``check_files=False``: not whether the files it names exist (review commands read only its order)."""
    from .shotlist_checks import semantic_problems, shotlist_notes  # they read the models defined above
    from .shotlist_problems import partial_shotlist, problems_from_validation

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
        # Every problem at once (README): the checks after the types run for what parsed (see partial_shotlist).
        problems = problems_from_validation(exc, loaded)
        try:
            partial = partial_shotlist(data, exc, loaded)
        except RecursionError:  # a part nested too deeply: its type errors are what it gets
            partial = None
        later = semantic_problems(partial, loaded, base_dir, check_files) if partial is not None else []
        if later:  # in the file's order, as a reader goes through it
            problems = in_file_order(problems + later)
        parsed = LoadedShotList(partial, loaded.source, base_dir, raw_sha256, loaded) if partial is not None else None
        raise ShotListError(loaded.source, problems, parsed) from None
    except RecursionError:
        raise ShotListError(loaded.source, [Problem("the document is nested too deeply")]) from None
    problems = semantic_problems(doc, loaded, base_dir, check_files)
    if problems:
        raise ShotListError(loaded.source, problems, LoadedShotList(doc, loaded.source, base_dir, raw_sha256, loaded))
    return LoadedShotList(doc, loaded.source, base_dir, raw_sha256, loaded, tuple(shotlist_notes(doc, loaded)))


def load_shotlist(path: str | os.PathLike[str], *, check_files: bool = True) -> LoadedShotList:
    """Read, bound, parse and validate a shot-list file (``check_files``: see parse_shotlist)."""
    import hashlib

    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        from .errors import InputError

        raise InputError(f"load_shotlist({path!r}): give the path of a shot-list file (str or pathlib.Path)")
    path = Path(path)
    from .shotlist_problems import decimal_comma_hint

    raw = read_document(path)  # read once: the hash is of the very bytes parsed
    loaded = load_yaml_bytes(raw, str(path), decimal_comma_hint)
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
    from .shotlist_problems import decimal_comma_hint

    loaded = load_yaml_bytes(raw, source, decimal_comma_hint)
    return parse_shotlist(loaded, Path(base_dir).resolve(), hashlib.sha256(raw).hexdigest())


__all__ = [
    "AGGREGATIONS", "FRAMINGS", "METHODS", "PRESETS", "SAMPLERS", "Character", "LoadedShotList", "MethodParams",
    "ModelSpec", "RenderParams", "Shot",
    "ShotList", "json_schema", "load_shotlist", "loads_shotlist", "placeholders",
]
