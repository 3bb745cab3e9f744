"""Numbers that YAML 1.1 (PyYAML, the shot list's reader) reads as text, and spellings of the same number it reads
as a number.

YAML 1.1's float needs a decimal point and, with an exponent, a signed one: ``1.0e+9`` is a number, while ``1e9``,
``1.0e9`` and ``-.5`` are text (YAML 1.2 and Python read all three as numbers). So "write it without quotes" is no
fix for them: the hint offers the digits (``1000000000``), which a whole-number field accepts too, and for a field
that takes decimals the exponent YAML reads (``1.0e+9``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import yaml

_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_EXPONENT = re.compile(r"(?P<sign>[-+]?)(?P<whole>[0-9_]*)(?:\.(?P<part>[0-9_]*))?[eE](?P<esign>[-+]?)(?P<exp>[0-9]+)")
_MOST_DIGITS = 24  # beyond this, digits are no way to write a number (1e300): the exponent alone is offered


def reads_as_number(text: str) -> bool:
    """Whether YAML 1.1 reads ``text``, written unquoted, as an int or a float."""
    tag = yaml.resolver.Resolver().resolve(yaml.nodes.ScalarNode, text, (True, False))
    return tag in _NUMBER_TAGS


def digits(text: str) -> str | None:
    """``text`` (a number Python reads) in plain digits, no exponent: ``1e9`` → ``1000000000``, ``5e-1`` → ``0.5``;
    None when that would be too long to write."""
    try:
        number = Decimal(text.replace("_", ""))
    except InvalidOperation:
        return None
    plain = format(number, "f")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    if plain in {"-0", "+0"}:
        plain = "0"
    return plain if len(plain) <= _MOST_DIGITS and reads_as_number(plain) else None


def yaml_exponent(text: str) -> str | None:
    """``text``'s exponent written as YAML 1.1 reads it, a decimal point and a signed exponent: ``1e9`` →
    ``1.0e+9``; None when ``text`` has no exponent."""
    match = _EXPONENT.fullmatch(text)
    if match is None:
        return None
    spelled = (f"{match['sign']}{match['whole'] or '0'}.{match['part'] or '0'}"
               f"e{match['esign'] or '+'}{match['exp']}")
    return spelled if reads_as_number(spelled) else None


# Base 60 as YAML 1.1 writes it (``1:30``, ``1:30.5``), but also with a leading zero (``01:30``, ``0:05``), which its
# resolver reads only without one (its first part is [1-9][0-9_]*): so 01:30 and 0:05 are text.
_BASE_60 = re.compile(r"(?P<sign>[-+]?)(?P<parts>[0-9][0-9_]{0,9}(?::[0-5]?[0-9]){1,5})(?P<part>\.[0-9_]*)?")


def minutes_and_seconds(text: str) -> tuple[str, str | None] | None:
    """``01:30`` (minutes and seconds YAML 1.1 reads as text) as the number it means in digits, ``90``, and in base
    60 as YAML reads it, ``1:30`` (None where all but one part is zero: ``0:05``); None for a spelling YAML reads
    already or one that is no minutes and seconds."""
    match = _BASE_60.fullmatch(text)
    if match is None or reads_as_number(text):
        return None
    parts = match["parts"].replace("_", "").split(":")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    fraction = (match["part"] or "").replace("_", "")
    plain = digits(f"{match['sign']}{seconds}{fraction if fraction != '.' else ''}")
    if plain is None:
        return None
    while parts and int(parts[0]) == 0:
        parts.pop(0)
    spelled = (f"{match['sign']}{int(parts[0])}:{':'.join(parts[1:])}{match['part'] or ''}"
               if len(parts) > 1 else None)
    return plain, spelled if spelled is not None and reads_as_number(spelled) else None
