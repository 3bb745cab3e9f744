#!/usr/bin/env bash
# Issue 16's H200 measurement as one prepared script: under 8 minutes, installs what the GPU machine lacks
# from wheels carried with the working tree, writes one JSON per workload and a summary table.
#
#   1. here, on a machine with pip and the package registries (once):
#        echo /.whl/ >> .git/info/exclude && tools/gpu_bench.sh --fetch-wheels
#   2. on the lent GPU machine (the device tool's `run`, carry [".whl"], timeout_s 540):
#        bash tools/gpu_bench.sh
#      the JSON files, the summary and one archive of the logs and profile tables land in $OUT (the device tool
#      brings back at most 8 files, 2 folders deep: the script leaves no more than that).
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
rm -f "$OUT/files.tar.gz" "$OUT/summary.md"  # an OUT used before: nothing of an earlier run is reported again
PYTHON=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 IDCLI_HOME=${IDCLI_HOME:-/tmp/idcli-home} PYTHONUNBUFFERED=1
if [ "${GPU_BENCH_SMOKE:-0}" = 1 ]; then
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  DEVICE=cpu; SDXL=(--arch tiny-sdxl --jobs 2 --steps 2 --size 64x64); SD15=(--arch tiny-sd --jobs 2 --steps 2 --size 64x64)
  SDXL_BASELINE=(--baseline-jobs 1)
  PROFILE=(--arch tiny-sdxl --jobs 2 --steps 2 --size 64x64); INVARIANCE=(--arch tiny-sd --jobs 8 --steps 2 --size 64x64)
  LIMIT=300; GPU_BENCH_BUDGET=${GPU_BENCH_BUDGET:-900}; GPU_BENCH_MIN_START=${GPU_BENCH_MIN_START:-2}
  GPU_BENCH_PROFILE_MIN_START=${GPU_BENCH_PROFILE_MIN_START:-2}
else
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_bench: carry the wheels (.whl, see the top of this script)"; exit 2; }
  export PYTHONPATH=/tmp/site:$PWD
  DEVICE=cuda; SDXL=(--arch sdxl --jobs 64); SD15=(--arch sd15 --jobs 64)
  # SDXL's baseline (64 stock calls at batch 1) would take >= 2.5x idcli's ~50 s if the target holds, most of
  # the workload's 200 s: its images/s is timed on 16 jobs (its cost is linear in jobs; the ratio is of rates).
  SDXL_BASELINE=(--baseline-jobs 16)
  # The profile: a short SDXL run (4 timed jobs, 4 profiled); the check: SD1.5 512², 25 steps, a batch of 8.
  PROFILE=(--arch sdxl --jobs 4); INVARIANCE=(--arch sd15 --jobs 8)
  LIMIT=${GPU_BENCH_LIMIT:-200}
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.csv"
fi

# The whole script, install included, stays inside BUDGET seconds (the device run's timeout_s is 540: this
# leaves time for the machine's start and the files' return): each workload gets at most LIMIT seconds and
# at most what is left; one that would start with under its minimum left (MIN_START; the profile's
# PROFILE_MIN_START) is skipped and named.
BUDGET=${GPU_BENCH_BUDGET:-450}
MIN_START=${GPU_BENCH_MIN_START:-30}
PROFILE_MIN_START=${GPU_BENCH_PROFILE_MIN_START:-60}
bench() {  # name, the least seconds it starts with, then idcli bench arguments: one JSON per step, its log beside it
  local name=$1 least=$2; shift 2
  local started=$SECONDS left=$((BUDGET - SECONDS))
  # An OUT used before: a skipped step must not show its old figures (nor an old profile's tables).
  rm -rf "$OUT/$name.json" "$OUT/$name.log" "$OUT/$name"
  if [ "$left" -lt "$least" ] || [ "$left" -le 0 ]; then
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
bench sdxl_single "$MIN_START" "${SDXL[@]}" "${SDXL_BASELINE[@]}" --method single --no-qa
bench sd15_single "$MIN_START" "${SD15[@]}" --method single --no-qa
bench sdxl_dual "$MIN_START" "${SDXL[@]}" --method dual-line --no-baseline --no-qa
# Then what later sessions work from without a GPU (docs/performance.md, "Rehearsing the H200 run"): where the
# time of an SDXL render goes (torch.profiler: top kernels, time by phase, attention kernels, decode chunk), and
# how far an image moves between batch 1 and a batch of 8 in bfloat16 (docs/architecture.md's GPU tolerance).
bench profile_sdxl "$PROFILE_MIN_START" "${PROFILE[@]}" --method single --no-baseline --no-qa --profile "$OUT/profile_sdxl"
bench batch_invariance "$MIN_START" "${INVARIANCE[@]}" --method single --dtype bfloat16 --check-batch-invariance

"$PYTHON" - "$OUT" <<'PY'
import json, sys, tarfile
from pathlib import Path

out = Path(sys.argv[1])


def read(name):
    try:
        return json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


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
extra = []
profile = (read("profile_sdxl") or {}).get("profile")
if profile:
    basis = profile["time_basis"]
    shares = ", ".join(f"{k} {v[basis + '_share']:.1%}" for k, v in profile["phases"].items())
    sdpa = "; ".join(f"{k} {', '.join(v)}" for k, v in read("profile_sdxl").get("sdpa_backends", {}).items())
    busy = f"; device busy {profile['device_busy_share']:.1%} of the wall" if basis == "device" else ""
    extra.append(f"| profile_sdxl ({profile['jobs']} jobs) | {basis} time: {shares}{busy}; SDPA {sdpa}; "
                 f"trace {profile['trace'] or 'not kept'} |")
else:
    extra.append("| profile_sdxl | not measured |")
check = read("batch_invariance")
if check and check.get("check") == "batch-invariance":
    extra.append(f"| batch_invariance (batch {check['batch']} vs alone, {check['dtype']}) | max "
                 f"{check['max_abs_diff']} 8-bit levels, mean {check['mean_abs_diff']:.4f}, "
                 f"{check['differing_share']:.2%} of values differ |")
else:
    extra.append("| batch_invariance | not measured |")
table = "\n".join(["| workload | rate | idcli/baseline | outside forwards | matmul ceiling share |",
                   "|---|---|---|---|---|", *rows, "", "| extra | result |", "|---|---|", *extra])
(out / "summary.md").write_text(table + "\n")
print(table)

# The device tool brings back at most 8 files, 2 folders deep: the logs, gpu.csv and the profile's tables go into
# one archive; left loose are summary.md, the steps' JSON and the profile's trace (when it was kept).
packed = sorted([*out.glob("*.log"), *out.glob("gpu.csv"), *(out / "profile_sdxl").glob("top_ops.*")])
if packed:
    with tarfile.open(out / "files.tar.gz", "w:gz") as archive:
        for path in packed:
            archive.add(path, arcname=str(path.relative_to(out)))
    for path in packed:
        path.unlink()
PY
