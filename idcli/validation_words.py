"""pydantic's validation errors of a shot list in a person's words: what was expected, what YAML read, and how
to write it ('a whole number is expected here, not the text 'abc'', not 'Input should be a valid integer')."""

from __future__ import annotations

import math
import re
from typing import Any

from .field_ranges import FieldRange
from .number_notes import octal_reading
from .number_spellings import digits, minutes_and_seconds, reads_as_number, yaml_exponent
from .yamlhints import COPIED, double_quoted, space_name, unicode_space
from .yamlsafe import PathKey

SHAPE_KINDS = {"model_type", "dict_type", "list_type", "too_short"}


def written(value: Any) -> str:
    """What YAML read, in a person's words: 'nothing', "the text 'a room'", 'the number 3' ..."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the text '{value if len(value) <= 60 else value[:57] + '...'}'"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return "a list" if isinstance(value, list) else "fields (a mapping)"


def shape_problem(kind: str, loc: PathKey, err: Any) -> tuple[str, str]:
    """Message and hint for a value of the wrong shape: a mapping or a list expected, or an empty list."""
    value, key = err.get("input"), loc[-1] if loc else ""
    if kind == "too_short":
        least, actual = err.get("ctx", {}).get("min_length", 1), err.get("ctx", {}).get("actual_length", 0)
        held = "the list is empty" if not actual else f"the list has {actual} item{'s' if actual != 1 else ''}"
        return held, f"give at least {least} item{'s' if least != 1 else ''}"
    if kind == "list_type":
        # One item given bare (`seeds: 7`, `selfies: mara.jpg`): the one-item list is what was meant.
        if isinstance(value, str | int) and not isinstance(value, bool) and isinstance(key, str):
            return (f"a list is expected here, not {written(value)}",
                    f"write a list, even of one item: {key}: [{value}]")
        return (f"a list is expected here, not {written(value)}",
                f"one '- ' item per line below '{key}:', or {key}: [a, b]" if isinstance(key, str)
                else "one '- ' item per line, or [a, b]")
    entry = "name" if kind == "dict_type" else "field"  # characters, expressions: named entries; else fields
    where = (f"{key}: {{{entry}: value, ...}}, or one '{entry}: value' per indented line below '{key}:'"
             if isinstance(key, str) else f"one '{entry}: value' per indented line after the '- '")
    return f"{entry}s written as '{entry}: value' are expected here, not {written(value)}", where


def number_hint(kind: str, loc: PathKey, value: Any, raw: str | None, allowed: FieldRange | None = None) -> str:
    """How to write the number a strict field wants, given what YAML read ('8' quoted, 8.0, yes); ``allowed``: the
    field's range, said when the number meant is outside it."""
    key = loc[-1] if loc and isinstance(loc[-1], str) else None
    if isinstance(value, bool):
        return f"'{raw or str(value).lower()}' is read as {str(value).lower()}, not as a number"
    if isinstance(value, str):
        return _text_number_hint(kind, key, value, allowed or FieldRange())
    if kind == "int_type" and isinstance(value, float) and value.is_integer():
        return f"write a whole number: {key}: {int(value)}" if key else "write a whole number"
    if kind == "int_type" and isinstance(value, float) and math.isfinite(value):  # 10.5: no quotes to drop
        return _no_decimal_part(key, value, allowed or FieldRange())
    return ""


# A decimal comma, as a European keyboard types it ('7,5'): YAML reads the text '7,5', not a number.
_DECIMAL_COMMA = re.compile(r"[-+]?[0-9]+,[0-9]+")


def _text_number_hint(kind: str, key: str | None, value: str, allowed: FieldRange) -> str:
    """The fix for a number that YAML read as text: quoted ('8'), with a decimal comma (7,5), or with a Unicode space
    (a non-breaking one, typed or copied) before or after it, which YAML does not strip as it strips its own."""
    start, end = 0, len(value)
    while start < end and (value[start] in " \t" or unicode_space(value[start])):
        start += 1
    while end > start and (value[end - 1] in " \t" or unicode_space(value[end - 1])):
        end -= 1
    text = value[start:end]
    before = [c for c in value[:start] if unicode_space(c)]
    spaces = before or [c for c in value[end:] if unicode_space(c)]
    comma = _DECIMAL_COMMA.fullmatch(text) is not None
    if comma and kind != "float_type":  # a whole-number field: a thousands separator (1,234), or a fraction (2,5)
        return _comma_in_whole_number(key, text, allowed)
    if comma:
        text = text.replace(",", ".")
    if (base_60 := minutes_and_seconds(text)) is not None and (kind == "float_type" or "." not in base_60[0]):
        ways = " or ".join(_keyed(key, way) for way in base_60 if way is not None)
        outside = allowed.outside(float(base_60[0]))
        return (f"YAML reads {text} as text, not a number (minutes and seconds are a number to it without a leading "
                f"zero); write {ways}" + (f"; {key or 'the value'} must be {allowed.words}" if outside else ""))
    try:
        number = float(text)
    except ValueError:
        return ""
    if not math.isfinite(number) or (kind != "float_type" and not number.is_integer()):
        return ""
    if spaces:
        fix = f"{key}: {text}" if key else text
        return (f"{space_name(spaces[0])} {'comes before' if before else 'follows'} the {text}: YAML reads only "
                f"ordinary spaces as spaces, so the value is text; delete it: {fix} ({COPIED})")
    range_words = f"; {key or 'the value'} must be {allowed.words}" if allowed.outside(number) else ""
    if comma:  # 'intensity: 1,5': the point is the fix, and 1.5 is still refused; said at once
        return (f"write a decimal point, not a comma: {key}: {text}" if key else f"write a decimal point: {text}") \
            + range_words
    if not reads_as_number(text):  # 1e9, 1.0e9, -.5: text to YAML 1.1 with or without quotes
        return _yaml_text_number_hint(kind, key, text) + range_words
    if (octal := octal_reading(text)) is not None:  # "010" unquoted is the octal 8: the fix would change the number
        return (f"write the number without quotes or its leading zero: {_keyed(key, str(octal[1]))} (YAML reads {text} "
                f"without quotes as the octal number {octal[0]}, a leading zero)") + range_words
    return (f"write the number without quotes: {key}: {text}" if key else "write it without quotes") + range_words


def _yaml_text_number_hint(kind: str, key: str | None, text: str) -> str:
    """``duration: 1e9``: YAML 1.1 reads an exponent without a decimal point and a sign as text; the spellings of
    the same number it reads (the exponent only where the field takes decimals: a whole-number field refuses it)."""
    plain = digits(text)
    exponent = yaml_exponent(text) if kind == "float_type" else None
    ways = [f"the digits, {_keyed(key, plain)}"] if plain is not None else []
    if exponent is not None:
        ways.append(f"a decimal point and a signed exponent, {_keyed(key, exponent)}")
    return f"YAML reads {text} as text, not a number; write {' or '.join(ways) or 'the number in digits'}"


def _comma_in_whole_number(key: str | None, text: str, allowed: FieldRange) -> str:
    """``seed: 1,234`` (a thousands separator: three digits after the comma) or ``takes: 2,5`` (a fraction, where
    a whole number is asked): the generic hint's example (``takes: 8``) answered neither."""
    whole, _, part = text.partition(",")
    if len(part) == 3:  # 'steps: 1,000': 1000 steps are still refused, said at once
        outside = f"; {key or 'the value'} must be {allowed.words}" if allowed.outside(int(whole + part)) else ""
        return f"write the number without a thousands separator: {_keyed(key, whole + part)}{outside}"
    return _no_decimal_part(key, float(f"{whole}.{part}"), allowed)


def _no_decimal_part(key: str | None, number: float, allowed: FieldRange) -> str:
    """The whole numbers either side of ``number`` that ``allowed`` takes, for a whole-number field given a fraction
    (``steps: .5``: only 1, since 0 steps is refused); none in range: the range."""
    low = math.floor(number)
    ways = [_keyed(key, str(whole)) for whole in (low, low + 1) if not allowed.outside(whole)]
    if not ways:
        return f"a whole number has no decimal part, and {key or 'the value'} must be {allowed.words}"
    return f"a whole number has no decimal part: {' or '.join(ways)}"


def _keyed(key: str | None, number: str) -> str:
    return f"{key}: {number}" if key else number


# What each strict type expects, in a person's words (several when a union's members all failed on type).
EXPECTED = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
             "string_type": "text", "list_type": "a list", "dict_type": "names written as 'name: value'",
             "model_type": "fields written as 'field: value'"}
# pydantic's bound errors, as 'must be at least 1, not 0' (the bound's name in the error's ctx).
BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


# The text fields whose words are free prose, so that a value YAML read as a list is meant as those very words.
PROSE_FIELDS = frozenset({"prompt", "negative_prompt", "description"})


def type_problem(kinds: list[str], loc: PathKey, value: Any, raw: str | None,
                 allowed: FieldRange | None = None) -> tuple[str, str]:
    """Message and hint for a value of the wrong type ('steps: abc'), in place of 'Input should be a valid
    integer'; ``kinds`` lists every union member's expectation ('a whole number or a list'); ``allowed``: a number
    field's range."""
    key = loc[-1] if loc and isinstance(loc[-1], str) else None
    wanted = " or ".join(dict.fromkeys(EXPECTED[kind] for kind in kinds))
    verb = "are" if wanted.endswith("'") else "is"  # '... written as 'field: value'' are expected
    message = f"{wanted} {verb} expected here, not {written(value)}"
    kind = kinds[0]
    hint = number_hint(kind, loc, value, raw, allowed) if kind in {"int_type", "float_type"} else ""
    if hint:
        return message, hint
    if kind == "int_type":
        hint = f"write a whole number without quotes: {key}: 8" if key else "write a whole number without quotes"
    elif kind == "float_type":
        hint = f"write a number without quotes: {key}: 0.5" if key else "write a number without quotes"
    elif kind == "bool_type":
        hint = f"write {key}: true or {key}: false, without quotes" if key else "write true or false, without quotes"
    elif kind == "string_type" and raw is not None and key in PROSE_FIELDS:
        # prompt: [dusk] -- a valid YAML list, so the fix is the very value written, quoted: not a placeholder.
        hint = f"quote the value as written: {key}: {double_quoted(raw)}"
    elif kind == "string_type":
        hint = f'quote the text: {key}: "..."' if key else 'quote the text: "..."'
    return message, hint


def bound_problem(kind: str, err: Any) -> str:
    name, words = BOUNDS[kind]
    bound = err.get("ctx", {}).get(name)
    if isinstance(bound, float) and bound.is_integer():  # the schema's 0.0 is written 0 in a shot list
        bound = int(bound)
    return f"must be {words} {bound}, not {err.get('input')}"


def length_problem(kind: str, err: Any) -> tuple[str, str]:
    """'the text is 4,001 characters long' / 'the list has 101 items', with the limit, for pydantic's
    'String should have at most ...' and 'List should have at most ... after validation'."""
    ctx, value = err.get("ctx", {}), err.get("input")
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        if isinstance(value, str) and value and not value.strip():  # 'prompt: "   "' is refused as empty is
            return "the text holds only white space", f"write at least {least} character{'s' if least != 1 else ''} " \
                "besides spaces"
        return "the text is empty", f"write at least {least} character{'s' if least != 1 else ''}"
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else None
        held = f"the text is {length:,} characters long" if length is not None else "the text is too long"
        return held, f"at most {ctx.get('max_length', 0):,} characters are allowed"
    actual, most = ctx.get("actual_length"), ctx.get("max_length", 0)
    held = f"the list has {actual:,} items" if actual is not None else "the list is too long"
    return held, f"give at most {most:,} item{'s' if most != 1 else ''}"
