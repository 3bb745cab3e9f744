"""``idcli bench --profile DIR``: one short extra render under ``torch.profiler``, and where its time went.

After the timed run(s) the bench renders a few more jobs of the same workload (same engine, batch size and
settings but at most ``PROFILE_STEPS`` steps; counted in no figure) with the profiler on (CPU activity, and
CUDA's where the device is a GPU) and idcli's named ranges on (idcli/profile_ranges.py). It writes into DIR:

* ``top_ops.json`` and ``top_ops.txt``: the operations and kernels with the most self device time (self CPU
  time on a CPU), from ``key_averages``;
* ``trace.json.gz``: the chrome trace, kept only when it is small (``TRACE_LIMIT_BYTES`` gzip'd: the device
  tool brings back files of at most 16 MiB); otherwise left out, and the record says so (the raw trace is made
  and gzip'd in a private temporary folder, as torch does for a ``.gz`` path, and removed);

and returns the record ``idcli bench --json`` carries as ``profile``: the time by phase (UNet forwards, the
dual-line probe and fusion, VAE decode, text encoding, identity work, outside them all), on the device from the
kernels each range launched, on the host from the ranges' CPU time; with each phase's count of ranges, so that
a cost per UNet forward or per decoded image can be scaled to any step count.

The steps are capped because the profiler's record grows with every operation. An estimate, not a measurement:
SD1.5's two UNet forwards on the CPU gave 22,600 trace events (0.4 MB gzip'd, ~10 s to summarise on a busy
2-core machine); SDXL's 30 forwards, with CUDA's launch and kernel events, would give several hundred thousand,
over the trace's bound and a large part of the GPU run's budget to summarise.

The profiler sees the thread that renders only (it is thread-local): identity QA, on the commit thread, is not in
it; ``commit_thread_seconds`` of the timed run says what that costs.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..option_words import Option
from ..profile_ranges import IDENTITY, PHASES, phase, ranges_on

PROFILE_JOBS = 4  # jobs in the profiled render: a few, so the trace stays small and the extra render short
PROFILE_STEPS = 8  # at most this many denoising steps in it (see above)
TOP_OPS = 30  # rows of the top-operations table
TRACE_LIMIT_BYTES = 12 * 2**20  # a gzip'd trace larger than this is not kept
OUTSIDE = "outside"


def check_profile_folder(folder: Path) -> None:
    """``--profile`` takes a new or empty folder (checked before anything is built or rendered)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(Option("profile", folder),
                         ": give a new or empty folder (a profile never writes over earlier files)")


def profile_render(engine: Any, workload: Any, folder: Path, common: dict[str, Any], out: Path,
                   sync: Callable[[], None]) -> dict[str, Any]:
    """Render ``min(PROFILE_JOBS, jobs)`` jobs of ``workload`` under the profiler; write the tables and trace into
    ``out``; return the profile's record."""
    from torch.profiler import ProfilerActivity, profile

    from ..run import render
    from ..shotlist import load_shotlist
    from .workload import write_shotlist

    cuda = engine.device.type == "cuda"
    jobs = min(PROFILE_JOBS, workload.jobs)
    steps = min(PROFILE_STEPS, workload.steps)
    shots = write_shotlist(workload, folder, "profile.yaml", jobs=jobs, steps=steps)
    loaded = load_shotlist(shots)
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    with _identity_projection_range(engine, notes), ranges_on(), profile(activities=activities) as prof:
        sync()
        started = time.perf_counter()
        report = render(loaded, folder / "profile", engine_factory=lambda *a: engine, **common)
        sync()
        wall = time.perf_counter() - started
    if report.rendered != jobs or report.failed:
        raise RuntimeError(f"the profiled render rendered {report.rendered} of {jobs} jobs")
    started = time.perf_counter()
    events = prof.events()
    phases = phase_times(events, wall * 1e6)
    averages = prof.key_averages()
    top = top_operations(averages, cuda)
    sort_by = "self_device_time_total" if cuda else "self_cpu_time_total"
    write_tables(out, top, averages.table(sort_by=sort_by, row_limit=TOP_OPS))
    trace, trace_note = write_trace(prof, out)
    if trace_note:
        notes.append(trace_note)
    summary_seconds = time.perf_counter() - started
    return {"dir": str(out), "jobs": jobs, "steps": steps, "batch_sizes": list(report.batch_sizes),
            "wall_seconds": round(wall, 4),
            "activities": ["cpu", *(["cuda"] if cuda else [])], "time_basis": "device" if cuda else "host",
            **phases, "top_ops": "top_ops.json", "table": "top_ops.txt", "trace": trace,
            "top": top[:10], "summary_seconds": round(summary_seconds, 2), "notes": notes}


def phase_times(events: Iterable[Any], wall_us: float) -> dict[str, Any]:
    """Time by phase (``PHASES`` and ``outside``), each operation counted in its innermost idcli range only.

    Device: the duration of every kernel (and copy) an operation launched, given to the range around the
    operation. Host: each range's CPU time less the ranges nested in it; ``outside`` is the wall time less the
    phases' (host code between operations included). Events are ``torch.profiler``'s ``FunctionEvent``s.
    """
    from torch.autograd import DeviceType

    phase_of = {name: key for key, names in PHASES.items() for name in names}
    device = dict.fromkeys([*PHASES, OUTSIDE], 0.0)
    host = dict.fromkeys(PHASES, 0.0)
    ranges = {name: 0 for names in PHASES.values() for name in names}  # ranges opened, by name
    for event in events:
        if event.device_type != DeviceType.CPU or event.is_async:
            continue  # kernels are counted through the operation that launched them; GPU-side range markers never
        kernels = sum(kernel.duration for kernel in event.kernels)
        if kernels:
            device[_innermost(event, phase_of) or OUTSIDE] += kernels
        if event.name in phase_of:
            ranges[event.name] += 1
            host[phase_of[event.name]] += event.cpu_time_total
            outer = _innermost(event.cpu_parent, phase_of)
            if outer is not None:
                host[outer] -= event.cpu_time_total
    busy = sum(device.values())
    host_outside = max(0.0, wall_us - sum(host.values()))
    host_all = {**host, OUTSIDE: host_outside}
    return {
        "phases": {key: {"device_seconds": round(device[key] / 1e6, 6),
                         "device_share": round(device[key] / busy, 4) if busy else 0.0,
                         "host_seconds": round(host_all[key] / 1e6, 6),
                         "host_share": round(host_all[key] / wall_us, 4) if wall_us else 0.0}
                   for key in [*PHASES, OUTSIDE]},
        # How many times each range was opened: a UNet range per forward, a decode range per batch (per mask
        # preview too), ... so that device seconds over ranges is a cost per call.
        "ranges": ranges,
        "device_busy_seconds": round(busy / 1e6, 6),
        "device_busy_share": round(busy / wall_us, 4) if wall_us else 0.0,
    }


def _innermost(event: Any, phase_of: dict[str, str]) -> str | None:
    """The phase of ``event`` or of its nearest enclosing idcli range, or None outside them all."""
    while event is not None:
        if event.name in phase_of:
            return phase_of[event.name]
        event = event.cpu_parent
    return None


def top_operations(averages: Iterable[Any], cuda: bool) -> list[dict[str, Any]]:
    """The ``TOP_OPS`` operations and kernels with the most self device time (self CPU time without a GPU); idcli's
    own ranges are left out (the phases report them)."""
    rows = [a for a in averages if not str(a.key).startswith(("idcli.", "ProfilerStep"))]
    rows.sort(key=lambda a: a.self_device_time_total if cuda else a.self_cpu_time_total, reverse=True)
    return [{"name": str(a.key), "device_type": str(a.device_type).removeprefix("DeviceType."), "calls": a.count,
             "self_device_us": round(a.self_device_time_total, 1), "device_total_us": round(a.device_time_total, 1),
             "self_cpu_us": round(a.self_cpu_time_total, 1), "cpu_total_us": round(a.cpu_time_total, 1)}
            for a in rows[:TOP_OPS]]


# Each file of DIR is written whole under a temporary name and renamed into place (store.atomic_write): DIR is
# checked new or empty only at the start, so a link planted there later (a shared folder's owner can) is replaced,
# never written through.


def write_tables(out: Path, top: list[dict[str, Any]], table: str) -> None:
    """``top_ops.json`` (the rows ``top_operations`` gives) and ``top_ops.txt`` (profiler's own table) in ``out``."""
    from ..store import atomic_write

    atomic_write(out / "top_ops.json", (json.dumps(top, indent=1) + "\n").encode("utf-8"))
    atomic_write(out / "top_ops.txt", (table + "\n").encode("utf-8"))


def write_trace(prof: Any, out: Path) -> tuple[str | None, str | None]:
    """The chrome trace as ``trace.json.gz`` when it is at most ``TRACE_LIMIT_BYTES`` gzip'd: (file name, None);
    else nothing kept: (None, why). The raw trace and its gzip are made in a private temporary folder (as torch's
    own ``export_chrome_trace`` does for a ``.gz`` path), never in ``out``."""
    from ..errors import OutputError
    from ..store import atomic_write

    packed = out / "trace.json.gz"
    try:
        with tempfile.TemporaryDirectory(prefix="idcli-trace-") as private:
            raw, zipped = Path(private) / "trace.json", Path(private) / "trace.json.gz"
            prof.export_chrome_trace(str(raw))
            with raw.open("rb") as source, gzip.open(zipped, "wb", compresslevel=6) as target:
                shutil.copyfileobj(source, target, 2**20)
            size, raw_size = zipped.stat().st_size, raw.stat().st_size
            if size > TRACE_LIMIT_BYTES:
                return None, (f"trace not kept: {size / 2**20:.1f} MiB gzip'd ({raw_size / 2**20:.0f} MiB raw), over "
                              f"the {TRACE_LIMIT_BYTES / 2**20:.0f} MiB bound")
            atomic_write(packed, zipped.read_bytes())
    except (OSError, OutputError) as exc:
        return None, f"trace not kept: {exc}"
    return packed.name, None


@contextmanager
def _identity_projection_range(engine: Any, notes: list[str]) -> Iterator[None]:
    """The FaceID projection (embeddings to identity tokens, inside diffusers' UNet forward) in the identity range
    while the profile runs: its forward is wrapped on the instance and put back afterwards. Not with ``--compile``:
    the compiled graph holds the projection, and changing it would recompile."""
    projection = getattr(engine.pipe.unet, "encoder_hid_proj", None)
    if projection is None:
        yield
        return
    if engine.compiled is not None:
        notes.append("--compile: the FaceID projection is counted in the UNet's phase (not wrapped)")
        yield
        return
    own = projection.__dict__.get("forward")
    original = projection.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        with phase(IDENTITY):
            return original(*args, **kwargs)

    projection.forward = forward
    try:
        yield
    finally:
        if own is None:
            del projection.forward
        else:
            projection.forward = own
