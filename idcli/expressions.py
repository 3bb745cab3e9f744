"""The expression vocabulary: 135 emotion terms (Shaver et al., 1987), six categories and 'neutral'.

The terms, with a facial description, a short prompt phrase, a default intensity and synonyms each,
live in ``idcli/data/expressions.yaml``; this module loads them once, checks the file's rules, and
turns what a shot list writes (``dread``, ``Scared``, ``{label: grief, intensity: 0.8}``) into one
canonical term and a prompt fragment. Pure Python: nothing here imports torch.

Names are compared after normalising (see ``normalise``), so ``Self-Conscious``, ``self_conscious``
and ``selfconscious`` are one name. A category name resolves to its prototype term, which is the
term of the same name (``joy`` the category is ``joy`` the term).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from .errors import IdcliError, InputError, printable
from .suggest import closest as _closest_words

# Bump when the way a resolved expression becomes prompt text changes (bands, template): sidecars record it
# with vocabulary_hash() (expression.vocabulary). Job keys need neither: they hold the prompt text itself.
EXPRESSIONS_VERSION = "idcli-expressions/1"

NEUTRAL = "neutral"
TERM_COUNT = 135
MAX_PHRASE_WORDS = 12  # CLIP reads 77 tokens; the expression must leave room for the shot's prompt

# Intensity bands of expression_prompt(): 0 shows nothing (neutral face); below SUBTLE_BELOW the
# term is 'subtle', from INTENSE_FROM on 'intense', and in between it is written plainly.
SUBTLE_BELOW = 0.4
INTENSE_FROM = 0.75
NEUTRAL_PROMPT = "neutral relaxed expression"

_DATA_FILE = "expressions.yaml"
_LABEL = re.compile(r"[a-z]+")
# Spaces, "_" and "-", including the dashes word processors type for "-" (hyphen, non-breaking hyphen,
# figure/en/em dash, minus) and the invisible soft hyphen: a label pasted from a script page still matches.
_SEPARATORS = re.compile(r"[\s_\-\u00ad\u2010-\u2015\u2212]+")
_MAX_NAME = 64  # as the shot list's expression label; longer names are not searched for suggestions
_TERM_KEYS = {"label", "category", "subgroup", "description", "phrase", "default_intensity", "synonyms"}
_NEUTRAL_KEYS = {"description", "phrase", "default_intensity", "synonyms"}


@dataclass(frozen=True)
class ExpressionTerm:
    """One term of the vocabulary (or 'neutral', whose category and subgroup are 'neutral')."""

    label: str
    category: str
    subgroup: str
    description: str  # how the face looks, for people: brows, eyes, mouth, head
    phrase: str  # what goes into the prompt, at most MAX_PHRASE_WORDS words
    default_intensity: float  # 0 < x <= 1; used when a shot gives no intensity
    synonyms: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "category": self.category, "subgroup": self.subgroup,
                "description": self.description, "phrase": self.phrase,
                "default_intensity": self.default_intensity, "synonyms": list(self.synonyms)}


@dataclass(frozen=True)
class ResolvedExpression:
    """A shot's expression after lookup: the canonical label and the intensity to render."""

    label: str
    intensity: float
    category: str
    phrase: str

    def as_record(self) -> dict[str, Any]:
        return {"label": self.label, "intensity": self.intensity, "category": self.category, "phrase": self.phrase}


class UnknownExpression(InputError):
    """A name that is no term, synonym, category or 'neutral'; says which terms are closest.

    ``intensity``: the name was an intensity word before a known name ('intense grief'), or a number
    beside one ('grief 0.8'); the one suggestion is then that term, at this intensity.
    """

    def __init__(self, name: str, suggestions: list[str] | tuple[str, ...] = (),
                 intensity: float | None = None) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        self.intensity = intensity
        shown = printable(name if len(name) <= _MAX_NAME else name[:_MAX_NAME] + "…")
        super().__init__(f"unknown expression '{shown}' ({self.hint})" if name.strip()
                         else f"the expression label is empty ({self.hint})")

    @property
    def hint(self) -> str:
        """What to write instead, for a Problem's hint: ``did you mean: grief, relief?``."""
        if self.intensity is not None and self.suggestions:
            return f"did you mean: {{label: {self.suggestions[0]}, intensity: {self.intensity:g}}}?"
        if self.suggestions:
            return f"did you mean: {', '.join(self.suggestions)}?"
        return "'idcli expressions' lists the terms"


class UnknownCategory(InputError):
    """A category name that is not one of the six."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        hits = _closest_words(normalise(name), known, n=3, cutoff=0.5) if len(name) <= _MAX_NAME else []
        hint = f"did you mean: {', '.join(hits)}?; " if hits else ""
        super().__init__(f"unknown expression category '{printable(name[:_MAX_NAME])}' "
                         f"({hint}categories: {', '.join(known)})")


class VocabularyError(IdcliError):
    """The packaged vocabulary file breaks one of its rules: the installation is damaged."""


class Vocabulary(Mapping[str, ExpressionTerm]):
    """The 135 terms by label, in the data file's order (category, subgroup, term).

    ``neutral`` and the category prototypes are attributes, not items, so that ``len()`` and
    iteration are exactly the 135 terms.
    """

    def __init__(self, terms: dict[str, ExpressionTerm], neutral: ExpressionTerm,
                 prototypes: dict[str, str], category_descriptions: dict[str, str]) -> None:
        self._terms = terms
        self.neutral = neutral
        self.prototypes = prototypes  # category -> the term a category name resolves to
        self.category_descriptions = category_descriptions
        self._names = self._index()

    def __getitem__(self, label: str) -> ExpressionTerm:
        return self._terms[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.prototypes)

    @property
    def names(self) -> Mapping[str, str]:
        """Every accepted name, normalised, to its canonical label (terms, synonyms, categories, neutral)."""
        return self._names

    def term(self, label: str) -> ExpressionTerm:
        """The term with this canonical label, 'neutral' included."""
        return self.neutral if label == NEUTRAL else self._terms[label]

    def _index(self) -> dict[str, str]:
        names: dict[str, str] = {}

        def add(name: str, label: str, what: str) -> None:
            key = normalise(name)
            if not key:
                raise VocabularyError(f"{_DATA_FILE}: {what} '{name}' is empty once normalised")
            if names.get(key, label) != label:
                raise VocabularyError(f"{_DATA_FILE}: {what} '{name}' of '{label}' is also a name of '{names[key]}'")
            names[key] = label

        for label in self._terms:
            add(label, label, "term")
        add(NEUTRAL, NEUTRAL, "label")
        for category, prototype in self.prototypes.items():
            add(category, prototype, "category")  # a category named like a term must be that term
        for term in (*self._terms.values(), self.neutral):
            for synonym in term.synonyms:
                # Never a term, category or another synonym, even of the same term: one name, one meaning.
                if normalise(synonym) in names:
                    raise VocabularyError(f"{_DATA_FILE}: synonym '{synonym}' of '{term.label}' is already a name "
                                          f"of '{names[normalise(synonym)]}'")
                add(synonym, term.label, "synonym")
        return names


def normalise(name: str) -> str:
    """The form names are compared in: NFKC, case-folded, without spaces, '_' or dashes ('-', '‐', '–' ...)."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", name).casefold())


# --- loading and checking the data file ---------------------------------------------------------

def _data_bytes() -> bytes:
    return resources.files("idcli").joinpath("data", _DATA_FILE).read_bytes()


def _text(entry: dict[str, Any], key: str, where: str, limit: int) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip() or value != value.strip() or "\n" in value:
        raise VocabularyError(f"{_DATA_FILE}: {where}.{key} must be one line of text")
    if len(value) > limit:
        raise VocabularyError(f"{_DATA_FILE}: {where}.{key} is over {limit} characters")
    return value


def _entry(entry: Any, where: str, keys: set[str], label: str, category: str, subgroup: str) -> ExpressionTerm:
    if not isinstance(entry, dict) or set(entry) != keys:
        raise VocabularyError(f"{_DATA_FILE}: {where} must have exactly the keys {', '.join(sorted(keys))}")
    phrase = _text(entry, "phrase", where, 100)
    if len(phrase.split()) > MAX_PHRASE_WORDS:
        raise VocabularyError(f"{_DATA_FILE}: {where}.phrase has more than {MAX_PHRASE_WORDS} words")
    intensity = entry["default_intensity"]
    if type(intensity) not in (int, float) or not 0 < intensity <= 1:
        raise VocabularyError(f"{_DATA_FILE}: {where}.default_intensity must be a number in (0, 1]")
    synonyms = entry["synonyms"]
    if not isinstance(synonyms, list) or not all(isinstance(s, str) and s.strip() for s in synonyms):
        raise VocabularyError(f"{_DATA_FILE}: {where}.synonyms must be a list of words")
    return ExpressionTerm(label, category, subgroup, _text(entry, "description", where, 300), phrase,
                          float(intensity), tuple(synonyms))


def parse_vocabulary(raw: bytes) -> Vocabulary:
    """Build and check a vocabulary from the data file's bytes (tests feed it altered copies)."""
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise VocabularyError(f"{_DATA_FILE}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"version", "categories", "neutral", "terms"} or data["version"] != 1:
        raise VocabularyError(f"{_DATA_FILE}: expected version 1 with categories, neutral and terms")
    if not isinstance(data["categories"], dict) or not isinstance(data["terms"], list):
        raise VocabularyError(f"{_DATA_FILE}: 'categories' must be a mapping and 'terms' a list")
    prototypes: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for name, spec in data["categories"].items():
        if not isinstance(name, str) or not _LABEL.fullmatch(name) or not isinstance(spec, dict) \
                or set(spec) != {"prototype", "description"}:
            raise VocabularyError(f"{_DATA_FILE}: categories.{name} must be {{prototype, description}}")
        prototypes[name] = str(spec["prototype"])
        descriptions[name] = _text(spec, "description", f"categories.{name}", 300)
    terms: dict[str, ExpressionTerm] = {}
    for i, entry in enumerate(data["terms"]):
        where = f"terms[{i}]"
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(label, str) or not _LABEL.fullmatch(label) or label == NEUTRAL:
            raise VocabularyError(f"{_DATA_FILE}: {where}.label must be lowercase letters (and not 'neutral')")
        if label in terms:
            raise VocabularyError(f"{_DATA_FILE}: {where}: term '{label}' is listed twice")
        category, subgroup = entry.get("category"), entry.get("subgroup")
        if category not in prototypes:
            raise VocabularyError(f"{_DATA_FILE}: {where}.category '{category}' is not under 'categories'")
        if not isinstance(subgroup, str) or not _LABEL.fullmatch(subgroup):
            raise VocabularyError(f"{_DATA_FILE}: {where}.subgroup must be lowercase letters")
        terms[label] = _entry(entry, where, _TERM_KEYS, label, category, subgroup)
    if len(terms) != TERM_COUNT:
        raise VocabularyError(f"{_DATA_FILE}: {len(terms)} terms; the vocabulary has {TERM_COUNT}")
    for category, prototype in prototypes.items():
        if prototype not in terms or terms[prototype].category != category:
            raise VocabularyError(f"{_DATA_FILE}: categories.{category}.prototype '{prototype}' is not a term "
                                  f"of '{category}'")
    neutral = _entry(data["neutral"], "neutral", _NEUTRAL_KEYS, NEUTRAL, NEUTRAL, NEUTRAL)
    return Vocabulary(terms, neutral, prototypes, descriptions)


# --- the public API -----------------------------------------------------------------------------

@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The packaged vocabulary, loaded and checked once per process."""
    return parse_vocabulary(_data_bytes())


@lru_cache(maxsize=1)
def vocabulary_hash() -> str:
    """sha256 of the data file's bytes: part of job keys, so editing a phrase re-renders its shots."""
    return hashlib.sha256(_data_bytes()).hexdigest()


def categories() -> tuple[str, ...]:
    """The six categories in the data file's order: love, joy, surprise, anger, sadness, fear."""
    return vocabulary().categories


def terms_in(category: str) -> tuple[ExpressionTerm, ...]:
    """The terms of one category (case and spaces ignored); raises UnknownCategory."""
    vocab = vocabulary()
    key = normalise(category)
    if key not in vocab.prototypes:
        raise UnknownCategory(category, vocab.categories)
    return tuple(t for t in vocab.values() if t.category == key)


def closest(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` canonical labels whose names (terms, synonyms, categories) are closest to ``name``."""
    key = normalise(name)
    if not key or len(key) > _MAX_NAME:
        return []
    names = vocabulary().names
    labels: list[str] = []
    # Several names of one term can be close (grief, grieving); ask for more and keep distinct labels.
    for hit in _closest_words(key, names, n=n * 4, cutoff=0.5):
        if names[hit] not in labels:
            labels.append(names[hit])
    return labels[:n]


# Words a writer puts before a term to say how strongly: "intense grief" is how idcli's own prompts and
# sidecars say it. The label takes the term alone (intensity is a field of its own), so an unknown label
# made of one of these and a known name is answered with that term at this intensity. Keys are words run
# together as normalise() leaves them: 'a bit' is 'abit'.
_INTENSITY_WORDS = {
    "barely": 0.2, "faintly": 0.2, "subtle": 0.3, "subtly": 0.3, "slightly": 0.3, "mildly": 0.3, "abit": 0.3,
    "alittle": 0.3, "somewhat": 0.5, "moderately": 0.5, "quite": 0.6, "very": 0.85, "really": 0.85,
    "deeply": 0.9, "intense": 0.9, "intensely": 0.9, "extremely": 0.95, "utterly": 1.0, "totally": 1.0,
}


def _intensity_and_label(name: str) -> tuple[float, str] | None:
    """('intense grief' ->) the intensity a leading intensity word says and the label of the rest, or None."""
    words = [w for w in _SEPARATORS.split(unicodedata.normalize("NFKC", name).casefold()) if w]
    names = vocabulary().names
    for cut in range(1, len(words)):
        intensity = _INTENSITY_WORDS.get("".join(words[:cut]))
        label = names.get("".join(words[cut:]))
        if intensity is not None and label is not None:
            return intensity, label
    return None


# A number written with the label, before or after it ('grief 0.8', 'grief, 0.8', 'grief (80%)', '0.5 joy'):
# the intensity put where the label is. Separators: spaces and the punctuation people put between the two.
_NUMBER = r"(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<percent>%)?"
_LABEL_AND_NUMBER = (re.compile(rf"^\s*(?P<label>.*?[^\s,:;=(\[])[\s,:;=@(\[]+{_NUMBER}[\s)\]]*$"),
                     re.compile(rf"^\s*{_NUMBER}[\s,:;=x*]+(?P<label>.+?)\s*$"))


def _number_and_label(name: str) -> tuple[float, str] | None:
    """('grief 0.8' ->) the intensity a number beside a known name says, 0..1 (or 0..100 %), and its label."""
    text = unicodedata.normalize("NFKC", name)
    for pattern in _LABEL_AND_NUMBER:
        match = pattern.match(text)
        if match is None:
            continue
        label = vocabulary().names.get(normalise(match["label"]))
        value = float(match["number"]) / (100.0 if match["percent"] else 1.0)
        if label is not None and 0.0 <= value <= 1.0:
            return value, label
    return None


def lookup(name: str) -> ExpressionTerm:
    """The term a name means: a label, a synonym, a category (its prototype) or 'neutral'.

    Case, surrounding whitespace, and spaces, '-' and '_' inside are ignored. Raises
    UnknownExpression naming the closest terms.
    """
    if not isinstance(name, str):
        raise TypeError(f"an expression name is text, not {type(name).__name__}")
    vocab = vocabulary()
    label = vocab.names.get(normalise(name))
    if label is None:
        said = (_intensity_and_label(name) or _number_and_label(name)) if len(name) <= _MAX_NAME else None
        if said is not None:
            raise UnknownExpression(name, (said[1],), intensity=said[0])
        from .expression_words import meant_terms

        # A word for a face ('smiling'): the terms it means, before the terms it is spelled like.
        raise UnknownExpression(name, meant_terms(normalise(name)) or closest(name))
    return vocab.term(label)


def resolve(label: str, intensity: float | None = None) -> ResolvedExpression:
    """A shot's expression: the canonical term and the intensity given, or the term's default."""
    term = lookup(label)
    if intensity is None:
        value = term.default_intensity
    elif isinstance(intensity, bool) or not isinstance(intensity, int | float) or not math.isfinite(intensity) \
            or not 0 <= intensity <= 1:
        raise InputError(f"expression '{term.label}': intensity {intensity!r} is not a number from 0 to 1")
    else:
        value = float(intensity)
    return ResolvedExpression(term.label, value, term.category, term.phrase)


def intensity_band(intensity: float) -> str:
    """Which band an intensity falls in: 'none' (0), 'subtle', 'plain' or 'intense'."""
    if intensity <= 0:
        return "none"
    if intensity < SUBTLE_BELOW:
        return "subtle"
    return "plain" if intensity < INTENSE_FROM else "intense"


_BAND_WORD = {"subtle": "subtle ", "plain": "", "intense": "intense "}  # before the term in prompts


def expression_prompt(resolved: ResolvedExpression) -> str:
    """The prompt fragment for an expression, e.g. ``intense grief expression, brows drawn ...``.

    Neutral, and any term at intensity 0, is the relaxed face. Kept short (at most 16 words) so that
    it fits CLIP's 77 tokens beside the shot's own prompt.
    """
    band = intensity_band(resolved.intensity)
    if resolved.label == NEUTRAL or band == "none":
        return NEUTRAL_PROMPT
    return f"{_BAND_WORD[band]}{resolved.label} expression, {resolved.phrase}"


def scene_phrase(resolved: ResolvedExpression) -> str:
    """The short form for dual-line's semantic line, e.g. ``intense grief``: enough for the scene and the
    body to read the emotion, without the facial detail the identity line carries ('' for neutral)."""
    band = intensity_band(resolved.intensity)
    if resolved.label == NEUTRAL or band == "none":
        return ""
    return _BAND_WORD[band] + resolved.label


def key_record(resolved: ResolvedExpression) -> dict[str, Any]:
    """What of an expression can change pixels: the term and its intensity (none for the relaxed face).

    The vocabulary's phrases reach the pixels only as prompt text, which the job key holds already, so
    editing a description or adding a synonym re-renders nothing; the sidecar names the vocabulary.
    """
    relaxed = resolved.label == NEUTRAL or intensity_band(resolved.intensity) == "none"
    return {"label": NEUTRAL if relaxed else resolved.label, "intensity": 0.0 if relaxed else resolved.intensity}


def vocabulary_record() -> str:
    """The vocabulary a sidecar's expression came from: its version and the data file's hash."""
    return f"{EXPRESSIONS_VERSION}:{vocabulary_hash()}"


__all__ = [
    "EXPRESSIONS_VERSION", "INTENSE_FROM", "NEUTRAL", "NEUTRAL_PROMPT", "SUBTLE_BELOW", "TERM_COUNT",
    "ExpressionTerm", "ResolvedExpression", "UnknownCategory", "UnknownExpression", "Vocabulary", "VocabularyError",
    "categories", "closest", "expression_prompt", "intensity_band", "key_record", "lookup", "normalise",
    "parse_vocabulary", "resolve", "scene_phrase", "terms_in", "vocabulary", "vocabulary_hash", "vocabulary_record",
]
