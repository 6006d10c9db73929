#!/usr/bin/env bash
# The shipped recipe (scripts/train_tiny.sh: questions fused in the decoder, the activity in
# every memory token, each training video at a random point of an hour) with the Mamba
# mixer (issue 14): model/checkpoints/tiny-mamba and its rows of docs/RESULTS.md. Reuses
# WORKDIR/data, WORKDIR/backbone, the tuning and the held-out sets that
# scripts/train_tiny.sh WORKDIR drew. (The session-12 tiny-mamba, the paper's early fusion
# with the Mamba mixer, is the same `cartmem train` without the decoder-fusion flags and
# the time shift, read with m = 2,048.)
#
#   scripts/train_tiny_mamba.sh WORKDIR
set -euo pipefail
work=${1:?usage: scripts/train_tiny_mamba.sh WORKDIR}
for needed in data backbone tune-20 tune-40 heldout-20 heldout-40; do
  [ -d "$work/$needed" ] || { echo "run scripts/train_tiny.sh $work first ($needed missing)" >&2; exit 2; }
done
mkdir -p "$work/eval"
cartmem train --data "$work/data" --preset tiny --init "$work/backbone" --epochs 15 --seed 0 \
  --threads 2 --query-fusion decoder --decoder-self-radius 16 --activity-in-every-token \
  --time-shift 3600 --mixer mamba --out "$work/mamba" > "$work/mamba.log"
python -m model.resize "$work/mamba" "$work/mamba-uncalibrated" --memory-size 4096 \
  --time-answers activity_steps
python -m model.calibration --data "$work/data" --split val \
  --checkpoint "$work/mamba-uncalibrated" --out "$work/mamba-shipped" --threads 2 \
  > "$work/eval/calibration-mamba.json"
# the memory size, on the tuning sets only (the best mean of recall@1x, gt-vIoU>0.3, tIoU>0.3)
for m in 2048 4096 6144; do
  python -m model.resize "$work/mamba-shipped" "$work/mamba-m$m" --memory-size "$m"
  for minutes in 20 40; do
    cartmem eval --data "$work/tune-$minutes" --split val --checkpoint "$work/mamba-m$m" \
      --threads 2 --json > "$work/eval/mamba-m$m-tune-$minutes.json"
  done
done
for set in data heldout-20 heldout-40; do
  cartmem eval --data "$work/$set" --checkpoint "$work/mamba-shipped" --baselines \
    --threads 2 --json > "$work/eval/mamba-$set.json"
done
