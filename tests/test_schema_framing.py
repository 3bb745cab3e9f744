"""The JSON Schema (`idcli schema`) accepts the framing words idcli accepts, and only those.

YAML editors validate shot lists against the schema; its `framing` listed only the four canonical names, so an
editor flagged `CU` or `close up`, which idcli reads as `close-up` (idcli/framing_words.py).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from idcli.framing_words import ALIASES, AMBIGUOUS, canonical_framing
from idcli.shotlist import json_schema

ACCEPTED = ["close-up", "medium", "wide", "full-body", "CU", "cu", "Close Up", "close_up", "CLOSEUP", "close-up shot",
            "MS", "medium shot", "Mid-Shot", "mid shot", "WS", "wide shot", "LS", "long shot", "FS", "full body",
            "Full-Body Shot", "full shot", " wide ", "c u", "Wide-Shot"]
REFUSED = ["ECU", "extreme close-up", "MCU", "EWS", "ELS", "OTS", "over the shoulder", "POV", "two-shot", "2S",
           "insert", "establishing shot", "wider", "wid", "closeupp", "long", "shot", "", "close-up, medium", "tight",
           "w.s."]


def _idcli_accepts(value: object) -> bool:
    try:
        return canonical_framing(value) in ALIASES
    except PydanticCustomError:
        return False


@pytest.fixture(scope="module")
def shot_validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _document(framing: object) -> dict[str, Any]:  # a shot list as YAML loads it
    return {"version": 1, "project": "p", "defaults": {"framing": framing},
            "shots": [{"id": "a", "prompt": "x", "framing": framing}]}


@pytest.mark.parametrize("framing", ACCEPTED)
def test_the_schema_accepts_every_framing_word_idcli_reads(shot_validator, framing: str) -> None:
    assert _idcli_accepts(framing)
    errors = [e.message for e in shot_validator.iter_errors(_document(framing))]
    assert errors == [], errors


@pytest.mark.parametrize("framing", [*REFUSED, 3, True])
def test_the_schema_refuses_what_idcli_refuses(shot_validator, framing: object) -> None:
    assert not _idcli_accepts(framing)
    errors = list(shot_validator.iter_errors(_document(framing)))
    assert {tuple(e.absolute_path) for e in errors} == {("defaults", "framing"), ("shots", 0, "framing")}


def test_the_schema_still_offers_the_four_canonical_names_for_completion() -> None:
    framing = json_schema()["$defs"]["Shot"]["properties"]["framing"]
    assert ["close-up", "medium", "wide", "full-body"] in [branch.get("enum") for branch in _branches(framing)]
    assert all(word.upper() not in " ".join(map(str, _branches(framing))) for word in AMBIGUOUS if len(word) > 4)


def _branches(schema: dict) -> list[dict]:
    found = [schema]
    for branch in schema.get("anyOf", []):
        found.extend(_branches(branch))
    return found


VALIDATOR = jsonschema.validators.validator_for(json_schema())(json_schema())
LETTERS = "".join(sorted(set("".join(s for spellings in ALIASES.values() for s in spellings) + "".join(ALIASES))))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=LETTERS + " _-xEC", max_size=16))
def test_schema_and_idcli_agree_on_any_word(framing: str) -> None:
    assert VALIDATOR.is_valid(_document(framing)) == _idcli_accepts(framing), repr(framing)
