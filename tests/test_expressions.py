"""The expression vocabulary: the 135 terms, name lookup, intensity, prompt fragments, the command, the doc."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idcli import expressions as ex
from idcli.cli import app
from idcli.errors import EXIT_INVALID_INPUT, InputError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "idcli" / "data" / "expressions.yaml"

runner = CliRunner()

# Copied from the source list (Shaver et al., 1987), in its order, so that a term dropped or renamed
# in idcli/data/expressions.yaml fails here.
EXPECTED: dict[str, dict[str, list[str]]] = {
    "love": {
        "affection": ["adoration", "affection", "love", "fondness", "liking", "attraction", "caring", "tenderness",
                      "compassion", "sentimentality"],
        "lust": ["arousal", "desire", "lust", "passion", "infatuation"],
        "longing": ["longing"],
    },
    "joy": {
        "cheerfulness": ["amusement", "bliss", "cheerfulness", "gaiety", "glee", "jolliness", "joviality", "joy",
                         "delight", "enjoyment", "gladness", "happiness", "jubilation", "elation", "satisfaction",
                         "ecstasy", "euphoria"],
        "zest": ["enthusiasm", "zeal", "zest", "excitement", "thrill", "exhilaration"],
        "contentment": ["contentment", "pleasure"],
        "pride": ["pride", "triumph"],
        "optimism": ["eagerness", "hope", "optimism"],
        "enthrallment": ["enthrallment", "rapture"],
        "relief": ["relief"],
    },
    "surprise": {
        "surprise": ["amazement", "surprise", "astonishment"],
    },
    "anger": {
        "irritation": ["aggravation", "irritation", "agitation", "annoyance", "grouchiness", "grumpiness"],
        "exasperation": ["exasperation", "frustration"],
        "rage": ["anger", "rage", "outrage", "fury", "wrath", "hostility", "ferocity", "bitterness", "hate", "loathing",
                 "scorn", "spite", "vengefulness", "dislike", "resentment"],
        "disgust": ["disgust", "revulsion", "contempt"],
        "envy": ["envy", "jealousy"],
        "torment": ["torment"],
    },
    "sadness": {
        "suffering": ["agony", "suffering", "hurt", "anguish"],
        "sadness": ["depression", "despair", "hopelessness", "gloom", "glumness", "sadness", "unhappiness", "grief",
                    "sorrow", "woe", "misery", "melancholy"],
        "disappointment": ["dismay", "disappointment", "displeasure"],
        "shame": ["guilt", "shame", "regret", "remorse"],
        "neglect": ["alienation", "isolation", "neglect", "loneliness", "rejection", "homesickness", "defeat",
                    "dejection", "insecurity", "embarrassment", "humiliation", "insult"],
        "sympathy": ["pity", "sympathy"],
    },
    "fear": {
        "horror": ["alarm", "shock", "fear", "fright", "horror", "terror", "panic", "hysteria", "mortification"],
        "nervousness": ["anxiety", "nervousness", "tenseness", "uneasiness", "apprehension", "worry", "distress",
                        "dread"],
    },
}
EXPECTED_COUNTS = {"love": 16, "joy": 33, "surprise": 3, "anger": 29, "sadness": 37, "fear": 17}
EXPECTED_LABELS = [t for groups in EXPECTED.values() for terms in groups.values() for t in terms]


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Replaces conftest's fixture of the same name for this module: nothing here renders, so the
    # synthetic face pack it builds (torch, ONNX export: seconds) is not needed.
    monkeypatch.setenv("IDCLI_HOME", str(tmp_path_factory.mktemp("idcli-home")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("IDCLI_DEBUG", raising=False)


# --- the data -----------------------------------------------------------------------------------

def test_exactly_the_135_terms_in_the_source_order() -> None:
    vocab = ex.vocabulary()
    assert len(EXPECTED_LABELS) == len(set(EXPECTED_LABELS)) == ex.TERM_COUNT == 135
    assert list(vocab) == EXPECTED_LABELS
    assert [(t.category, t.subgroup) for t in vocab.values()] == [
        (c, g) for c, groups in EXPECTED.items() for g, terms in groups.items() for _ in terms]
    assert Counter(t.category for t in vocab.values()) == EXPECTED_COUNTS
    assert ex.categories() == tuple(EXPECTED_COUNTS)
    assert "neutral" not in vocab


def test_every_term_is_complete() -> None:
    vocab = ex.vocabulary()
    for term in (*vocab.values(), vocab.neutral):
        assert term.description.strip() and term.phrase.strip(), term.label
        assert 0 < term.default_intensity <= 1, term.label
        assert len(term.phrase.split()) <= ex.MAX_PHRASE_WORDS, term.label
        assert len(term.description) <= 300, term.label
    # Near-synonyms must still look different: no two terms share a description or a phrase.
    assert len({t.description for t in vocab.values()}) == 135
    assert len({t.phrase for t in vocab.values()}) == 135
    # Milder terms sit below their stronger neighbours.
    assert vocab["liking"].default_intensity < vocab["fondness"].default_intensity < vocab["love"].default_intensity
    assert vocab["gloom"].default_intensity < vocab["sadness"].default_intensity < vocab["grief"].default_intensity
    assert vocab["annoyance"].default_intensity < vocab["anger"].default_intensity < vocab["fury"].default_intensity
    assert vocab["contentment"].default_intensity < vocab["joy"].default_intensity < vocab["ecstasy"].default_intensity


def test_synonyms_are_unique_and_never_a_term_or_category() -> None:
    vocab = ex.vocabulary()
    reserved = {ex.normalise(n) for n in (*vocab, *vocab.categories, ex.NEUTRAL)}
    seen: dict[str, str] = {}
    for term in (*vocab.values(), vocab.neutral):
        for synonym in term.synonyms:
            key = ex.normalise(synonym)
            assert key not in reserved, synonym
            assert key not in seen, f"{synonym}: {seen.get(key)} and {term.label}"
            seen[key] = term.label
    for word, label in {"happy": "happiness", "mad": "anger", "angry": "anger", "scared": "fear", "sad": "sadness",
                        "shocked": "shock", "afraid": "fear", "furious": "fury"}.items():
        assert seen[word] == label


def test_every_category_resolves_to_its_prototype() -> None:
    vocab = ex.vocabulary()
    for category in ex.categories():
        term = ex.lookup(category)
        assert term.label == vocab.prototypes[category] == category
        assert term.category == category


@pytest.mark.parametrize(("old", "new", "message"), [
    ("synonyms: [happy]", "synonyms: [happy, mad]", "synonym 'mad' of 'anger' is already a name of 'happiness'"),
    ("synonyms: [happy]", "synonyms: [happy, Glad]", "synonym 'Glad' of 'happiness' is already a name of 'gladness'"),
    ("synonyms: [happy]", "synonyms: [joy]", "synonym 'joy' of 'happiness' is already a name of 'joy'"),
    ("synonyms: [hopeless]", "synonyms: [hopeless, Neutral]", "already a name of 'neutral'"),
    ("  - label: zest\n", "  - label: zeal\n", "term 'zeal' is listed twice"),
    ("default_intensity: 0.95\n    synonyms: [furious", "default_intensity: 1.5\n    synonyms: [furious",
     "default_intensity must be a number in (0, 1]"),
    ("{prototype: fear,", "{prototype: grief,", "prototype 'grief' is not a term of 'fear'"),
    ("category: surprise\n    subgroup: surprise\n    default_intensity: 0.6",
     "category: shock\n    subgroup: surprise\n    default_intensity: 0.6", "category 'shock' is not under"),
    ('phrase: "hopeless dull eyes, sagging brows, slack mouth, head hanging"',
     'phrase: "hopeless dull eyes, sagging brows, slack mouth, head hanging low and heavy and very sad"',
     "more than 12 words"),
])
def test_the_loader_enforces_the_rules(old: str, new: str, message: str) -> None:
    text = DATA.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ex.VocabularyError, match=re.escape(message)):
        ex.parse_vocabulary(text.replace(old, new, 1).encode())


def test_a_dropped_term_is_refused() -> None:
    text = DATA.read_text(encoding="utf-8")
    start = text.index("  - label: woe\n")
    end = text.index("  - label: misery\n")
    with pytest.raises(ex.VocabularyError, match="134 terms"):
        ex.parse_vocabulary((text[:start] + text[end:]).encode())


def test_vocabulary_hash_follows_the_file_bytes() -> None:
    import hashlib

    assert ex.vocabulary_hash() == hashlib.sha256(DATA.read_bytes()).hexdigest()
    assert ex.EXPRESSIONS_VERSION.startswith("idcli-expressions/")


def test_importing_does_not_load_torch() -> None:
    code = ("import sys; from idcli.expressions import vocabulary; vocabulary(); "
            "sys.exit(1 if {'torch', 'diffusers', 'pydantic'} & set(sys.modules) else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


# --- lookup -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "label"), [
    ("grief", "grief"), ("GRIEF", "grief"), ("  Grief\t", "grief"),
    ("happy", "happiness"), ("Mad", "anger"), ("scared", "fear"), ("shocked", "shock"), ("sad", "sadness"),
    ("self-conscious", "insecurity"), ("Self_Conscious", "insecurity"), ("selfconscious", "insecurity"),
    ("heart-broken", "grief"), ("over the moon", "elation"), ("over-the-moon", "elation"), ("fed_up", "exasperation"),
    ("enthralment", "enthrallment"), ("ARDOUR", "passion"),
    # Dashes a word processor types for '-' (script pages pasted into a shot list): hyphen, non-breaking
    # hyphen, en dash, soft hyphen; and a no-break space.
    ("heart\u2010broken", "grief"), ("Self\u2011Conscious", "insecurity"), ("over\u2013the\u2013moon", "elation"),
    ("self\u00adconscious", "insecurity"), ("poker\u00a0face", "neutral"),
    ("joy", "joy"), ("Love", "love"), ("SURPRISE", "surprise"), ("fear", "fear"),
    ("neutral", "neutral"), ("Neutral", "neutral"), ("poker face", "neutral"), ("deadpan", "neutral"),
])
def test_lookup(name: str, label: str) -> None:
    assert ex.lookup(name).label == label


def test_neutral_is_its_own_entry() -> None:
    term = ex.lookup("neutral")
    assert (term.category, term.subgroup) == ("neutral", "neutral")
    assert term is ex.vocabulary().neutral


def test_typo_suggests_the_closest_terms() -> None:
    with pytest.raises(ex.UnknownExpression) as caught:
        ex.lookup("greif")
    error = caught.value
    assert isinstance(error, InputError) and error.exit_code == EXIT_INVALID_INPUT
    assert "grief" in error.suggestions and len(error.suggestions) <= 3
    assert str(error).startswith("unknown expression 'greif' (did you mean: grief")
    assert error.hint.startswith("did you mean: grief")
    # Suggestions are canonical labels even when a synonym is what came close.
    assert ex.closest("scarred")[0] == "fear"
    assert ex.closest("hapy", n=1) == ["happiness"]
    assert all(label in ex.vocabulary() for label in ex.closest("anxous", n=3))


@pytest.mark.parametrize(("name", "meant"), [
    # Words an artist types that are none of the 135 terms: suggested by spelling they were unrelated in meaning
    # (smiling -> grumpiness, desire, dislike; crying -> caring, rage, pity).
    ("smiling", ("happiness", "joy", "cheerfulness")), ("Grinning", ("happiness", "joy", "cheerfulness")),
    ("laughing", ("amusement", "gaiety", "jolliness")),
    ("crying", ("sorrow", "grief", "anguish")), ("tearful", ("sorrow", "grief", "anguish")),
    ("in tears", ("sorrow", "grief", "anguish")), ("sobbing", ("grief", "anguish", "misery")),
    ("calm", ("neutral", "contentment")), ("relaxed", ("neutral", "contentment")),
    ("bored", ("glumness", "neutral")), ("confused", ("uneasiness",)), ("puzzled", ("uneasiness",)),
])
def test_a_common_word_for_a_face_suggests_the_terms_it_means(name: str, meant: tuple[str, ...]) -> None:
    with pytest.raises(ex.UnknownExpression) as caught:  # a hint only: the word itself stays refused
        ex.lookup(name)
    assert caught.value.suggestions == meant
    assert caught.value.hint == f"did you mean: {', '.join(meant)}?"


def test_the_words_for_a_face_are_none_of_the_vocabularys_names_and_suggest_only_its_labels() -> None:
    from idcli.expression_words import MEANT

    names = ex.vocabulary().names
    for word, labels in MEANT.items():
        assert ex.normalise(word) not in names, word  # a name of the vocabulary is taken, never suggested
        assert labels and all(ex.lookup(label).label == label for label in labels), word  # labels, or neutral


@pytest.mark.parametrize(("name", "label", "intensity"), [
    ("intense grief", "grief", 0.9), ("Very Angry", "anger", 0.85), ("a bit scared", "fear", 0.3),
    ("subtle joy", "joy", 0.3), ("extremely-sad", "sadness", 0.95), ("mildly annoyed", "annoyance", 0.3),
])
def test_an_intensity_word_in_the_label_suggests_the_intensity_field(name: str, label: str, intensity: float) -> None:
    # "intense grief" is how idcli's own prompts and sidecars say it; the label takes the term alone.
    with pytest.raises(ex.UnknownExpression) as caught:
        ex.lookup(name)
    assert caught.value.suggestions == (label,)
    assert caught.value.hint == f"did you mean: {{label: {label}, intensity: {intensity:g}}}?"


@pytest.mark.parametrize(("name", "label", "intensity"), [
    ("grief 0.8", "grief", 0.8), ("grief, 0.8", "grief", 0.8), ("grief:0.8", "grief", 0.8),
    ("Grief (0.8)", "grief", 0.8), ("sad 80%", "sadness", 0.8), ("0.5 joy", "joy", 0.5), ("fear=1", "fear", 1.0),
    ("heart-broken .35", "grief", 0.35),
])
def test_a_number_written_with_the_label_suggests_the_intensity_field(name: str, label: str,
                                                                       intensity: float) -> None:
    # At 2 a.m. the intensity goes where the label is ('grief 0.8'); the suggestion keeps it, not just 'grief'.
    with pytest.raises(ex.UnknownExpression) as caught:
        ex.lookup(name)
    assert caught.value.suggestions == (label,)
    assert caught.value.hint == f"did you mean: {{label: {label}, intensity: {intensity:g}}}?"


@pytest.mark.parametrize("name", ["grief 1.5", "grief 150%", "griefx 0.8", "0.8", "grief 0.8 0.9"])
def test_a_number_out_of_range_or_beside_no_term_suggests_no_intensity(name: str) -> None:
    with pytest.raises(ex.UnknownExpression) as caught:
        ex.lookup(name)
    assert "intensity:" not in caught.value.hint


def test_an_intensity_word_alone_or_before_no_term_is_a_plain_typo() -> None:
    for name in ("very", "intense griefx"):
        with pytest.raises(ex.UnknownExpression) as caught:
            ex.lookup(name)
        assert "intensity:" not in caught.value.hint


@pytest.mark.parametrize("name", ["", "   ", "zzzzqqq", "x" * 10_000, "grief\n;rm"])
def test_unknown_names_give_one_clear_line(name: str) -> None:
    with pytest.raises(ex.UnknownExpression) as caught:
        ex.lookup(name)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 200


def test_lookup_refuses_non_text() -> None:
    with pytest.raises(TypeError):
        ex.lookup(3)  # type: ignore[arg-type]


# --- intensity and prompts ----------------------------------------------------------------------

def test_resolve_uses_the_default_or_the_given_intensity() -> None:
    default = ex.resolve("Scared")
    assert default == ex.ResolvedExpression("fear", 0.7, "fear", ex.lookup("fear").phrase)
    assert ex.resolve("scared", 0.2).intensity == 0.2
    assert ex.resolve("grief", 1).intensity == 1.0 and isinstance(ex.resolve("grief", 1).intensity, float)
    assert ex.resolve("grief", 0).intensity == 0.0
    assert ex.resolve("joy").as_record() == {"label": "joy", "intensity": 0.7, "category": "joy",
                                             "phrase": ex.lookup("joy").phrase}
    for bad in (-0.1, 1.01, float("nan"), float("inf"), True, "0.5"):
        with pytest.raises(InputError, match="intensity"):
            ex.resolve("grief", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("intensity", "band", "start"), [
    (0.0, "none", "neutral relaxed expression"),
    (0.01, "subtle", "subtle grief expression, "),
    (0.39, "subtle", "subtle grief expression, "),
    (0.4, "plain", "grief expression, "),
    (0.74, "plain", "grief expression, "),
    (0.75, "intense", "intense grief expression, "),
    (1.0, "intense", "intense grief expression, "),
])
def test_prompt_bands(intensity: float, band: str, start: str) -> None:
    assert ex.intensity_band(intensity) == band
    prompt = ex.expression_prompt(ex.resolve("grief", intensity))
    assert prompt.startswith(start)
    if band != "none":
        assert prompt.endswith(ex.lookup("grief").phrase)


def test_neutral_prompt_ignores_intensity() -> None:
    for intensity in (None, 0.0, 0.3, 1.0):
        assert ex.expression_prompt(ex.resolve("blank", intensity)) == "neutral relaxed expression"


def test_every_prompt_is_short() -> None:
    # CLIP reads 77 tokens; the expression must leave most of them to the shot's prompt.
    for label in ex.vocabulary():
        assert len(ex.expression_prompt(ex.resolve(label, 1.0)).split()) <= 16, label


# --- the command --------------------------------------------------------------------------------

def test_cli_lists_every_term() -> None:
    result = runner.invoke(app, ["expressions"])
    assert result.exit_code == 0, result.output
    for label in EXPECTED_LABELS:
        assert label in result.stdout
    for category in EXPECTED_COUNTS:
        assert f"{category}: {EXPECTED_COUNTS[category]} terms" in result.stdout
    assert "neutral" in result.stdout


def test_cli_one_category() -> None:
    result = runner.invoke(app, ["expressions", "--category", "Sadness"])
    assert result.exit_code == 0, result.output
    assert "sadness: 37 terms" in result.stdout and "grief" in result.stdout and "0.85" in result.stdout
    assert "ecstasy" not in result.stdout and "joy:" not in result.stdout


def test_cli_json() -> None:
    result = runner.invoke(app, ["expressions", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["terms"]
    assert [r["label"] for r in rows] == [*EXPECTED_LABELS, "neutral"]
    assert set(rows[0]) == {"label", "category", "subgroup", "description", "phrase", "default_intensity", "synonyms"}
    one = json.loads(runner.invoke(app, ["expressions", "--category", "surprise", "--json"]).stdout)["terms"]
    assert [r["label"] for r in one] == ["amazement", "surprise", "astonishment"]
    assert one[1]["synonyms"] == ["surprised"]


def test_cli_unknown_category_exits_2_with_a_suggestion() -> None:
    result = runner.invoke(app, ["expressions", "--category", "sadnes"])
    assert result.exit_code == 2
    assert "unknown expression category 'sadnes'" in result.stderr
    assert "did you mean: sadness" in result.stderr
    assert "Traceback" not in result.output


# --- the doc ------------------------------------------------------------------------------------

def test_the_doc_table_is_current() -> None:
    spec = importlib.util.spec_from_file_location("make_expressions_doc", ROOT / "tools" / "make_expressions_doc.py")
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    doc = (ROOT / "docs" / "expressions.md").read_text(encoding="utf-8")
    assert tool.splice(doc, tool.table()) == doc, "stale: run python tools/make_expressions_doc.py"
    for label in EXPECTED_LABELS:
        assert f"| `{label}` |" in doc
