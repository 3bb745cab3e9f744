"""What ``idcli.render`` loads again when a process calls it again (docs/performance.md, "the engine kept").

python tools/measure_engine_reuse.py [--variant faceid|faceid-plusv2|none] [--calls 7] [--preset bench-sd15]
                                     [--reproduce]

Renders a one-shot list (character ``mara`` from the recipe selfies unless ``--variant none``; 64x64, 2 steps,
2 takes) ``--calls`` times in this process, each into a new folder, with ``--face-models synthetic``, and times
the loaders by wrapping them: the engine's construction (``run.default_engine``), the pipeline's
(``engine.build.build_pipeline``), the adapter's (``load_faceid_adapter`` / ``load_plusv2_adapter``) and the plan
(``run.plan_shotlist``). Prints one JSON line: per loader the first call's seconds and the median of the later
calls (a loader that ran only once lists its calls). ``--preset bench-sd15`` renders the real-size SD1.5
architecture with random weights (about 4.3 GB of memory). Run it with ``PYTHONPATH`` at a checkout of the code to
measure; set ``IDCLI_HOME`` to a fresh folder to include the first run's cache writes. ``--reproduce``: one render,
then ``--calls`` calls of ``idcli.reproduce`` on its two images in turn (``reproduce`` the seconds of each call; the
loaders as above, the render's among them as the first).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SELFIES = Path(__file__).resolve().parents[1] / "recipes" / "selfies"


def shotlist(variant: str) -> str:
    adapter = "" if variant in ("none", "faceid") else f", adapter: {{variant: {variant}}}"
    mara = "characters:\n  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}\n"
    characters = "" if variant == "none" else mara
    prompt = "a pier at dusk" if variant == "none" else "{mara} on a pier at dusk"
    return (f"version: 1\nproject: reuse\nmodel: {{preset: tiny-sd{adapter}}}\n"
            "defaults: {size: 64x64, steps: 2, takes: 2}\n" + characters
            + f'shots:\n  - {{id: a010, prompt: "{prompt}"}}\n')


def timed_loaders() -> dict[str, list[float]]:
    """Wrap the loaders with timers; their seconds by label, one entry per call."""
    from idcli import run
    from idcli.engine import build, faceid_loading, faceid_plus

    times: dict[str, list[float]] = collections.defaultdict(list)

    def wrap(module: Any, name: str, label: str) -> None:
        real = getattr(module, name)

        @functools.wraps(real)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                times[label].append(time.perf_counter() - started)

        setattr(module, name, timed)

    wrap(run, "plan_shotlist", "plan")
    wrap(run, "default_engine", "engine built")
    wrap(build, "build_pipeline", "pipeline")
    wrap(faceid_loading, "load_faceid_adapter", "adapter")
    wrap(faceid_plus, "load_plusv2_adapter", "adapter")
    wrap(run, "render_pending", "render_pending")
    return times


def summary(values: list[float], calls: int) -> dict[str, Any]:
    if len(values) != calls:
        return {"calls": len(values), "each": [round(v, 3) for v in values]}
    return {"first": round(values[0], 3),
            "later_median": round(statistics.median(values[1:]), 3) if calls > 1 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="faceid", choices=["faceid", "faceid-plusv2", "none"])
    parser.add_argument("--calls", type=int, default=7)
    parser.add_argument("--preset", default=None, help="e.g. bench-sd15 (default: the shot list's tiny-sd)")
    parser.add_argument("--reproduce", action="store_true", help="time idcli.reproduce calls after one render")
    options = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    import idcli

    work = Path(tempfile.mkdtemp(prefix="engine-reuse-"))
    shutil.copytree(SELFIES, work / "selfies")
    (work / "shots.yaml").write_text(shotlist(options.variant), "utf-8")
    times = timed_loaders()
    if options.reproduce:
        reproduce_calls(work, options)
        return
    totals = []
    for call in range(options.calls):
        started = time.perf_counter()
        report = idcli.render(work / "shots.yaml", work / f"out{call}", device="cpu", face_models=Path("synthetic"),
                              batch_size=1, preset=options.preset)
        totals.append(time.perf_counter() - started)
        assert report.exit_code == 0 and report.rendered == 2, report.as_dict()
    result = {"idcli": idcli.__file__, "variant": options.variant, "preset": options.preset or "tiny-sd",
              "render": summary(totals, options.calls),
              **{label: summary(values, options.calls) for label, values in times.items()}}
    print(json.dumps(result))
    shutil.rmtree(work, ignore_errors=True)


def reproduce_calls(work: Path, options: argparse.Namespace) -> None:
    """One render, then ``options.calls`` reproduce calls of its images in turn, each checked identical."""
    import idcli

    times = timed_loaders()
    report = idcli.render(work / "shots.yaml", work / "out", device="cpu", face_models=Path("synthetic"),
                          batch_size=1, preset=options.preset)
    assert report.exit_code == 0 and report.rendered == 2, report.as_dict()
    images = [job.image for job in report.jobs]
    totals = []
    for call in range(options.calls):
        started = time.perf_counter()
        result = idcli.reproduce(images[call % 2], device="cpu", face_models=Path("synthetic"))
        totals.append(time.perf_counter() - started)
        assert result.status == "identical", result.as_dict()
    print(json.dumps({"idcli": idcli.__file__, "variant": options.variant, "preset": options.preset or "tiny-sd",
                      "reproduce": {"each": [round(t, 3) for t in totals],
                                    "median": round(statistics.median(totals), 3)},
                      **{label: {"calls": len(values), "median": round(statistics.median(values), 3)}
                         for label, values in times.items()}}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
