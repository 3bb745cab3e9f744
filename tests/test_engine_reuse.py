"""``idcli.render`` called again and again in one process (idcli/kept_engine.py): the engine an earlier render built is
used again when it is exactly the one this render would build — the pipeline and the adapter are not loaded again —
and never when anything that identifies it changed: another adapter or none, the adapter file rewritten on disk,
another dtype. Images are those of a fresh process either way."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import cli_env, render_argv
from PIL import Image

import idcli
from idcli import kept_engine
from idcli.engine import build, faceid_loading, faceid_plus


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the pipeline and each adapter variant were loaded, by what loaded them."""
    counts: Counter[str] = Counter()

    def counted(module: Any, name: str) -> None:
        real = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counted(build, "build_pipeline")
    counted(faceid_loading, "load_faceid_adapter")
    counted(faceid_plus, "load_plusv2_adapter")
    return counts


SHOTS = """\
version: 1
project: reuse
model: {{preset: tiny-sd{adapter}}}
defaults: {{size: 64x64, steps: 2, takes: 2}}
characters:
  mara: {{selfies: [selfies/mara_1.jpg]}}
shots:
{shots}"""


def shot_list(write_shotlist, name: str, shots: str, adapter: str = "") -> Path:
    return write_shotlist(SHOTS.format(adapter=adapter, shots=shots), name)


FIRST = '  - {id: a010, prompt: "{mara} on a pier at dusk"}\n'
SECOND = '  - {id: b010, prompt: "close-up of {mara} in the rain"}\n  - {id: b020, prompt: "an empty pier"}\n'


def kept_now() -> tuple[Any, Any]:
    kept = kept_engine.kept()
    assert kept is not None, "no engine kept"
    return kept


def pixels(out: Path) -> dict[str, bytes]:
    """Every image of a folder as its decoded 8-bit pixels (a PNG's own record names its folder)."""
    return {png.name: np.asarray(Image.open(png).convert("RGB")).tobytes() for png in sorted(out.glob("*/*.png"))}


def render(shots: Path, out: Path, **kwargs: Any) -> idcli.RenderReport:
    report = idcli.render(shots, out, device="cpu", batch_size=1, **kwargs)
    assert report.exit_code == 0 and report.failed == 0, report.as_dict()
    return report


def fresh_process_render(shots: Path, out: Path) -> None:
    """The same render in a process of its own (one thread, as the tests' renders)."""
    done = subprocess.run([sys.executable, "-m", "idcli", *render_argv(shots, out), "-q"], env=cli_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def test_renders_in_one_process_load_the_model_and_adapter_once_and_make_a_fresh_processs_images(
        write_shotlist, tmp_path: Path, loads: Counter[str]) -> None:
    """Three renders of shot lists sharing the preset and the character (another shot list in between): the first
    builds the pipeline and loads the FaceID adapter, the others use that engine (before: each loaded both again).
    Every image is, byte for byte, the one a fresh process renders."""
    first = shot_list(write_shotlist, "first.yaml", FIRST)
    second = shot_list(write_shotlist, "second.yaml", SECOND)
    render(first, tmp_path / "one")
    render(second, tmp_path / "two")
    render(first, tmp_path / "three")
    assert loads == Counter({"build_pipeline": 1, "load_faceid_adapter": 1}), loads
    fresh_process_render(first, tmp_path / "fresh-first")
    fresh_process_render(second, tmp_path / "fresh-second")
    assert pixels(tmp_path / "one") == pixels(tmp_path / "three") == pixels(tmp_path / "fresh-first")
    assert pixels(tmp_path / "two") == pixels(tmp_path / "fresh-second")
    assert len(pixels(tmp_path / "two")) == 4


def test_another_adapter_or_none_builds_its_own_engine_and_nothing_leaks_into_it(
        write_shotlist, tmp_path: Path, loads: Counter[str]) -> None:
    """FaceID, then FaceID-Plus v2, then a shot list without characters, then FaceID again: each render whose adapter
    differs from the kept engine's builds its own, and its images are those it renders with no engine kept."""
    faceid = shot_list(write_shotlist, "faceid.yaml", FIRST)
    plus = shot_list(write_shotlist, "plus.yaml", FIRST, ", adapter: {variant: faceid-plusv2}")
    text = write_shotlist('version: 1\nproject: reuse\nmodel: {preset: tiny-sd}\n'
                          'defaults: {size: 64x64, steps: 2}\nshots:\n  - {id: c010, prompt: "an empty pier"}\n',
                          "text.yaml")
    render(faceid, tmp_path / "faceid")
    render(plus, tmp_path / "plus")
    render(text, tmp_path / "text")
    render(faceid, tmp_path / "faceid-again")
    assert loads == Counter({"build_pipeline": 4, "load_faceid_adapter": 2, "load_plusv2_adapter": 1}), loads
    for name, shots in (("plus", plus), ("text", text), ("faceid-again", faceid)):
        kept_engine.release()
        render(shots, tmp_path / f"{name}-alone")
        assert pixels(tmp_path / name) == pixels(tmp_path / f"{name}-alone"), name
    assert pixels(tmp_path / "faceid") == pixels(tmp_path / "faceid-again")


def test_an_adapter_file_changed_on_disk_between_renders_is_loaded_again(
        write_shotlist, tmp_path: Path, loads: Counter[str]) -> None:
    """The tiny presets' adapter is a file in IDCLI_HOME whose identity (its descriptor) does not change when its
    bytes do: a kept engine must still not render with the weights it loaded before the file was rewritten."""
    from idcli.engine.faceid_layout import write_random_faceid_adapter
    from idcli.paths import state_dir

    shots = shot_list(write_shotlist, "shots.yaml", FIRST)
    render(shots, tmp_path / "before")
    (weight,) = (state_dir() / "adapters" / "tiny-sd").glob("*.safetensors")
    write_random_faceid_adapter(build.build_random_pipeline("tiny-sd").unet, weight, seed=99)
    render(shots, tmp_path / "after")
    assert loads["load_faceid_adapter"] == 2, loads
    assert pixels(tmp_path / "after") != pixels(tmp_path / "before")
    render(shots, tmp_path / "after-again")  # the new file's engine is kept in turn
    assert loads["load_faceid_adapter"] == 2, loads
    kept_engine.release()
    render(shots, tmp_path / "alone")
    assert pixels(tmp_path / "after") == pixels(tmp_path / "after-again") == pixels(tmp_path / "alone")


def test_a_kept_engine_is_only_used_for_the_same_runtime_and_release_drops_it(
        write_shotlist, tmp_path: Path, loads: Counter[str]) -> None:
    """Another dtype is another engine; ``release()`` drops the kept one, so the next render builds again; an engine
    the caller gives (``engine_factory``) is the caller's, never kept."""
    shots = shot_list(write_shotlist, "shots.yaml", FIRST)
    render(shots, tmp_path / "float32")
    assert kept_now()[0].runtime.dtype == "float32"
    render(shots, tmp_path / "bfloat16", dtype="bfloat16")
    assert loads["build_pipeline"] == 2 and kept_now()[0].runtime.dtype == "bfloat16"
    assert kept_engine.release() is True and kept_engine.kept() is None
    assert kept_engine.release() is False
    render(shots, tmp_path / "again", dtype="bfloat16")
    assert loads["build_pipeline"] == 3
    from idcli.run import default_engine

    render(shots, tmp_path / "own", engine_factory=default_engine)
    assert loads["build_pipeline"] == 4 and kept_now()[0].runtime.dtype == "bfloat16"


def test_the_kept_engine_is_freed_when_another_is_needed_or_it_is_released(write_shotlist, tmp_path: Path) -> None:
    """At most one engine is kept, and a dropped one is freed at once (no reference cycle left for the collector):
    memory does not grow render after render, and a render needing another model never holds two."""
    import gc
    import weakref

    faceid = shot_list(write_shotlist, "faceid.yaml", FIRST)
    plus = shot_list(write_shotlist, "plus.yaml", FIRST, ", adapter: {variant: faceid-plusv2}")
    gc.disable()
    try:
        render(faceid, tmp_path / "faceid")
        first = weakref.ref(kept_now()[1])
        render(plus, tmp_path / "plus")
        assert first() is None, "the FaceID engine outlived the render that replaced it"
        second = weakref.ref(kept_now()[1])
        assert kept_engine.release() is True
        assert second() is None, "release() left the engine alive"
    finally:
        gc.enable()


def test_what_the_engine_said_when_it_loaded_the_adapter_is_said_by_every_render_that_uses_it(
        write_shotlist, tmp_path: Path, loads: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine says on its first batch what only loading the adapter shows (a pickled FaceID file without its LoRA:
    a warning of the run). A render given the kept engine must warn as the render that built it did."""
    note = "the adapter 'x.bin' carries no LoRA (no ip_adapter.*_lora.* keys)"
    monkeypatch.setattr(faceid_loading, "pickle_lora_note", lambda checkpoint, file: note)
    shots = shot_list(write_shotlist, "shots.yaml", FIRST)
    for out in ("one", "two"):
        report = render(shots, tmp_path / out)
        assert report.warnings.count(note) == 1, (out, report.warnings)
    assert loads["load_faceid_adapter"] == 1


def _counting_build() -> tuple[Any, list[Any]]:
    built: list[Any] = []

    def build_engine(model: Any, runtime: Any, adapter: Any) -> Any:
        built.append((model, runtime, adapter))
        return object()

    return build_engine, built


def test_a_hub_revision_that_names_another_commit_now_is_another_engine(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub model's job key is its id and revision (``main``); the files ``main`` names in the cache change when a
    newer snapshot is downloaded between two renders. The kept engine holds the old files: the second render builds
    its own; a render that raises keeps nothing."""
    from idcli.models import ModelIdentity
    from idcli.runtime import Runtime

    repo = tmp_path / "hub" / "models--someone--sd15"
    old, new = "a" * 40, "b" * 40
    for commit in (old, new):
        (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(old)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    model = ModelIdentity("sd15", "sd", "hub", "someone/sd15", "main", None, "float32", False)
    runtime = Runtime("cpu", "float32")
    build_engine, built = _counting_build()
    engines = []
    for _ in range(2):
        with kept_engine.lease(model, runtime, None, build_engine) as engine:
            engines.append(engine)
    assert len(built) == 1 and engines[0] is engines[1]
    (repo / "refs" / "main").write_text(new)
    with kept_engine.lease(model, runtime, None, build_engine) as engine:
        engines.append(engine)
    assert len(built) == 2 and engines[2] is not engines[1]
    assert kept_now()[0].hub_commit == new
    with pytest.raises(RuntimeError), kept_engine.lease(model, runtime, None, build_engine):
        raise RuntimeError("a render that failed")
    assert kept_engine.kept() is None


def test_two_renders_at_once_never_share_an_engine() -> None:
    """An engine's per-batch state (the rows' strengths, the attention probe, the step callback) is its render's: a
    render that starts while another holds the kept engine builds its own; the one that ends last is kept."""
    from idcli.models import ModelIdentity
    from idcli.runtime import Runtime

    model = ModelIdentity("tiny-sd", "sd", "builtin", None, None, "config", "float32", True)
    runtime = Runtime("cpu", "float32")
    build_engine, built = _counting_build()
    with kept_engine.lease(model, runtime, None, build_engine) as first:
        pass
    with kept_engine.lease(model, runtime, None, build_engine) as again:
        assert again is first and kept_engine.kept() is None  # lent, not shared
        with kept_engine.lease(model, runtime, None, build_engine) as meanwhile:
            assert meanwhile is not first and len(built) == 2
    assert kept_now()[1] is again


def test_a_compile_render_does_not_hold_the_kept_engine_while_it_builds_its_own() -> None:
    """A ``--compile`` engine is built per render and never kept; the engine an earlier render kept must not stay
    held beside it: two models on the device at once (SDXL twice) where a fresh process holds one, the memory the
    kept engine's docstring promises never to double. It is dropped before the compiled one is built."""
    from idcli.models import ModelIdentity
    from idcli.runtime import Runtime

    model = ModelIdentity("tiny-sd", "sd", "builtin", None, None, "config", "float32", True)
    plain, compiled = Runtime("cpu", "float32"), Runtime("cpu", "float32", compile=True)
    held_while_building: list[Any] = []

    def build_engine(model: Any, runtime: Any, adapter: Any) -> Any:
        held_while_building.append(kept_engine.kept())
        return object()

    with kept_engine.lease(model, plain, None, build_engine):
        pass
    assert kept_engine.kept() is not None
    with kept_engine.lease(model, compiled, None, build_engine):
        pass
    assert held_while_building == [None, None]
    assert kept_engine.kept() is None  # nor kept after it (built per call, as before)


def fresh_process_reproduce(image: str, out: Path) -> None:
    """``idcli reproduce`` in a process of its own: an engine built for it alone."""
    done = subprocess.run([sys.executable, "-m", "idcli", "reproduce", image, "--out", str(out), "--device", "cpu"],
                          env=cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_reproduce_uses_the_kept_engine_and_makes_a_fresh_processs_bytes(
        write_shotlist, tmp_path: Path, loads: Counter[str]) -> None:
    """A pipeline that checks its renders with ``idcli.reproduce`` image after image built the engine for every call
    (the pipeline and the adapter read again). Reproduce now leases the engine a render keeps: two reproduce calls
    after a render build nothing, and the PNGs they write are, byte for byte, those of a reproduce in a process of
    its own."""
    shots = shot_list(write_shotlist, "first.yaml", FIRST)
    report = render(shots, tmp_path / "out")
    images = [job.image for job in report.jobs]
    assert len(images) == 2 and loads["build_pipeline"] == 1
    results = [idcli.reproduce(image, out_dir=tmp_path / f"again-{n}", device="cpu") for n, image in enumerate(images)]
    assert [result.status for result in results] == ["identical", "identical"], [r.as_dict() for r in results]
    assert loads == Counter({"build_pipeline": 1, "load_faceid_adapter": 1}), loads
    kept_engine.release()  # reproduce alone: the first call builds, the second uses that engine
    alone = [idcli.reproduce(image, out_dir=tmp_path / f"alone-{n}", device="cpu") for n, image in enumerate(images)]
    assert [result.status for result in alone] == ["identical", "identical"]
    assert loads == Counter({"build_pipeline": 2, "load_faceid_adapter": 2}), loads
    for n, image in enumerate(images):
        fresh_process_reproduce(os.fspath(image), tmp_path / f"fresh-{n}")
        name = Path(image).name
        fresh = (tmp_path / f"fresh-{n}" / name).read_bytes()
        assert (tmp_path / f"again-{n}" / name).read_bytes() == (tmp_path / f"alone-{n}" / name).read_bytes() == fresh
