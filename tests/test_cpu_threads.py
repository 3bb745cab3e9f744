"""How many threads torch rendered a CPU image with: recorded in its sidecar, named by ``idcli reproduce``.

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

import torch
from cli_helpers import render_on_cpu

from idcli.reproduce import environment_differences

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
