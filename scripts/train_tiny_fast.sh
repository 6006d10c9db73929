#!/usr/bin/env bash
# The shipped recipe with questions fused in the decoder (issue 15): model/checkpoints/tiny-fast
# and its rows of docs/RESULTS.md. The memory is encoded once per memory, a question is
# applied to what the decoder reads; training is ~4x faster per epoch, so this run takes
# 15 epochs in about the shipped model's 5-epoch time. Reuses WORKDIR/data,
# WORKDIR/backbone, WORKDIR/tune-20 and the held-out sets that scripts/train_tiny.sh
# WORKDIR drew.
#
#   scripts/train_tiny_fast.sh WORKDIR
#
# The 5-epoch variants of docs/RESULTS.md are the same commands with --epochs 5, without
# --memory-encoder-radius and --activity-in-every-token ("decoder fusion"), or with
# --glance-layers 1 added ("+ glance").
set -euo pipefail
work=${1:?usage: scripts/train_tiny_fast.sh WORKDIR}
for needed in data backbone tune-20 heldout-20 heldout-40; do
  [ -d "$work/$needed" ] || { echo "run scripts/train_tiny.sh $work first ($needed missing)" >&2; exit 2; }
done
mkdir -p "$work/eval"
cartmem train --data "$work/data" --preset tiny --init "$work/backbone" --epochs 15 --seed 0 \
  --threads 2 --query-fusion decoder --decoder-self-radius 16 --memory-encoder-radius 16 \
  --activity-in-every-token --out "$work/fast" > "$work/fast.log"
python -m model.resize "$work/fast" "$work/fast-uncalibrated" --memory-size 2048 \
  --time-answers activity_steps
python -m model.calibration --data "$work/data" --split val \
  --checkpoint "$work/fast-uncalibrated" --out "$work/fast-shipped" --threads 2 \
  > "$work/eval/calibration-fast.json"
cartmem eval --data "$work/tune-20" --split val --checkpoint "$work/fast-shipped" \
  --threads 2 --json > "$work/eval/fast-tune-20.json"
for set in data heldout-20 heldout-40; do
  cartmem eval --data "$work/$set" --checkpoint "$work/fast-shipped" --baselines \
    --threads 2 --json > "$work/eval/fast-$set.json"
done
