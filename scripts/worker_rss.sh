#!/usr/bin/env bash
# Peak memory of a one-session ingest worker (issue 18: under 1 GB on the CPU, tiny preset).
#
#   scripts/worker_rss.sh WORKDIR [MINUTES ...]
#
# For each length (default: 5 and 20 minutes) draws one synthetic session (seed 4), ingests
# it into a fresh SQLite database with the shipped checkpoint as `cartmem ingest --video`
# (a file is read far faster than real time: the worst case for what a worker holds) and
# prints GNU time's "Maximum resident set size"; its whole report is kept in WORKDIR.
set -euo pipefail
work=${1:?usage: scripts/worker_rss.sh WORKDIR [MINUTES ...]}
shift
lengths=("${@:-5 20}")
read -r -a lengths <<< "${lengths[*]}"
export CARTMEM_DEVICE=cpu
for minutes in "${lengths[@]}"; do
  run="$work/$minutes-min"
  rm -rf "$run" && mkdir -p "$run"
  cartmem synth --out "$run/data" --videos 1 --minutes "$minutes" --seed 4 --split 1,0,0 \
    > "$run/synth.log" 2>&1
  CARTMEM_DATA_DIR="$run/db" cartmem db upgrade > /dev/null
  CARTMEM_DATA_DIR="$run/db" /usr/bin/time -v -o "$run/time.txt" \
    cartmem ingest --video "$run/data/videos/train-0000.mp4" --until-idle 1 \
    > "$run/ingest.txt" 2> "$run/ingest.log"
  peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$run/time.txt")
  echo "$minutes-minute session: peak RSS $((peak_kb / 1024)) MB ($(tail -1 "$run/ingest.txt"))"
done
