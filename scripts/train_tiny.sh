#!/usr/bin/env bash
# Reproduce the shipped tiny checkpoint and the tables of docs/RESULTS.md from nothing.
#
#   scripts/train_tiny.sh WORKDIR
#
# WORKDIR/data: 60 stores (1,440 products), 180 four-minute sessions, split by store;
# WORKDIR/backbone: the store-domain backbone with its product match; WORKDIR/neural (the
# shipped weights) and WORKDIR/random (the random-writer ablation), trained side by side
# on one core each; WORKDIR/tune-20: three more stores' 20-minute sessions on which the
# memory size read at inference is chosen; WORKDIR/shipped: the neural run with that
# memory (2,048 tokens), time answers from the activity steps and calibrated probabilities,
# which is model/checkpoints/tiny; WORKDIR/heldout-*: sessions of
# stores no run ever saw and nothing was chosen on;
# WORKDIR/eval/*.json: every evaluation.
set -euo pipefail
work=${1:?usage: scripts/train_tiny.sh WORKDIR}
mkdir -p "$work/eval"
cartmem synth --out "$work/data" --stores 60 --videos 180 --minutes 4 --seed 0 --workers "$(nproc)"
python -m model.train.pretrain_backbone --data "$work/data" --out "$work/backbone" \
  --epochs 2 --seed 0 --threads 2 > "$work/pretrain.jsonl"
common=(--data "$work/data" --preset tiny --init "$work/backbone" --epochs 5 --seed 0 --threads 1)
cartmem train "${common[@]}" --out "$work/neural" > "$work/neural.log" &
cartmem train "${common[@]}" --out "$work/random" --writer random > "$work/random.log" &
wait
cartmem synth --out "$work/tune-20" --stores 3 --videos 3 --minutes 20 --seed 99 --split 0,1,0 \
  --workers "$(nproc)"
for m in 256 1024 2048; do
  cartmem eval --data "$work/tune-20" --split val --checkpoint "$work/neural" --memory-size "$m" \
    --baselines --threads 2 --json > "$work/eval/tune-20-m$m.json"
done
# time answers: the paper's start/end head against the per-step activity answer (val stores)
python -m model.resize "$work/neural" "$work/neural-time-steps" --time-answers activity_steps
for run in neural neural-time-steps; do
  cartmem eval --data "$work/data" --split val --checkpoint "$work/$run" --threads 2 --json \
    > "$work/eval/val-$run.json"
done
# the shipped config: that memory size, time answers read from the per-step activity answer,
# and the activity probabilities calibrated on the validation stores (no weight changes)
python -m model.resize "$work/neural" "$work/uncalibrated" --memory-size 2048 \
  --time-answers activity_steps
python -m model.calibration --data "$work/data" --split val --checkpoint "$work/uncalibrated" \
  --out "$work/shipped" --threads 2 > "$work/eval/calibration.json"
# how reconciliation reads events, compared on the validation stores only
python -m app.bench.reconcile_decode --data "$work/data" --split val \
  --checkpoint "$work/shipped" --threads 2 > "$work/eval/reconcile-decoders-val.jsonl"

# Held-out stores (seeds no run trained on): 20- and 40-minute sessions.
cartmem synth --out "$work/heldout-20" --stores 6 --videos 6 --minutes 20 --seed 7 --split 0,0,1 \
  --workers "$(nproc)"
cartmem synth --out "$work/heldout-40" --stores 3 --videos 3 --minutes 40 --seed 43 --split 0,0,1 \
  --workers "$(nproc)"
python -m model.resize "$work/random" "$work/random-2048" --memory-size 2048 \
  --time-answers activity_steps
for set in data heldout-20 heldout-40; do
  cartmem eval --data "$work/$set" --checkpoint "$work/shipped" --baselines --rereading \
    --threads 2 --json > "$work/eval/shipped-$set.json"
  cartmem eval --data "$work/$set" --checkpoint "$work/shipped" --writer random \
    --threads 2 --json > "$work/eval/shipped-random-writer-$set.json"
  cartmem eval --data "$work/$set" --checkpoint "$work/random-2048" \
    --threads 2 --json > "$work/eval/random-$set.json"
  for m in 256 1024; do
    cartmem eval --data "$work/$set" --checkpoint "$work/neural" --memory-size "$m" \
      --threads 2 --json > "$work/eval/neural-m$m-$set.json"
  done
done

# Reconciliation: 20 sessions of 20 minutes over four stores no run trained on.
cartmem synth --out "$work/reconcile-20" --stores 4 --videos 24 --minutes 20 --seed 31 \
  --split 0,0,1 --workers "$(nproc)"
python -m app.bench.reconcile_eval --data "$work/reconcile-20" --sessions 20 \
  --checkpoint "$work/shipped" --evidence steps --out "$work/eval/reconcile-20"
