#!/usr/bin/env bash
# Issue 16's H200 measurement as one prepared script: under 8 minutes, installs what the GPU machine lacks
# from wheels carried with the working tree, writes one JSON per workload and a summary table.
#
#   1. here, on a machine with pip and the package registries (once):
#        echo /.whl/ >> .git/info/exclude && tools/gpu_bench.sh --fetch-wheels
#   2. on the lent GPU machine (the device tool's `run`, carry [".whl"], timeout_s 540):
#        bash tools/gpu_bench.sh
#      the JSON files and the log land in $OUT (the device tool brings them back).
#
# GPU_BENCH_SMOKE=1 runs the same steps on tiny presets on the CPU with the current python, to check the
# script itself where there is no GPU (PYTHON=... picks the interpreter; nothing is installed then; a
# PYTHONPATH given is kept after the checkout's, so the device image's versions can be rehearsed:
# docs/performance.md, "Rehearsing the H200 run").
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS=0  # the budget below counts from here: the install is inside it
WHEELS=(diffusers==0.42.1 insightface==2.1 pydantic==2.13.4 pydantic_core==2.46.4 annotated-types==0.8.0
        typing-inspection==0.4.5 importlib_metadata==8.7.0)

if [ "${1:-}" = "--fetch-wheels" ]; then
  # The GPU image runs Python 3.12 and has torch, transformers, onnx(runtime), opencv, scikit-image, typer,
  # rich, pyyaml, pillow and safetensors already (docs of the device tool); these are what it lacks.
  exec python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}"
fi

OUT=${OUT:-$PWD/gpu-bench-out}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 IDCLI_HOME=${IDCLI_HOME:-/tmp/idcli-home} PYTHONUNBUFFERED=1
if [ "${GPU_BENCH_SMOKE:-0}" = 1 ]; then
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  DEVICE=cpu; SDXL=(--arch tiny-sdxl --jobs 2 --steps 2 --size 64x64); SD15=(--arch tiny-sd --jobs 2 --steps 2 --size 64x64)
  LIMIT=300; GPU_BENCH_BUDGET=${GPU_BENCH_BUDGET:-900}; GPU_BENCH_MIN_START=${GPU_BENCH_MIN_START:-2}
else
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_bench: carry the wheels (.whl, see the top of this script)"; exit 2; }
  export PYTHONPATH=/tmp/site:$PWD
  DEVICE=cuda; SDXL=(--arch sdxl --jobs 64); SD15=(--arch sd15 --jobs 64)
  LIMIT=${GPU_BENCH_LIMIT:-200}
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.csv"
fi

# The whole script, install included, stays inside BUDGET seconds (the device run's timeout_s is 540: this
# leaves time for the machine's start and the files' return): each workload gets at most LIMIT seconds and
# at most what is left; one that would start with under MIN_START left is skipped and named.
BUDGET=${GPU_BENCH_BUDGET:-450}
MIN_START=${GPU_BENCH_MIN_START:-30}
bench() {  # name, then idcli bench arguments: one JSON per workload, its log beside it
  local name=$1; shift
  local started=$SECONDS left=$((BUDGET - SECONDS))
  rm -f "$OUT/$name.json" "$OUT/$name.log"  # an OUT used before: a skipped workload must not show its old figures
  if [ "$left" -lt "$MIN_START" ] || [ "$left" -le 0 ]; then
    echo "gpu_bench: $name skipped: ${left} s of the ${BUDGET} s budget left"; return
  fi
  if timeout "$((left < LIMIT ? left : LIMIT))" "$PYTHON" -m idcli bench "$@" --device "$DEVICE" --json \
      >"$OUT/$name.json" 2>"$OUT/$name.log"; then
    echo "gpu_bench: $name done in $((SECONDS - started)) s"
  else
    echo "gpu_bench: $name FAILED after $((SECONDS - started)) s (see $name.log)"; tail -5 "$OUT/$name.log"
  fi
}

# Largest figure first: if time runs out, what is measured is what matters most. Identity QA (CPU face
# models on the commit thread) is off: the targets are the renderer's; QA's cost is measured on its own.
bench sdxl_single "${SDXL[@]}" --method single --no-qa
bench sd15_single "${SD15[@]}" --method single --no-qa
bench sdxl_dual "${SDXL[@]}" --method dual-line --no-baseline --no-qa

"$PYTHON" - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
rows = []
for name in ("sdxl_single", "sd15_single", "sdxl_dual"):
    path = out / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        rows.append(f"| {name} | not measured | | | |")
        continue
    speedup = data.get("speedup_vs_baseline")
    rows.append(f"| {name} | {data['images_per_second']:.3f} img/s | "
                f"{'-' if speedup is None else f'{speedup:.2f}x'} | "
                f"{data['outside_forwards']['share']:.1%} | {data['ceiling_share']:.1%} |")
try:
    single = json.loads((out / "sdxl_single.json").read_text())["wall_seconds"]
    dual = json.loads((out / "sdxl_dual.json").read_text())["wall_seconds"]
    rows.append(f"| dual/single wall (SDXL) | {dual / single:.3f}x | | | |")
except (OSError, ValueError, KeyError):
    pass
table = "\n".join(["| workload | rate | idcli/baseline | outside forwards | matmul ceiling share |",
                   "|---|---|---|---|---|", *rows])
(out / "summary.md").write_text(table + "\n")
print(table)
PY
