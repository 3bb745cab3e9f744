"""How many threads torch rendered a CPU image with: recorded in its sidecar, used by ``idcli reproduce``.

On a CPU, float32 sums are split between torch's threads, so a few 8-bit values can differ by one between two thread
counts. A Ray CPU worker runs with ``OMP_NUM_THREADS`` set by Ray to its CPUs (1 by default), a local run with one
thread per core: found by the farm trial of 2026-12-02, 19 of 21 images of a Ray render differed from the local
render's by 1/255 in a few pixels, with nothing in either sidecar to say why (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import render_on_cpu

from idcli.reproduce import ReproduceError, environment_differences, recorded_threads, reproduce

SHOTS = """\
version: 1
project: threads
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: 1}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
"""


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_a_cpu_render_records_the_torch_threads_it_ran_with(write_shotlist, tmp_path: Path, engine_factory) -> None:
    with torch_threads(2):
        report = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory)
    assert report.rendered == 1
    sidecar = json.loads(Path(report.jobs[0].sidecar).read_text("utf-8"))
    assert sidecar["executor"]["name"] == "local" and sidecar["executor"]["threads"] == 2, sidecar["executor"]


def test_reproduce_names_a_thread_count_other_than_the_renders() -> None:
    record = {"model": {"device": "cpu", "dtype": "float32"},
              "executor": {"name": "ray", "host": "node-1", "device": "cpu", "threads": 1}}
    with torch_threads(2):
        assert {"name": "torch threads", "recorded": 1, "now": 2} in environment_differences(record, "cpu", "float32")
    with torch_threads(1):
        assert not [d for d in environment_differences(record, "cpu", "float32") if d["name"] == "torch threads"]
    # A sidecar from before the count was recorded, or a render on a GPU: nothing to say.
    older = {"model": {"device": "cpu", "dtype": "float32"}, "executor": {"name": "local", "device": "cpu"}}
    on_gpu = {"model": {"device": "cuda", "dtype": "bfloat16"}, "executor": {"name": "ray", "device": "cuda"}}
    with torch_threads(2):
        assert not [d for d in environment_differences(older, "cpu", "float32") if d["name"] == "torch threads"]
        assert not [d for d in environment_differences(on_gpu, "cuda", "bfloat16") if d["name"] == "torch threads"]


# Two shots at 128x128: on 2 threads both differed from their 1-thread render by 1/255 (1 and 6 pixels) before
# reproduce set the recorded count (2026-12-02); at 64x64 the sums happened to round alike.
BATCH_SHOTS = """\
version: 1
project: threads
model: {preset: tiny-sd}
defaults: {size: 128x128, steps: 2, guidance: 4.0, sampler: euler, takes: 1}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
  - {id: s2, prompt: "a red car on a wet street at night"}
"""


def test_an_image_rendered_on_one_thread_reproduces_byte_for_byte_on_two(write_shotlist, tmp_path: Path,
                                                                          engine_factory) -> None:
    # A Ray CPU worker's render (Ray's OMP_NUM_THREADS=1), reproduced on a host whose torch has two threads.
    with torch_threads(1):
        report = render_on_cpu(write_shotlist(BATCH_SHOTS), tmp_path / "out", engine_factory)
    assert report.rendered == 2
    with torch_threads(2):
        for job in report.jobs:
            result = reproduce(job.sidecar, engine_factory=engine_factory)
            assert result.status == "identical", (result.max_pixel_difference, result.differing_pixels,
                                                  result.environment)
            assert torch.get_num_threads() == 2  # the host's count is its own again


def _render_one_threaded(write_shotlist, tmp_path: Path, engine_factory) -> Any:
    with torch_threads(1):
        report = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory)
    return report.jobs[0]


def test_reproduce_renders_with_the_recorded_threads_and_puts_the_hosts_back(write_shotlist, tmp_path: Path,
                                                                            engine_factory) -> None:
    job = _render_one_threaded(write_shotlist, tmp_path, engine_factory)
    seen: list[int] = []

    def watching(identity: Any, runtime: Any, adapter: Any = None) -> Any:
        engine = engine_factory(identity, runtime, adapter)

        class Watching:
            adapter_record = engine.adapter_record

            def render(self, requests: Any, **kwargs: Any) -> Any:
                seen.append(torch.get_num_threads())
                return engine.render(requests, **kwargs)

        return Watching()

    with torch_threads(2):
        assert reproduce(job.sidecar, engine_factory=watching).identical
        assert seen == [1] and torch.get_num_threads() == 2


def test_a_failing_re_render_puts_the_hosts_threads_back(write_shotlist, tmp_path: Path, engine_factory) -> None:
    job = _render_one_threaded(write_shotlist, tmp_path, engine_factory)

    def failing(identity: Any, runtime: Any, adapter: Any = None) -> Any:
        class Failing:
            adapter_record = None

            def render(self, requests: Any, **kwargs: Any) -> Any:
                raise RuntimeError(f"render failed on {torch.get_num_threads()} threads")

        return Failing()

    with torch_threads(2):
        with pytest.raises(RuntimeError, match="on 1 threads"):
            reproduce(job.sidecar, engine_factory=failing)
        assert torch.get_num_threads() == 2


def test_the_recorded_count_is_noted_where_it_cannot_be_used() -> None:
    record = {"executor": {"name": "ray", "device": "cpu", "threads": 1}}
    notes: list[str] = []
    with torch_threads(2), recorded_threads(record, "cuda", notes) as used:
        assert used is None and torch.get_num_threads() == 2  # a GPU's render: the host's count untouched
    assert notes == ["rendered on a CPU with 1 torch thread; re-rendered on cuda, where that count does not apply"]
    with recorded_threads({"executor": {"name": "local", "device": "cpu"}}, "cpu", notes) as used:
        assert used is None  # a sidecar from before the count was recorded: nothing to set, nothing to say
    assert len(notes) == 1


def test_a_thread_count_no_machine_has_is_refused_before_the_render(write_shotlist, tmp_path: Path,
                                                                    engine_factory) -> None:
    job = _render_one_threaded(write_shotlist, tmp_path, engine_factory)
    recorded = json.loads(Path(job.sidecar).read_text("utf-8"))
    for threads in (0, -1, 2.0, "1", 10**6):  # torch refuses 0; 10**6 would start a million threads
        sidecar = {**recorded, "executor": {**recorded["executor"], "threads": threads}}
        Path(job.sidecar).write_text(json.dumps(sidecar), "utf-8")
        with pytest.raises(ReproduceError, match=r"'executor\.threads' is .*; expected a whole number 1\.\.4096"):
            reproduce(job.sidecar, engine_factory=engine_factory)


def test_a_ctrl_c_just_after_the_count_is_set_still_puts_the_hosts_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C landing right after ``torch.set_num_threads(recorded)`` and before the ``try`` that puts the count back
    left a Python caller's count at the record's: the change is now made inside the guarded region."""
    real, calls = torch.set_num_threads, []

    def set_then_interrupted(count: int) -> None:
        real(count)
        calls.append(count)
        if len(calls) == 1:  # the recorded count is set; the KeyboardInterrupt arrives before the next bytecode
            raise KeyboardInterrupt

    record = {"executor": {"name": "ray", "device": "cpu", "threads": 1}}
    with torch_threads(2):
        monkeypatch.setattr(torch, "set_num_threads", set_then_interrupted)
        with pytest.raises(KeyboardInterrupt), recorded_threads(record, "cpu", []):
            pytest.fail("the render must not start")
        monkeypatch.setattr(torch, "set_num_threads", real)
        assert calls == [1, 2] and torch.get_num_threads() == 2
