#!/usr/bin/env bash
# Reproduce the shipped tiny checkpoint and the tables of docs/RESULTS.md from nothing.
#
#   scripts/train_tiny.sh WORKDIR [THREADS]
#
# WORKDIR/data: the synthetic dataset; WORKDIR/backbone: the store-domain backbone;
# WORKDIR/neural (shipped), /random, /no-continual, /no-evidence: the trained runs, two at a
# time, one thread each when THREADS is 1 (the default); WORKDIR/eval/*.json: every
# evaluation on the held-out test split.
set -euo pipefail
work=${1:?usage: scripts/train_tiny.sh WORKDIR [THREADS]}
threads=${2:-1}
mkdir -p "$work/eval"
cartmem synth --out "$work/data" --videos 150 --minutes 4 --seed 0
python -m model.train.pretrain_backbone --data "$work/data" --out "$work/backbone" \
  --epochs 3 --seed 0 --threads 2
common=(--data "$work/data" --preset tiny --init "$work/backbone" --epochs 5 --seed 0
  --loss-activity 10 --loss-sampler-evidence 1 --threads "$threads")
cartmem train "${common[@]}" --out "$work/neural" > "$work/neural.log" &
cartmem train "${common[@]}" --out "$work/random" --writer random > "$work/random.log" &
wait
cartmem train "${common[@]}" --out "$work/no-continual" --no-continual > "$work/no-continual.log" &
cartmem train "${common[@]}" --out "$work/no-evidence" --loss-sampler-evidence 0 \
  > "$work/no-evidence.log" &
wait
for writer in neural random merge; do
  cartmem eval --data "$work/data" --checkpoint "$work/neural" --writer "$writer" \
    --baselines --json > "$work/eval/neural-$writer.json"
done
cartmem eval --data "$work/data" --checkpoint "$work/random" --json > "$work/eval/random.json"
for run in no-continual no-evidence; do
  cartmem eval --data "$work/data" --checkpoint "$work/$run" --json > "$work/eval/$run.json"
done
