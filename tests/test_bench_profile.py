"""idcli bench --profile and --check-batch-invariance: what the one H200 run brings back for later sessions to work
from (issue 16): the time by phase, the top operations, a small trace, the attention kernels torch picks, the batch
size and decode chunk chosen, and how far batch composition moves an image."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path

import pytest
import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

from idcli import profile_ranges
from idcli.bench import check_batch_invariance, format_invariance, format_report, run_bench
from idcli.bench import profile as bench_profile
from idcli.bench.profile import phase_times
from idcli.errors import InputError


def test_profile_writes_the_phases_the_top_operations_and_a_trace(tmp_path: Path, synthetic_face_models: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_profile, "PROFILE_STEPS", 2)  # 3 steps asked: the profiled render runs 2
    folder = tmp_path / "profile"
    result = run_bench("tiny-sd", jobs=5, steps=3, size=(64, 64), method="dual-line", batch_size=2, device="cpu",
                       baseline=False, qa=False, face_models=str(synthetic_face_models), profile=folder)
    data = result.as_dict()
    json.dumps(data)
    profile = data["profile"]
    # A few jobs (PROFILE_JOBS of the 5) at the bench's batch size, and not counted in the timed figures.
    assert profile["jobs"] == 4 and profile["steps"] == 2 and profile["batch_sizes"] == [2, 2]
    assert data["batch_sizes"] == [2, 2, 1] and data["forwards"]["calls"]["unet"] == 3 * 3
    assert profile["time_basis"] == "host" and profile["activities"] == ["cpu"]
    # Every phase of a dual-line render is seen, and the phases with what is outside them make the wall time.
    phases = profile["phases"]
    assert set(phases) == {"unet", "probe_fusion", "vae_decode", "text_encode", "identity", "outside"}
    for name in ("unet", "probe_fusion", "vae_decode", "text_encode", "identity"):
        assert phases[name]["host_seconds"] > 0, name
    assert sum(p["host_share"] for p in phases.values()) == pytest.approx(1.0, abs=2e-3)
    # One UNet range per forward (2 batches x 2 steps), one decode per batch; the probe and fusion once per forward
    # inside the fusion window at least.
    ranges = profile["ranges"]
    assert ranges["idcli.unet"] == 4 and ranges["idcli.vae_decode"] == 2
    assert ranges["idcli.probe"] >= 2 and ranges["idcli.fusion"] >= 2
    # The tables and the trace, with idcli's ranges in the trace.
    top = json.loads((folder / "top_ops.json").read_text())
    assert top and all(not row["name"].startswith("idcli.") for row in top)
    assert any(row["name"].startswith("aten::") for row in top) and top == profile["top"] + top[10:]
    assert top[0]["self_cpu_us"] >= top[-1]["self_cpu_us"]
    assert "Self CPU" in (folder / "top_ops.txt").read_text()
    assert profile["trace"] == "trace.json.gz" and not (folder / "trace.json").exists()
    with gzip.open(folder / "trace.json.gz") as trace:
        names = {event.get("name") for event in json.loads(trace.read())["traceEvents"]}
    assert {"idcli.unet", "idcli.probe", "idcli.fusion", "idcli.vae_decode", "idcli.identity"} <= names
    # What bench reports beside the profile: the attention kernel for each distinct attention call of the UNet
    # and the VAE, the batch size both renders got (2, as asked) and the decode chunks (a CPU decodes a batch whole).
    assert data["sdpa_backends"]["unet"] and data["sdpa_backends"]["vae"]
    assert {call["component"] for call in data["sdpa"]} == {"unet", "vae"}
    assert all(call["backend"] in {"flash", "efficient", "cudnn", "math"} for call in data["sdpa"])
    assert data["batch_size_chosen"] == 2 and data["decode_chunks"] == [2, 2, 1]
    text = format_report(result)
    assert "profile (4 jobs, host time" in text and "attention kernels (SDPA): unet" in text
    # Ranges are off again, and the FaceID projection has its own forward back.
    assert not profile_ranges.enabled()
    assert profile_ranges.phase("idcli.unet") is profile_ranges.phase("idcli.vae_decode")  # the shared no-op


def test_profile_needs_a_new_or_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "top_ops.json").write_text("{}")
    with pytest.raises(InputError, match=r"^profile=.*new or empty folder"):
        run_bench("tiny-sd", jobs=1, profile=tmp_path / "used")


def test_a_trace_over_its_bound_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_profile, "TRACE_LIMIT_BYTES", 100)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        torch.randn(64, 64) @ torch.randn(64, 64)
    name, why = bench_profile.write_trace(prof, tmp_path)
    assert name is None and "over the 0 MiB bound" in (why or "") and list(tmp_path.iterdir()) == []


def _event(name: str, start: float, end: float, kernels: tuple[float, ...] = ()) -> FunctionEvent:
    event = FunctionEvent(id=0, name=name, thread=1, start_us=start, end_us=end, use_device="cuda",
                          device_type=DeviceType.CPU)
    for duration in kernels:
        event.append_kernel(f"{name}_kernel", 0, duration)
    return event


def _child(parent: FunctionEvent, child: FunctionEvent) -> FunctionEvent:
    parent.append_cpu_child(child)
    child.set_cpu_parent(parent)
    return child


def test_each_kernel_is_counted_in_its_innermost_range() -> None:
    """As on a GPU: kernels hang on the operation that launched them; the probe runs inside a UNet forward, so its
    kernels are the probe's and not the UNet's, and its host time leaves the UNet's."""
    unet = _event("idcli.unet", 0, 100)
    _child(unet, _event("aten::mm", 1, 20, kernels=(30.0,)))
    probe = _child(unet, _event("idcli.probe", 20, 40))
    _child(probe, _event("aten::softmax", 21, 39, kernels=(5.0, 1.0)))
    decode = _event("idcli.vae_decode", 100, 150)
    conv = _child(decode, _event("aten::conv2d", 101, 149))
    _child(conv, _event("aten::cudnn_convolution", 102, 148, kernels=(40.0,)))
    step = _event("aten::add", 150, 160, kernels=(4.0,))  # the scheduler's step: outside every range
    marker = FunctionEvent(id=0, name="idcli.unet", thread=1, start_us=0, end_us=100, use_device="cuda",
                           device_type=DeviceType.CUDA)  # the GPU-side range marker kineto adds: never counted
    events = [unet, *unet.cpu_children, *probe.cpu_children, decode, conv, *conv.cpu_children, step, marker]
    assert len({id(e) for e in events}) == len(events) == 9
    times = phase_times(events, wall_us=200)
    phases = times["phases"]
    assert phases["unet"]["device_seconds"] == pytest.approx(30e-6)
    assert phases["probe_fusion"]["device_seconds"] == pytest.approx(6e-6)
    assert phases["vae_decode"]["device_seconds"] == pytest.approx(40e-6)
    assert phases["outside"]["device_seconds"] == pytest.approx(4e-6)
    assert times["device_busy_seconds"] == pytest.approx(80e-6) and times["device_busy_share"] == 0.4
    assert phases["vae_decode"]["device_share"] == 0.5
    assert phases["unet"]["host_seconds"] == pytest.approx(80e-6)  # 100 less the probe's 20
    assert phases["probe_fusion"]["host_seconds"] == pytest.approx(20e-6)
    assert phases["outside"]["host_seconds"] == pytest.approx(50e-6)  # 200 - 100 - 50
    assert times["ranges"]["idcli.unet"] == 1 and times["ranges"]["idcli.probe"] == 1


def test_ranges_are_free_when_off_and_record_functions_when_on() -> None:
    calls = []

    @profile_ranges.ranged(profile_ranges.FUSION)
    def work(x: int) -> int:
        calls.append(x)
        return x + 1

    assert not profile_ranges.enabled()
    assert isinstance(profile_ranges.phase(profile_ranges.UNET), contextlib.nullcontext)
    assert work(1) == 2
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        work(2)  # off: no range
        with profile_ranges.ranges_on():
            assert work(3) == 4
            with profile_ranges.phase(profile_ranges.UNET):
                torch.ones(2).sum()
    assert not profile_ranges.enabled() and calls == [1, 2, 3]
    names = [event.name for event in prof.events()]
    assert names.count("idcli.fusion") == 1 and names.count("idcli.unet") == 1


def test_batch_invariance_compares_each_job_in_a_batch_with_it_alone(synthetic_face_models: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    record = check_batch_invariance("tiny-sd", jobs=3, steps=2, size=(64, 64), device="cpu",
                                    face_models=str(synthetic_face_models))
    json.dumps(record)
    assert record["check"] == "batch-invariance" and record["batch"] == 3 and len(record["jobs"]) == 3
    assert record["dtype"] == "float32" and record["workload"]["method"] == "single"
    # On a CPU in float32 (docs/architecture.md): at most one 8-bit level at a few values.
    assert record["max_abs_diff"] <= 1 and record["differing_share"] < 0.01
    assert record["float_max_abs_diff"] < 1e-3
    assert "3 jobs as one batch against each alone" in format_invariance(record)

    # The check can fail: an engine whose batched images drift is reported with the drift.
    from idcli.engine import Engine

    render = Engine.render

    def drifting(self, requests, *args, **kwargs):
        results = render(self, requests, *args, **kwargs)
        if len(requests) > 1:
            for result in results:
                result.image = (result.image + 4 / 255).clip(0, 1)
        return results

    monkeypatch.setattr(Engine, "render", drifting)
    drifted = check_batch_invariance("tiny-sd", jobs=2, steps=1, size=(64, 64), device="cpu",
                                     face_models=str(synthetic_face_models))
    assert drifted["max_abs_diff"] >= 3 and drifted["differing_share"] > 0.5


def test_batch_invariance_input_errors() -> None:
    with pytest.raises(InputError, match=r"^jobs=1: check_batch_invariance .* 2 or more"):
        check_batch_invariance("tiny-sd", jobs=1)
    with pytest.raises(InputError, match=r"^dtype="):
        check_batch_invariance("tiny-sd", jobs=2, dtype="fp8")


def _plant_links(folder: Path, outside: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """A link at each of ``names`` in ``folder`` to a file of its own outside it (what a co-worker who owns a shared
    --profile/--keep folder can plant there while the bench runs: the folder is checked empty only at the start)."""
    victims = {}
    for name in names:
        victim = outside / f"victim-{name}"
        victim.write_text("precious\n")
        (folder / name).symlink_to(victim)
        victims[name] = victim
    return victims


def test_profile_files_replace_links_planted_in_the_folder_never_write_through_them(tmp_path: Path) -> None:
    # Before: top_ops.json/.txt were written with write_text and the raw trace exported to DIR/trace.json, each
    # through a link planted there: the bench, run by someone else, overwrote the file the link named.
    folder, outside = tmp_path / "profile", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    victims = _plant_links(folder, outside, ("trace.json", "trace.json.gz", "top_ops.json", "top_ops.txt"))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        torch.randn(64, 64) @ torch.randn(64, 64)
    name, why = bench_profile.write_trace(prof, folder)
    bench_profile.write_tables(folder, [{"name": "aten::mm"}], "a table")
    assert name == "trace.json.gz" and why is None
    assert all(victim.read_text() == "precious\n" for victim in victims.values())
    # idcli's files are regular files now; the raw trace is made elsewhere, so the link at trace.json is left as found
    assert sorted(path.name for path in folder.iterdir()) == ["top_ops.json", "top_ops.txt", "trace.json",
                                                              "trace.json.gz"]
    assert [path.name for path in folder.iterdir() if path.is_symlink()] == ["trace.json"]
    assert json.loads((folder / "top_ops.json").read_text()) == [{"name": "aten::mm"}]
    with gzip.open(folder / "trace.json.gz") as trace:
        assert "traceEvents" in json.loads(trace.read())


def test_the_benchs_shot_list_replaces_a_link_planted_in_the_kept_folder(tmp_path: Path) -> None:
    from idcli.bench.workload import make_workload, write_shotlist

    outside = tmp_path / "outside"
    outside.mkdir()
    (victim,) = _plant_links(tmp_path, outside, ("shots.yaml",)).values()
    path = write_shotlist(make_workload("tiny-sd", 2), tmp_path)
    assert victim.read_text() == "precious\n" and not path.is_symlink() and "bench00002" in path.read_text()
