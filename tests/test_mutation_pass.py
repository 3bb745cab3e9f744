"""The mutation pass itself (docs/testing.md, tools/mutation_pass.py): its mutations still find their text, and
each runs the guards. Kept out of tests/test_promise_guards.py on purpose: every mutation runs that file first,
and a mutated file makes ``--check`` fail, so this test there would "kill" every mutation the guards miss."""

from __future__ import annotations

import os
from pathlib import Path


def test_every_mutation_of_the_pass_still_applies() -> None:
    """The pass is only worth re-running if its mutations still find their text: a refactor that moves a guarded
    line silently retires the mutation (selects-write-before-check did, unnoticed, for a day)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "tools/mutation_pass.py", "--check"], cwd=root, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mutations apply" in done.stdout


def test_every_mutation_runs_the_guards_and_existing_test_files_by_default() -> None:
    """A whole pass must run the guards (tests/test_promise_guards.py): they live outside the areas' tuples, and
    without them a re-run reported qa-leak-boundary and qa-low-inclusive as survivors though a threshold test there
    kills both. A test file renamed away would make a mutation 'survive' an empty run just the same, and this file
    in a mutation's run would 'kill' it through ``--check``."""
    import importlib.util
    import sys

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("mutation_pass", root / "tools" / "mutation_pass.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    for mutation in module.MUTATIONS:
        files = module.owning_tests(mutation)
        assert files[0] == "tests/test_promise_guards.py", mutation.name
        assert "tests/test_mutation_pass.py" not in files, mutation.name
        missing = [f for f in files if not (root / f.split("::")[0]).is_file()]
        assert not missing, f"{mutation.name}: {missing}"
