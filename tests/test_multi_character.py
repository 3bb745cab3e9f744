"""Several characters per image (docs/method.md, "Several characters"), on the tiny presets, CPU float32."""

from __future__ import annotations

import json

import pytest
from golden_images import RECORD, compute

pytest.importorskip("insightface", exc_type=ImportError)

# One-character jobs of the quickstart as it was before several characters were supported (sc01_sh040
# named two characters then, with only the first conditioning: it is a two-character shot now).
QUICKSTART_ONE_CHARACTER = {"sc01_sh010_t1", "sc01_sh020_t1", "sc01_sh030_t1", "sc01_sh030_t3"}


@pytest.mark.parametrize("shot_list", ["one_character.yaml", "quickstart_before.yaml"])
def test_one_character_jobs_keep_their_keys_and_pixels(tiny_engines, shot_list) -> None:
    golden = json.loads(RECORD.read_text())[shot_list]
    only = QUICKSTART_ONE_CHARACTER if shot_list == "quickstart_before.yaml" else None
    now = compute(tiny_engines, shot_list, only)
    assert now and now == {stem: golden[stem] for stem in now}
