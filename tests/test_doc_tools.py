"""The tools the docs name still do what the docs say: `tools/make_recipe_plate.py` draws the shipped plate
(docs/plates.md), and every mutation of `tools/mutation_pass.py` still applies (docs/testing.md: `--check`)."""

from __future__ import annotations

import importlib.util
import subprocess
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


def test_every_mutation_of_the_mutation_pass_still_applies() -> None:
    """docs/testing.md's `tools/mutation_pass.py --check`: each mutation's quoted text occurs exactly once in its
    file. `selects-write-before-check` had gone stale when select's refusal grew the picks file's rest. When code
    under a mutation changes, update the mutation's text in tools/mutation_pass.py, not the code."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "mutation_pass.py"), "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("mutations apply")
