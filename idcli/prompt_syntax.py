"""Prompt syntax of other tools that idcli reads as plain words, found so that validate and plan can say so.

AUTOMATIC1111's web UI (and Forge, and compel in part) interprets bits of a prompt: ``(word:1.3)`` weights
a phrase, ``<lora:name:0.8>`` loads a LoRA, ``BREAK`` starts a new 75-token chunk, ``[from:to:0.5]`` swaps
words part-way through sampling, ``((word))`` weighs a word twice over and ``\\(`` is a literal bracket. ComfyUI
reads ``embedding:name`` as a textual-inversion embedding, and the Dynamic Prompts extension ``__name__`` as a
wildcard file and ``{a|b}`` as a random choice. idcli has none of this: every character of a prompt reaches the
text encoder as text, so a prompt pasted from A1111 renders differently there and here. Only forms that mean
nothing else in prose are looked for; plain ``(word)`` and ``[word]`` emphasis are left alone because
brackets are ordinary punctuation in a shot description. In a prompt, ``{a|b}`` is refused where placeholders are
read (``wildcard_words``): braces are idcli's placeholders; in a description it is noted here. Pure Python, no torch.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .errors import Problem
from .lists_each import lists_each
from .yamlsafe import path_text

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Python's names in double underscores that a pipeline's paths and command lines show (`__init__.py`, `-m __main__`):
# no wildcard file a prompt means. Not `__name__` or `__file__`: a wildcard of names or files is a plausible one.
_PYTHON_NAMES = ("init", "main", "pycache", "future")

# (pattern, what it is in the tool that interprets it)
_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A weight's words end in no digit: `(16:9)`, `(2.39:1)`, `(aspect 4:3)` are ratios in prose, `[10:30]` a time.
    # A number is `1`, `1.` or `1.2` one way only: `\d+\.?\d*` split a run of digits every way before failing,
    # quadratic in its length (a 4,000-character prompt, the most one holds, of digits took 0.2 s).
    (re.compile(r"\([^()]*(?<![\d.]):\s*[+-]?" + _NUMBER + r"\s*\)"), "a weight"),
    (re.compile(r"<(?:lora|lyco|hypernet|embedding):[^<>]*>", re.IGNORECASE), "a LoRA tag"),
    (re.compile(r"\bBREAK\b"), "a chunk break"),
    # [from:to:when], [from::when] and [to:when] (the words added part-way through).
    (re.compile(r"\[[^\[\]:]*(?::[^\[\]:]*)?(?<![\d.]):\s*" + _NUMBER + r"\s*\]"), "prompt editing"),
    (re.compile(r"\[[^\[\]|]+(?:\|[^\[\]|]*)+\]"), "alternating words"),
    # Brackets doubled: prose has no '((', and a weight inside, '((word:1.2))', is said as the weight alone.
    (re.compile(r"\(\([^():]*\)\)|\[\[[^\[\]:]*\]\]"), "emphasis"),
    # A1111's literal bracket: here the backslash is a token of its own before the bracket.
    (re.compile(r"\\[()\[\]]"), "an escaped bracket"),
    # ComfyUI's prefix. A1111 reads an embedding's bare name (`EasyNegative`), which is a word like any other here.
    (re.compile(r"(?<![<\w])embedding:[^\s,:()<>\[\]]+", re.IGNORECASE), "a ComfyUI embedding"),
    # Dynamic Prompts' `__name__` reads wildcards/name.txt, and keeps the words as written when there is no such file.
    # Python's own names (`__init__.py`, `python -m __main__`, quoted from a pipeline path) are no wildcard file a
    # prompt means: they read the same there as here, so a note would only be noise.
    (re.compile(r"(?<!\w)__(?!(?:" + "|".join(_PYTHON_NAMES) + r")__(?!\w))[A-Za-z0-9][\w/.-]*__(?!\w)"),
     "a wildcard file"),
    # A1111's "PNG Info" pasted whole: its negative prompt and settings lines are prompt words here.
    (re.compile(r"\bNegative prompt:"), "A1111's negative prompt line"),
    (re.compile(r"\bSteps:\s*\d+,\s*Sampler:"), "A1111's settings line"),
    # In a description or a literal text: in a prompt, braces are placeholders, and a wildcard is refused there.
    (re.compile(r"(?<!\{)\{[^{}|]*\|[^{}]*\}(?!\})"), "a wildcard"),
)


def foreign_syntax(text: str) -> list[tuple[str, str]]:
    """Each piece of ``text`` that AUTOMATIC1111 or ComfyUI would interpret, with what it is, in order of position."""
    return [(found, what) for _start, found, what in _placed_hits(text)]


def _placed_hits(text: str) -> list[tuple[int, str, str]]:
    """``foreign_syntax``'s pieces with where each starts in ``text``."""
    return sorted((m.start(), m.group(0), what) for pattern, what in _FORMS for m in pattern.finditer(text))


_READ_AS_WORDS = (": AUTOMATIC1111/ComfyUI prompt syntax, which idcli does not interpret: brackets, backslashes, "
                  "colons, numbers and keywords reach the text encoder as plain words")


def foreign_syntax_message(hits: list[tuple[str, str]]) -> str:
    """One sentence for a note: what was found and that idcli reads it as words."""
    shown = ", ".join(f"'{found}' ({what})" for found, what in hits[:3]) + (", …" if len(hits) > 3 else "")
    return shown + _READ_AS_WORDS


HINT = ("idcli has no prompt weighting, LoRA tags, embeddings or wildcards: write the words without them (a bracket "
        "needs no backslash); see docs/shot-lists.md")


# For a text holding a pasted infotext: where its parts go instead.
INFOTEXT_HINT = ("an A1111 infotext's parts are fields here: the 'Negative prompt:' line goes in negative_prompt, the "
                 "settings line in steps, guidance, sampler, size and seeds: [SEED]; the prompt keeps its first lines")
_INFOTEXT = {"A1111's negative prompt line", "A1111's settings line"}


def foreign_syntax_notes(doc: Any, loaded: Any) -> list[Problem]:
    """A note per prompt text of a shot list (``ShotList``, its ``LoadedYaml``) holding AUTOMATIC1111 syntax:
    the default and shot negative prompts, character descriptions and shot prompts, at their lines."""
    fields: list[tuple[tuple[Any, ...], str | None]] = [(("defaults", "negative_prompt"), doc.defaults.negative_prompt)]
    fields += [(("characters", name, "description"), c.description) for name, c in doc.characters.items()]
    for i, shot in enumerate(doc.shots):
        fields += [(("shots", i, "prompt"), shot.prompt), (("shots", i, "negative_prompt"), shot.negative_prompt)]
    from .text_marks import text_mark

    notes = []
    for path, text in fields:
        placed = _placed_hits(text) if text else []
        hits = [(found, what) for _start, found, what in placed]
        if text and hits:
            # At the first piece's own line when the text is written over several (a 'prompt: |' block).
            line, column = text_mark(loaded, path, text, placed[0][0]) or (None, None)
            hint = INFOTEXT_HINT if any(what in _INFOTEXT for _found, what in hits) else HINT
            notes.append(Problem(foreign_syntax_message(hits), path_text(path), line, column, hint))
    return notes


def foreign_syntax_warning(notes: list[Problem], source: str) -> str | None:
    """One line for plan and render, however many texts hold such syntax (validate lists each)."""
    if not notes:
        return None
    # The first note's place and what it found, without the sentence (a prompt may itself say "AUTOMATIC1111").
    first = replace(notes[0], message=notes[0].message.removesuffix(_READ_AS_WORDS))
    return lists_each(f"{len(notes)} prompt text{'s' if len(notes) > 1 else ''} use AUTOMATIC1111/ComfyUI syntax that "
                      "idcli reads as plain words", first, source)


def wildcard_words(field: str) -> tuple[str, str] | None:
    """What a placeholder's braces hold when it is a wildcard, ``{red|blue}`` (Dynamic Prompts' and ComfyUI's random
    choice, ``{2$$a|b|c}`` too), or a name with spaces, ``{ mara }``: the message and the fix, else None (``field``:
    the text between the braces). Refused rather than noted: idcli picks no variant, and passing the braces to the
    encoder as text would render none of them either."""
    if "|" in field:
        first = field.split("|", 1)[0].rsplit("$$", 1)[-1].strip()
        meant = f"write the one meant{f' ({first})' if first else ''}, or a shot for each"
        return (f"'{{{field}}}' is a wildcard (a random choice in Dynamic Prompts and ComfyUI), which idcli does not "
                "expand: braces hold one character's name",
                f"{meant}; {{{{ and }}}} for literal braces")
    name = field.strip()
    if name != field and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return f"'{{{field}}}' has spaces inside its braces", f"write {{{name}}}; {{{{ and }}}} for literal braces"
    return None
