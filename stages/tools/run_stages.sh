#!/usr/bin/env bash
# One release training in stages of one epoch, from a worktree of a fixed commit. Run from the repository root:
#   WT=../wt-e45da1a RUN=runs/gated START=23 END=30 stages/tools/run_stages.sh gated-pixelcnn [zoo train args...]
# runs `zoo train NAME --epochs E --resume --out RUN [args]` for E = START..END with the worktree's code (its zoo
# package and built-in plugins first on PYTHONPATH); without a checkpoint in RUN, the first stage starts the run
# (from scratch, or from INIT). Optional settings:
#   THREADS=2       torch threads (default 1, for a run that shares the cores)
#   INIT=SOURCE     a run without a checkpoint starts from these weights with a fresh optimizer (`--init-from
#                   SOURCE`): a warm restart, e.g. INIT=local-dir:$PWD/cards/pixelrnn-diag.binarized-mnist
#   RECORD=DIR      after each stage, record it in DIR (stages/tools/record.py, with CODE as its --code) and commit
#                   DIR's stages.jsonl, train_log.jsonl and release/ (only those paths), so that a lost machine
#                   loses at most the stage in progress
#   PAUSE=FILE      before each stage, wait while FILE exists (e.g. while a benchmark or CI needs the cores)
#   STOP=FILE       end before the next stage when FILE exists
# The warm restarts of pixelrnn-diag (stages/README.md) ran as, from a worktree of the commit named in CODE:
#   WT=../wt-1325155 RUN=runs/diag-restart3 START=1 END=16 THREADS=2 \
#   INIT=local-dir:$PWD/cards/pixelrnn-diag.binarized-mnist RECORD=stages/pixelrnn-diag-restart3.binarized-mnist \
#   CODE="1325155 (a worktree of a fixed commit)" stages/tools/run_stages.sh pixelrnn-diag \
#   --set lr=3e-4 --set lr_gamma=0.9 --threads 2 --quiet
set -u
NAME=$1; shift
[ -z "${RECORD:-}" ] || : "${CODE:?RECORD needs CODE, the commit the run executes}"
RUN=$(realpath -m "$RUN"); WT=$(realpath "$WT")
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
for E in $(seq "$START" "$END"); do
    while [ -n "${PAUSE:-}" ] && [ -e "$PAUSE" ]; do sleep 20; done
    if [ -n "${STOP:-}" ] && [ -e "$STOP" ]; then echo "=== $NAME stopped before stage $E"; exit 0; fi
    echo "=== $NAME stage $E $(date -u +%FT%T)"
    if [ -e "$RUN/checkpoint.safetensors" ]; then from=(--resume)
    elif [ -n "${INIT:-}" ]; then from=(--init-from "$INIT")
    else from=(); fi
    (cd "$WT" && PYTHONPATH=$WT:$WT/plugins zoo train "$NAME" --epochs "$E" "${from[@]}" --out "$RUN" "$@") ||
        { echo "=== stage $E failed"; exit 1; }
    echo "=== $NAME stage $E done $(date -u +%FT%T)"
    [ -n "${RECORD:-}" ] || continue
    python stages/tools/record.py "$RUN" "$RECORD" --code "$CODE" || exit 1
    msg=$(python -c 'import json, sys; r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print("stages: {} epoch {}: valid {}, test {}".format(sys.argv[2], r["epochs"], r["best_valid_nll"], r["test_nll"]))' \
        "$RECORD/stages.jsonl" "$(basename "$RECORD")")
    paths=("$RECORD/stages.jsonl" "$RECORD/train_log.jsonl" "$RECORD/release")
    git add -- "${paths[@]}" && git commit -q -m "$msg" -- "${paths[@]}" && echo "=== recorded stage $E"
done
