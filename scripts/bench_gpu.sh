#!/usr/bin/env bash
# The GPU benchmarks of issues 14 and 18 on one CUDA device. On one H200 (2026-12-04) the
# steps took: checkpoint 7 s, capacity 22 s, decode 28 s, queries 31 s, speedup 27 s, the
# per-clip ingest 40 s; ingest at 1-256 sessions did not end in 170 s, nor the mixer (then
# one child process a measurement, ~15 s of start each; now in one process) in 210 s: give
# a lease about 10 minutes, or set BENCH_GPU_STEP_LIMIT_S (docs/BENCHMARKS.md, "On one H200").
#
#   scripts/bench_gpu.sh [OUT]                 # default OUT: out/bench-gpu
#   scripts/bench_gpu.sh --cpu-dry-run [OUT]   # the same steps, tiny preset on the CPU, quick
#
# OUT/paper-random: a paper-preset checkpoint with random weights (timings do not depend
# on weights); OUT/capacity.json: the paper preset's backbone frames/s, sampler clips/s and
# peak device memory measured on cuda, and the capacity plan they give (docs/CAPACITY.md);
# OUT/ingest.json: ingest at 1, 8, 64 and 256 sessions, paper preset, the backbone as ingest
# runs it on CUDA (8 clips a call, bf16), OUT/per-clip-fp32/ingest.json: 64 sessions with one
# clip a call in float32, for the ratio; OUT/decode.json: 480p H.264 decoded by 1-16 streams
# on CPU threads and by the GPU's decoder (NVDEC through PyAV); OUT/queries.json and
# OUT/speedup.json (--quick sizes; BENCH_GPU_FULL=1 for the full ones); a .png beside each;
# OUT/mixer/mixer.json: the sampler's training step and write, attention against Mamba, 1k to
# 200k tokens (`cartmem bench mixer` on cuda; skipped by the CPU rehearsal, whose quick
# version the test suite runs); OUT/bench-gpu.log: what each step printed, with its seconds.
#
# A step that fails, or runs past BENCH_GPU_STEP_LIMIT_S seconds (default: no limit), is
# logged and the next one runs: a lease on a GPU is short, and one failure must not cost the
# other figures. The script exits 1 if any step failed.
#
# Nothing is installed by hand: `make venv` builds (or reuses) the repository's own
# environment, and its python runs every step from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda preset=paper quick_ingest=() quick=(--quick) per_clip_sessions=64 decode_seconds=16
if [[ "${1:-}" == "--cpu-dry-run" ]]; then
  device=cpu preset=tiny quick_ingest=(--quick) per_clip_sessions=2 decode_seconds=2
  shift
fi
[[ "${BENCH_GPU_FULL:-0}" == 1 && $device == cuda ]] && quick=()
out=${1:-out/bench-gpu}
mkdir -p "$out"
log="$out/bench-gpu.log"
: > "$log"

# BENCH_PYTHON: an interpreter whose environment is ready (a checkout sharing its venv with
# another must not let `make venv` point the venv's editable install here)
if [[ -n "${BENCH_PYTHON:-}" ]]; then
  python=$BENCH_PYTHON
else
  make -s venv
  python="$(make -s --no-print-directory --eval 'print-bin: ; @echo $(BIN)' print-bin)/python"
fi

if [[ $device == cuda ]] && ! "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "bench_gpu.sh: no CUDA device is visible to torch (torch.cuda.is_available() is False):" \
    "run it on a machine with a GPU, or rehearse it with --cpu-dry-run." >&2
  exit 2
fi

failed=()
step() {  # step NAME COMMAND...: run, time and log one benchmark; a failure is logged, not fatal
  local name=$1 began rc=0
  shift
  began=$(date +%s)
  echo "== $name: $*" | tee -a "$log"
  if [[ -n "${BENCH_GPU_STEP_LIMIT_S:-}" ]]; then
    timeout --kill-after=10 "$BENCH_GPU_STEP_LIMIT_S" "$@" 2>&1 | tee -a "$log" || rc=$?
  else
    "$@" 2>&1 | tee -a "$log" || rc=$?
  fi
  echo "== $name: $(($(date +%s) - began)) s, exit status $rc" | tee -a "$log"
  [[ $rc == 0 ]] || failed+=("$name")
}

checkpoint="$out/$preset-random"
step checkpoint "$python" -c "
import torch
from model import LongVMNet, ModelConfig
torch.manual_seed(0)
LongVMNet(ModelConfig.preset('$preset'), pretrained_backbone=False).save('$checkpoint')
print('saved a random-weight $preset checkpoint in $checkpoint')"

export CARTMEM_DEVICE=$device CARTMEM_CHECKPOINT_PATH=$checkpoint
"$python" -c 'from app.bench.machine import describe_machine as d; import json; print(json.dumps(d()))' \
  > "$out/machine.json"
step capacity "$python" -m app.bench.capacity --out "$out" --paper-only
step ingest "$python" -m app.bench.ingest --out "$out" "${quick_ingest[@]}"
# the sampler's mixers, issue 14's curve (its CPU rehearsal is the test suite's quick run)
if [[ $device == cuda ]]; then
  step mixer "$python" -m app "bench" mixer --out "$out/mixer"
fi
# the backbone as it ran before it was batched: one clip a call in float32, for the ratio
step ingest-per-clip-fp32 env CARTMEM_BACKBONE_BATCH_CLIPS=1 CARTMEM_BACKBONE_AUTOCAST=off \
  "$python" -m app.bench.ingest --out "$out/per-clip-fp32" --sessions "$per_clip_sessions" "${quick_ingest[@]}"
step decode "$python" -m app.bench.decode --out "$out" --seconds "$decode_seconds"
step queries "$python" -m app "bench" queries "${quick[@]}" --out "$out"
step speedup "$python" -m app "bench" speedup "${quick[@]}" --out "$out"
echo "wrote $out: capacity, ingest, decode, queries, speedup and mixer (.json and .png)," \
  "machine.json, bench-gpu.log"
if ((${#failed[@]})); then
  echo "bench_gpu.sh: these steps failed (their output is in $log): ${failed[*]}" >&2
  exit 1
fi
