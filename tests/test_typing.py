"""idcli's type hints, as a pipeline engineer's type checker sees them (PEP 561: idcli/py.typed).

mypy checks the whole package and its tests with pyproject.toml's [tool.mypy], in one run (a clean run takes
seconds: docs/performance.md; pyproject lists the test modules not yet clean), and checks small scripts that
call the public names the README documents: a correct one passes, and each misuse in a wrong one is reported,
which it would not be if the lazily imported names were ``Any``.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extra (pip install -e '.[test]')")


def _mypy(*args: str, cache: Path) -> tuple[int, str]:
    """mypy with the project's configuration, run from the repository root (so ``import idcli`` is this tree)."""
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--cache-dir", str(cache), *args]
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for this file's runs: idcli is analysed once (a few seconds), not once per run."""
    return tmp_path_factory.mktemp("mypy-cache")


def test_package_ships_its_type_marker() -> None:
    """py.typed sits in the package and pyproject's package data names it (so the wheel carries it)."""
    import tomllib

    assert (ROOT / "idcli" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["idcli"]


def test_lazy_public_names_are_visible_to_type_checkers() -> None:
    """Every name idcli imports lazily (``_LAZY``) is also imported under TYPE_CHECKING, from the same module."""
    tree = ast.parse((ROOT / "idcli" / "__init__.py").read_text())
    lazy = next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_LAZY")
    guarded = next(node for node in tree.body
                   if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING")
    typed = {alias.asname or alias.name: (node.module, alias.name)
             for node in guarded.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert typed == {name: (module, attr) for name, (module, attr) in lazy.items()}


def test_package_and_its_tests_type_check_clean(mypy_cache: Path) -> None:
    """The tests too: a test's wrong type can hide a check that cannot fail (and ``mypy idcli tests`` is one run)."""
    code, output = _mypy("idcli", "tests", cache=mypy_cache)
    assert code == 0, output
    assert "Success: no issues found" in output


GOOD_SCRIPT = '''
from pathlib import Path

import idcli
import idcli.model_setup
from idcli.review.qa import QAThresholds
from idcli.review.select_list import list_selects
from idcli.review.selects import select
from idcli.superseded import kept_renders

class Bar:
    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: object) -> None: ...
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...


shots = idcli.load_shotlist(Path("recipes/quickstart.yaml"))
plan, runtime = idcli.plan_shotlist(shots)
keys: list[str] = [job.key for job in plan.jobs]
report: idcli.RenderReport = idcli.render(shots, "renders/qs", batch_size="auto", only=["a010"],
                                          qa_thresholds=QAThresholds(0.3, 0.2), progress=Bar())
counts: tuple[int, int, int] = (report.rendered, report.count("skipped"), report.failed)
for record in idcli.read_results("renders/qs", include_orphans=True, shotlist=Path("recipes/quickstart.yaml")):
    path: str = record["image"]["abs_path"]
checks = idcli.verify_folder("renders/qs").images
again = idcli.reproduce(Path("renders/qs/a010/a010_t1.png"))
status: str = again.status
# A report's files are paths (os.PathLike); shot ids go as a string, a list, a tuple or a set, as the README says.
again = idcli.reproduce(report.jobs[0].sidecar)
idcli.render(shots, "renders/qs", only=("a010", "a020"), dry_run=True)
idcli.render(shots, "renders/qs", only={"a010"}, dry_run=True)
delivered = idcli.deliver("renders/qs", "out/qs", shots="a010", all_takes=True, credentials=None)
delivered = idcli.deliver("renders/qs", "out/qs", shots=("a010", "a020"))
delivered = idcli.deliver("renders/qs", "out/qs", shots=frozenset({"a010"}))
notes: list[str] = delivered.notes
picks = select("renders/qs", ["a010=1"])
cause: str | None = idcli.plan_folder(shots, Path("renders/qs"), device="cpu")["jobs"][0]["cause"]
causes: dict[str, str] = report.stale_causes
# face_models= takes a path wherever it is taken (model_setup's list_models and fetch, plan_folder), as render's does.
faces = Path("models/buffalo_l")
rows: list[dict[str, object]] = idcli.model_setup.list_models(face_models=faces)
idcli.model_setup.fetch("sd15", face_models=faces, accept_insightface_licence=True)
cause = idcli.plan_folder(shots, "renders/qs", face_models=faces)["jobs"][0]["cause"]
standing: str = list_selects("renders/qs").selects[0].standing.value
kept: list[str] = [version.name for version in kept_renders("renders/qs", "a010_t1")]
try:
    idcli.loads_shotlist("version: 1")
except idcli.ShotListError as error:
    code: int = error.exit_code
'''

# Each line marked "# E" is a misuse the checker must report; were idcli's public names Any, none would be.
BAD_SCRIPT = '''
import idcli
from idcli.review.select_list import list_selects
from idcli.superseded import kept_renders


class NoStop:
    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: object) -> None: ...
    def note(self, text: str) -> None: ...


shots = idcli.load_shotlist(42)  # E
report = idcli.render(shots, "renders/qs", batch_size=2.5)  # E
rendered: str = report.rendered  # E
idcli.render(shots, "renders/qs", progress=NoStop())  # E
idcli.plan_shotlist(shots, device=0)  # E
idcli.read_results(out_dir=3)  # E
idcli.read_results("renders/qs", shotlist=3)  # E
idcli.verify_folder("renders/qs").no_such_field  # E
idcli.reproduce("renders/qs/a.png").status + 1  # E
idcli.deliver("renders/qs", "out", all_takes="yes")  # E
idcli.deliver("renders/qs", "out", credentials="env")  # E
idcli.plan_folder(shots, 3)  # E
list_selects(3)  # E
kept_renders("renders/qs", take=1)  # E
'''


def test_scripts_type_check_against_the_public_api(tmp_path: Path, mypy_cache: Path) -> None:
    good, bad = tmp_path / "good_pipeline.py", tmp_path / "bad_pipeline.py"
    good.write_text(GOOD_SCRIPT)
    bad.write_text(BAD_SCRIPT)
    # idcli itself is checked above: here only what the scripts do with it is reported.
    code, output = _mypy("--follow-imports=silent", str(good), cache=mypy_cache)
    assert code == 0, output
    code, output = _mypy("--follow-imports=silent", str(bad), cache=mypy_cache)
    assert code == 1, output
    reported = {int(line) for line in re.findall(rf"{re.escape(bad.name)}:(\d+): error", output)}
    marked = {n for n, line in enumerate(BAD_SCRIPT.splitlines(), 1) if line.endswith("# E")}
    assert reported == marked, output
