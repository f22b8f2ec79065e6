#!/usr/bin/env bash
# One release training in stages of one epoch, from a worktree of a fixed commit, on 1 thread:
#   WT=../wt-e45da1a RUN=runs/gated START=23 END=30 stages/tools/run_stages.sh gated-pixelcnn [zoo train args...]
# runs `zoo train NAME --epochs E --resume --out RUN [args]` for E = START..END with the worktree's code (its zoo
# package and built-in plugins first on PYTHONPATH). Record each stage with stages/tools/record.py.
set -u
NAME=$1; shift
RUN=$(realpath -m "$RUN"); WT=$(realpath "$WT")
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$WT:$WT/plugins
cd "$WT"
for E in $(seq "$START" "$END"); do
    echo "=== $NAME stage $E $(date -u +%FT%T)"
    zoo train "$NAME" --epochs "$E" --resume --out "$RUN" "$@" || { echo "=== stage $E failed"; exit 1; }
    echo "=== $NAME stage $E done $(date -u +%FT%T)"
done
