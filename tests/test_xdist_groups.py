"""``xdist_group`` marks keep their tests on one worker under ``--dist loadgroup`` (tests/xdist_groups.py): the Ray
tests' one cluster and test_compile.py's shared trace count on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_a_group_runs_on_one_worker_and_other_tests_spread(tmp_path: Path) -> None:
    """Under pytest 9 with xdist 3.8 every test of a group went wherever the load put it (xdist's renaming of the
    test's id did not take): here the six grouped tests alternated between the two workers."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""\
        from xdist_groups import apply_groups


        def pytest_collection_modifyitems(config, items):
            apply_groups(config, items)
        """), "utf-8")
    grouped = "import time\n\nimport pytest\n\npytestmark = pytest.mark.xdist_group('together')\n\n" + "".join(
        f"\n\ndef test_grouped_{i}():\n    time.sleep(0.2)\n" for i in range(6))
    (tmp_path / "test_grouped.py").write_text(grouped, "utf-8")
    (tmp_path / "test_free.py").write_text("".join(
        f"import time\n\n\ndef test_free_{i}():\n    time.sleep(0.2)\n\n\n" for i in range(6)), "utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-c", os.devnull,
                           "--rootdir", str(tmp_path), "-n", "2", "--dist", "loadgroup", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", done.stdout)
    assert len(ran) == 12, done.stdout
    grouped_on = {worker for worker, test in ran if "test_grouped_" in test}
    assert len(grouped_on) == 1, ran
    assert all(test.endswith("@together") for _, test in ran if "test_grouped_" in test), ran
    assert not any("@" in test for _, test in ran if "test_free_" in test), ran


def test_the_tests_collect_without_xdist() -> None:
    """``-p no:xdist`` (a machine without pytest-xdist, or a debugger run): conftest's ``-n auto`` hook was a hook
    pytest did not know, and collecting stopped at an INTERNALERROR (unknown hook 'pytest_xdist_auto_num_workers')."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-o",
                           "addopts=", "--collect-only", str(TESTS / "test_xdist_groups.py")],
                          capture_output=True, text=True, cwd=TESTS.parent, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_the_tests_collect_without_xdist" in done.stdout, done.stdout
