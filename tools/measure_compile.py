"""``--compile`` over a mixed sequence of batches: graphs compiled, fallbacks, time, and pixels against eager.

Renders the batch sequence of tests/test_compile.py (text-only, single line, dual-line with one and two
characters, a strength-0 character, batch sizes 1 to 4, a second image size) through one engine, first
uncompiled, then with the UNet compiled by ``engine/compiled.py``'s ``compile_unet`` and a backend that
counts the graphs it is handed before passing each to the real one (``eager``: runs it op by op; or
``inductor``: generates kernels). Reports per batch the graphs compiled (dynamo's ``unique_graphs``; inductor
may be handed one graph twice) and the seconds, whether torch
gave up (``fallback``), and the largest pixel difference from the uncompiled images.

    python tools/measure_compile.py [--backend eager|inductor] [--preset tiny-sd] [--steps 3] [--size 64x64]

Run against a tree whose ``idcli/engine/compiled.py`` is a shim of the earlier ``torch.compile(unet.forward,
dynamic=True)`` it gives the "before" figures of docs/performance.md. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _sequence() -> tuple[str, list[list[str]]]:
    spec = importlib.util.spec_from_file_location("test_compile", ROOT / "tests" / "test_compile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SHOTS, module.SEQUENCE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["eager", "inductor"], default="eager")
    parser.add_argument("--preset", default="tiny-sd")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", default="64x64")
    args = parser.parse_args()

    import numpy as np
    import torch
    from torch._dynamo.backends.registry import lookup_backend
    from torch._dynamo.utils import counters

    import idcli
    from idcli.engine import Engine
    from idcli.engine.compiled import compile_unet
    from idcli.models import resolve_model
    from idcli.planning import plan_shotlist
    from idcli.runtime import Runtime
    from idcli.shotlist import ModelSpec

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    shots, sequence = _sequence()
    width, height = args.size.split("x")
    shots = (shots.replace("preset: tiny-sd", f"preset: {args.preset}")
             .replace("size: 64x64, steps: 3", f"size: {width}x{height}, steps: {args.steps}")
             .replace("size: 80x64", f"size: {int(width) + 16}x{height}"))
    plan, _runtime = plan_shotlist(idcli.loads_shotlist(shots, base_dir=str(ROOT / "recipes")), device="cpu")
    requests = {job.shot_id: job.request for job in plan.jobs}
    batches = [[requests[i] for i in ids] for ids in sequence]
    engine = Engine(resolve_model(ModelSpec(preset=args.preset), Path("."), "float32"), Runtime("cpu", "float32"),
                    plan.adapter)

    eager_seconds, expected = [], []
    for batch in batches:
        started = time.perf_counter()
        expected.append([r.pixels for r in engine.render(batch)])
        eager_seconds.append(round(time.perf_counter() - started, 2))

    real = lookup_backend(args.backend)
    graphs: list[int] = []

    def counting(gm, example_inputs):
        graphs.append(len(gm.graph.nodes))
        return real(gm, example_inputs)

    compiled = compile_unet(engine.pipe.unet, counting)
    engine.compiled = compiled
    rows = []
    for ids, batch, want in zip(sequence, batches, expected, strict=True):
        before = counters["stats"]["unique_graphs"]
        started = time.perf_counter()
        results = engine.render(batch)
        seconds = time.perf_counter() - started
        diff = max(int(np.abs(r.pixels.astype(int) - w.astype(int)).max()) for r, w in zip(results, want, strict=True))
        rows.append({"batch": ids, "graphs": counters["stats"]["unique_graphs"] - before, "seconds": round(seconds, 2),
                     "max_pixel_diff": diff,
                     "fallback": next((r.facts["compile_fallback"] for r in results if "compile_fallback" in r.facts),
                                      None)})
    # torch's own count of recompile-limit hits (each one means: the rest of that function runs uncompiled)
    limit_hits = sum(n for key, n in counters["unimplemented"].items() if "recompile limit" in key.lower())
    print(json.dumps({
        "backend": args.backend, "preset": args.preset, "steps": args.steps, "size": args.size,
        "graphs": sum(r["graphs"] for r in rows), "backend_calls": len(graphs), "fallback": compiled.fallback,
        "recompile_limit_hits": limit_hits, "batches": rows,
        "eager_seconds": eager_seconds, "compiled_seconds_total": round(sum(r["seconds"] for r in rows), 1),
        "eager_seconds_total": round(sum(eager_seconds), 1),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }, indent=2))


if __name__ == "__main__":
    main()
