#!/usr/bin/env bash
# Reproduce the shipped tiny checkpoint and the tables of docs/RESULTS.md from nothing.
#
#   scripts/train_tiny.sh WORKDIR [THREADS]
#
# WORKDIR/data: the synthetic dataset; WORKDIR/backbone: the store-domain backbone;
# WORKDIR/neural, /random, /no-continual: the three trained runs; WORKDIR/eval/*.json:
# every evaluation on the held-out test split. The three runs share the machine's cores
# (one thread each) when THREADS is 1, the default.
set -euo pipefail
work=${1:?usage: scripts/train_tiny.sh WORKDIR [THREADS]}
threads=${2:-1}
mkdir -p "$work/eval"
cartmem synth --out "$work/data" --videos 60 --minutes 4 --seed 0
python -m model.train.pretrain_backbone --data "$work/data" --out "$work/backbone" \
  --epochs 6 --seed 0 --threads "$threads"
common=(--data "$work/data" --preset tiny --init "$work/backbone" --epochs 12 --seed 0
  --loss-activity 10 --threads "$threads")
cartmem train "${common[@]}" --out "$work/neural" > "$work/neural.log" &
cartmem train "${common[@]}" --out "$work/random" --writer random > "$work/random.log" &
cartmem train "${common[@]}" --out "$work/no-continual" --no-continual > "$work/no-continual.log" &
wait
for writer in neural random merge; do
  cartmem eval --data "$work/data" --checkpoint "$work/neural" --writer "$writer" \
    --baselines --json > "$work/eval/neural-$writer.json"
done
cartmem eval --data "$work/data" --checkpoint "$work/random" --json > "$work/eval/random.json"
cartmem eval --data "$work/data" --checkpoint "$work/no-continual" --json \
  > "$work/eval/no-continual.json"
