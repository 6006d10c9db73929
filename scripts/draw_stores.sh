#!/usr/bin/env bash
# Draw the multi-store data a retraining for unseen stores uses (issue 13).
#
#   scripts/draw_stores.sh DATA
#
# DATA/train: 40 stores of 24 products, 4 four-minute sessions each; split by store
# (S001-S028 train, S029-S034 val, S035-S040 test: those stores' products are in no train
# or val video). DATA/sessions: one new 20-minute session of every store (seed 0: the same
# catalogs), all in the test split; those of the test stores (the stores that
# DATA/train/dataset.json puts in "test") are the held-out evaluation, the others are new
# sessions of stores the model trained on.
#
# Cost, measured on 2 busy cores: 1.3 s of drawing per minute of video (8 minutes in
# 10-11 s, 1.1 GB peak RSS; a 20-minute session alone took 44 s, docs/DATASET.md), so
# about 14 min for DATA/train (640 minutes of video) and 17-30 min for DATA/sessions
# (800 minutes): under an hour in all.
set -euo pipefail
data=${1:?usage: scripts/draw_stores.sh DATA}
cartmem synth --out "$data/train" --stores 40 --videos 160 --minutes 4 --seed 0
cartmem synth --out "$data/sessions" --stores 40 --videos 40 --minutes 20 --seed 0 \
  --split 0,0,1
