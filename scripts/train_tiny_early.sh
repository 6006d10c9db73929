#!/usr/bin/env bash
# The paper's early fusion (every question re-encodes the memory; the default model until
# session 14): model/checkpoints/tiny-early and its rows of docs/RESULTS.md, and session 34's
# model pair (WORKDIR/pair-early: WORKDIR/shipped leads, this names; the served pair adds
# scripts/train_tiny_b160.sh's model as a second partner). Reuses
# WORKDIR/data, WORKDIR/backbone and the tuning and held-out sets that
# scripts/train_tiny.sh WORKDIR drew.
#
#   scripts/train_tiny_early.sh WORKDIR
set -euo pipefail
work=${1:?usage: scripts/train_tiny_early.sh WORKDIR}
for needed in data backbone tune-20 tune-40 heldout-20 heldout-40 reconcile-20; do
  [ -d "$work/$needed" ] || { echo "run scripts/train_tiny.sh $work first ($needed missing)" >&2; exit 2; }
done
mkdir -p "$work/eval"
cartmem train --data "$work/data" --preset tiny --init "$work/backbone" --epochs 5 --seed 0 \
  --threads 2 --out "$work/early" > "$work/early.log"
python -m model.resize "$work/early" "$work/early-uncalibrated" --memory-size 2048 \
  --time-answers activity_steps
python -m model.calibration --data "$work/data" --split val \
  --checkpoint "$work/early-uncalibrated" --out "$work/early-shipped" --threads 2 \
  > "$work/eval/calibration-early.json"
for minutes in 20 40; do
  cartmem eval --data "$work/tune-$minutes" --split val --checkpoint "$work/early-shipped" \
    --threads 2 --json > "$work/eval/early-tune-$minutes.json"
done
for set in data heldout-20 heldout-40; do
  cartmem eval --data "$work/$set" --checkpoint "$work/early-shipped" --baselines \
    --threads 2 --json > "$work/eval/early-$set.json"
done
python -m app.bench.reconcile_eval --data "$work/reconcile-20" --sessions 20 \
  --checkpoint "$work/early-shipped" --evidence steps --out "$work/eval/reconcile-20-early"
# session 34's pair (one partner); scripts/train_tiny_b160.sh writes the served one
python -m model.pair --lead "$work/shipped" --partner "$work/early-shipped" --name tiny-pair \
  --out "$work/pair-early"
