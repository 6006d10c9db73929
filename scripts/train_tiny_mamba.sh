#!/usr/bin/env bash
# The paper-fusion recipe (scripts/train_tiny_early.sh) with the Mamba mixer (issue 14):
# model/checkpoints/tiny-mamba and its rows of docs/RESULTS.md. Reuses WORKDIR/data,
# WORKDIR/backbone and the held-out sets that scripts/train_tiny.sh WORKDIR drew.
#
#   scripts/train_tiny_mamba.sh WORKDIR
#
# The ablation of docs/RESULTS.md with the activity added to every memory token is the
# same commands with `--activity-in-every-token` added to `cartmem train` (not shipped:
# object answers on long held-out sessions fell with it).
set -euo pipefail
work=${1:?usage: scripts/train_tiny_mamba.sh WORKDIR}
for needed in data backbone heldout-20 heldout-40; do
  [ -d "$work/$needed" ] || { echo "run scripts/train_tiny.sh $work first ($needed missing)" >&2; exit 2; }
done
mkdir -p "$work/eval"
cartmem train --data "$work/data" --preset tiny --init "$work/backbone" --epochs 5 --seed 0 \
  --threads 2 --mixer mamba --out "$work/mamba" > "$work/mamba.log"
python -m model.resize "$work/mamba" "$work/mamba-uncalibrated" --memory-size 2048 \
  --time-answers activity_steps
python -m model.calibration --data "$work/data" --split val \
  --checkpoint "$work/mamba-uncalibrated" --out "$work/mamba-shipped" --threads 2 \
  > "$work/eval/calibration-mamba.json"
for set in data heldout-20 heldout-40; do
  cartmem eval --data "$work/$set" --checkpoint "$work/mamba-shipped" --baselines \
    --threads 2 --json > "$work/eval/mamba-$set.json"
done
