"""Shared fixtures: isolated idcli state, shot-list writers, and engines built once per session."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


@pytest.fixture(scope="session")
def synthetic_face_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic insightface pack, built once per session (building costs a second)."""
    from idcli.synthetic_faces import build_synthetic_face_pack

    return build_synthetic_face_pack(tmp_path_factory.mktemp("face-models"))


@pytest.fixture(scope="session")
def review_run(tmp_path_factory: pytest.TempPathFactory, synthetic_face_models: Path) -> Path:
    """The review shot list (review_helpers.SHOTS) rendered but for sh040: two takes each of sh010, sh020 and sh030,
    faces in the images. Rendered once for the review tests (page, picks, selects, the animatic), which each copy
    it and never change it in place."""
    from review_helpers import render_review_run

    return render_review_run(tmp_path_factory.mktemp("review-run"), synthetic_face_models,
                             only=["sh010", "sh020", "sh030"])


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Every in-process render on one CPU thread, as the subprocess renders (cli_helpers.cli_env) run.

    A CPU forward's float sums depend on how many threads split them (about 1e-6 in a tiny UNet's output),
    which can move an 8-bit pixel; the golden pixel hashes (tests/golden_images.py) are recorded on one
    thread, so the suite gives the same bytes on a 2-core CI machine and a 64-core workstation.
    """
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                    synthetic_face_models: Path) -> None:
    # One variable moves all idcli state; no test touches the user's cache or the network.
    monkeypatch.setenv("IDCLI_HOME", str(tmp_path_factory.mktemp("idcli-home")))
    # The session's synthetic face pack stands in for the preset's (tests of the preset fallback unset it).
    monkeypatch.setenv("IDCLI_FACE_MODELS", str(synthetic_face_models))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("IDCLI_DEBUG", raising=False)


@pytest.fixture(autouse=True)
def _no_kept_engine():
    """No test renders with an engine an earlier test's render left (idcli/kept_engine.py): each builds its own, as a
    fresh process would, whatever the tests patched."""
    from idcli import kept_engine

    kept_engine.release()
    yield
    kept_engine.release()


@pytest.fixture(scope="module")
def studio_ca(tmp_path_factory: pytest.TempPathFactory):
    """A test CA and a signing certificate under it (tests/c2pa_helpers.py), one per test module."""
    from c2pa_helpers import make_test_ca

    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def signing_env(studio_ca, monkeypatch: pytest.MonkeyPatch):
    """``IDCLI_C2PA_CERT``/``IDCLI_C2PA_KEY`` set to ``studio_ca``'s, as a studio signing renders sets them."""
    monkeypatch.setenv("IDCLI_C2PA_CERT", str(studio_ca.cert))
    monkeypatch.setenv("IDCLI_C2PA_KEY", str(studio_ca.key))
    return studio_ca


@pytest.fixture
def selfies(tmp_path: Path) -> Path:
    """A folder holding copies of the recipe selfies, for shot lists written in tests."""
    target = tmp_path / "selfies"
    shutil.copytree(RECIPES / "selfies", target)
    return target


@pytest.fixture
def write_shotlist(tmp_path: Path, selfies: Path):
    """Write a shot list (dedented YAML) into tmp_path and return its path."""

    def write(text: str, name: str = "shots.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), "utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def shared_plan(tmp_path_factory: pytest.TempPathFactory):
    """``shared_plan(text)``: the CPU plan of a shot list (YAML text; its selfies are the recipe selfies, under
    ``selfies/``), made once per session for each text and shared by the tests that only read it.

    Planning encodes every character's selfies (a second or more per plan on a shared core); tests that read a
    plan's jobs and render their requests (frozen dataclasses, changed only through ``dataclasses.replace``)
    need not encode them again. The first caller's isolated IDCLI_HOME holds the encodings.
    """
    from cli_helpers import plan_on_cpu

    plans: dict[str, object] = {}

    def plan(text: str):
        if text not in plans:
            folder = tmp_path_factory.mktemp("shared-plan")
            shutil.copytree(RECIPES / "selfies", folder / "selfies")
            (folder / "shots.yaml").write_text(textwrap.dedent(text), "utf-8")
            plans[text] = plan_on_cpu(folder / "shots.yaml")
        return plans[text]

    return plan


@pytest.fixture(scope="session")
def tiny_engines():
    """Engines for the tiny presets on the CPU in float32, built once (building costs seconds)."""
    from idcli.engine import Engine
    from idcli.models import resolve_model
    from idcli.runtime import Runtime
    from idcli.shotlist import ModelSpec

    cache: dict[tuple[str, bool], Engine] = {}

    def get(preset: str = "tiny-sd", adapter=None) -> Engine:
        key = (preset, adapter is not None)
        if key not in cache:
            identity = resolve_model(ModelSpec(preset=preset), Path("."), "float32")
            cache[key] = Engine(identity, Runtime("cpu", "float32"), adapter)
        return cache[key]

    return get


@pytest.fixture
def engine_factory(tiny_engines):
    """An engine_factory for idcli.render that reuses the session's engines and counts renders."""
    calls: list[int] = []

    def factory(identity, runtime, adapter=None):
        engine = tiny_engines(identity.preset, adapter)
        assert identity.random_weights and runtime.device == "cpu"

        class Counting:
            def __init__(self) -> None:
                self.inner = engine
                self.adapter_record = engine.adapter_record

            def render(self, requests, **kwargs):
                calls.append(len(requests))
                return engine.render(requests, **kwargs)

            def suggest_batch_size(self, request):
                return engine.suggest_batch_size(request)

        return Counting()

    factory.calls = calls  # type: ignore[attr-defined]
    return factory


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown, and not called, under -p no:xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): one worker per core this process may run on, at most 8, and at most one
    per 2 GB of memory.

    xdist's own count is psutil's *physical* cores where psutil is installed, which a 2-vCPU CI machine may report
    as 1 (no parallelism at all). Each worker holds torch, the session's tiny engines and face pack (about 1 GB
    measured, more while a test renders), so past that memory, not cores, is what a machine runs out of. Every
    worker runs torch on one thread (``_one_torch_thread``), so workers never fight over a core's threads.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    try:
        by_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (2 << 30)
    except (AttributeError, ValueError, OSError):  # no sysconf names: Windows
        by_memory = cores
    return max(1, min(cores, 8, by_memory))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from xdist_groups import apply_groups

    apply_groups(config, items)  # the xdist_group marks kept under pytest 9 (tests/xdist_groups.py)
    has_cuda = False
    if any("gpu" in item.keywords for item in items):
        try:
            import torch

            has_cuda = torch.cuda.is_available()
        except ImportError:
            pass
    # Slow tests (real-size builds) run only when asked for: any -m expression naming 'slow'.
    slow_asked = "slow" in (config.getoption("markexpr") or "")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
        if item.get_closest_marker("slow") is not None and not slow_asked:
            item.add_marker(pytest.mark.skip(reason="slow: run with -m slow"))


os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture
def umask() -> Iterator[Any]:
    """Set the process's umask for one test (the team-folder tests), put back after."""
    before = os.umask(0o022)
    os.umask(before)
    yield os.umask
    os.umask(before)
