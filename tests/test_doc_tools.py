"""The tools the docs name still do what the docs say: `tools/make_recipe_plate.py` draws the shipped plate
(docs/plates.md). (`tools/mutation_pass.py --check`, docs/testing.md, is kept true by tests/test_promise_guards.py.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_make_recipe_plate_draws_the_shipped_plate() -> None:
    """Broke when a third person (ines) joined make_recipe_selfies.PEOPLE: the two-person plate zipped every
    person with two positions (strict), a ValueError before anything was drawn."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec = importlib.util.spec_from_file_location("make_recipe_plate", ROOT / "tools" / "make_recipe_plate.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        drawn = np.asarray(module.plate().convert("RGB"))
    finally:
        sys.path.remove(str(ROOT / "tools"))
    with Image.open(ROOT / "recipes" / "plates" / "two_people.png") as shipped:
        assert np.array_equal(drawn, np.asarray(shipped.convert("RGB")))

