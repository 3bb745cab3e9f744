"""A shot's prompts: placeholders resolved to descriptions, the framing and expression phrases, and for several
characters the semantic line and one identity line per character.

Split from plan.py, which makes jobs of these prompts; the wording of every prompt is decided here.
"""

from __future__ import annotations

import string
from typing import Any

from .expressions import ResolvedExpression, expression_prompt, scene_phrase
from .expressions import resolve as resolve_expression
from .method import framing_prefix, with_framing
from .render_request import IdentityLine
from .shotlist import LoadedShotList, Shot


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


def character_descriptions(loaded: LoadedShotList, names: tuple[str, ...]) -> dict[str, str | None]:
    """What each of ``names`` stands for in a prompt: its description (None: it has none, and its name stands in).
    The sidecar's ``descriptions``, by which stale_causes.py tells a description's edit from the shot's own."""
    return {name: loaded.shotlist.characters[name].description for name in names
            if name in loaded.shotlist.characters}


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


def _focused_prompt(template: str, loaded: LoadedShotList, focus: str) -> str:
    """The prompt with ``focus`` described and every other character named plainly."""
    described = loaded.shotlist.characters[focus].description or focus
    out: list[str] = []
    for literal, field_name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if field_name is not None:
            out.append(described if field_name == focus else OTHER_PERSON)
    return "".join(out)


def cast_lines(shot: Shot, loaded: LoadedShotList, cast: list[tuple[Any, float, ResolvedExpression | None]],
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
    semantic = with_framing(join_phrase(base, ", ".join(p for p in phrases if p)), framing, own)
    shift = len(framing_prefix(framing, own))
    lines = []
    for identity, strength, expression in cast:
        spans = resolve_prompt_spans(shot.prompt, loaded, identity.name)[1]
        focused = _focused_prompt(shot.prompt, loaded, identity.name)
        prompt = with_framing(join_phrase(focused, expression_prompt(expression) if expression else ""), framing, own)
        lines.append(IdentityLine(identity.name, prompt, strength,
                                  tuple((start + shift, end + shift) for start, end in spans),
                                  identity.embedding, identity.references, identity.clip))
    return semantic, lines


def shot_expression(shot: Shot) -> ResolvedExpression | None:
    """The shot's expression resolved against the vocabulary (validation has checked the label)."""
    spec = shot.expression
    if spec is None:
        return None
    label = spec if isinstance(spec, str) else spec.label
    given = None if isinstance(spec, str) else spec.intensity
    return resolve_expression(label, given if given is not None else shot.expression_intensity)


def others_expressions(shot: Shot, loaded: LoadedShotList, subject: str | None,
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


def join_phrase(text: str, phrase: str) -> str:
    """``text`` and ``phrase`` joined by a comma (``text``'s own closing comma or full stop dropped); ``text`` alone
    when there is no phrase."""
    return f"{text.rstrip().rstrip(',.')}, {phrase}" if phrase else text
