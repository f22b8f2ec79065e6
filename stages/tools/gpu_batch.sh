#!/usr/bin/env bash
# GPU batch (issue 17): several `zoo train` runs side by side until HARD seconds, then each is stopped (SIGTERM:
# checkpoint), finished into a release folder (`--epochs <done> --resume`, trains nothing) and packed into
# DEST/<job>.tar. Runs from the repository root on a GPU machine with torch but without this package installed;
# .gpu/ (stages/tools/gpu_prepare.sh build) holds site/ (a dist-info with pyproject's entry points, so the built-in
# plugins register), mnist/ and bmnist/ (the prepared data caches, gzipped), init/ (releases for --init-from
# local-dir:.gpu/init/NAME) and ckpt/JOB/ (a checkpoint a job resumes). The jobs are in $JOBS (default: gpu_jobs.sh
# beside this script), which calls `job` (below) for each. Called as `THREADS=2 bash .gpu/gpu_batch.sh $OUT 455 cuda`.
# usage: gpu_batch.sh DEST HARD [DEVICE] [EXTRA zoo train args for a smoke test...]
set -u
T0=$(date +%s); DEST=$1; HARD=$2; DEV=${3:-cuda}; shift 3 || shift $#; EXTRA=("$@")
ROOT=$(pwd); G=$ROOT/.gpu; R=/tmp/gpuruns; rm -rf $R; mkdir -p $R $DEST
export PYTHONPATH=$G/site:$ROOT:$ROOT/plugins PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2}
export ZOO_DATA_DIR=$R/data; mkdir -p $R/data/mnist
for f in $G/mnist/*.gz; do gunzip -c $f > $R/data/mnist/$(basename $f .gz); done
mkdir -p $R/data/binarized-mnist; for f in $G/bmnist/*.gz; do gunzip -c $f > $R/data/binarized-mnist/$(basename $f .gz); done
ls -la $R/data/*
PY=${PY:-python3}
$PY -c "import torch, zoo; print('torch', torch.__version__, torch.cuda.is_available(), zoo.list_models() if hasattr(zoo,'list_models') else '')" 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null

job() {  # JOB NAME EPOCHS RESUME(0/1) ARGS...
    local j=$1 n=$2 ep=$3 res=$4; shift 4
    local out=$R/$j left=$(( HARD - ($(date +%s) - T0) ))
    local r=(); [ "$res" = 1 ] && r=(--resume)
    [ -d $G/ckpt/$j ] && mkdir -p $out && cp $G/ckpt/$j/* $out/  # a checkpoint carried from elsewhere
    echo "== $j start $(date -u +%T) ($left s)" >> $R/$j.log
    timeout -s TERM -k 60 $left $PY -m zoo train $n --epochs $ep --out $out "${r[@]}" --device $DEV --no-eval \
        --samples 0 --quiet "$@" "${EXTRA[@]}" >> $R/$j.log 2>&1
    echo "== $j stopped rc=$? $(date -u +%T)" >> $R/$j.log
    local done_ep=$($PY -c "
import json,sys
e=[json.loads(l).get('epoch') for l in open('$out/train_log.jsonl') if '\"valid\"' in l]
print(max(e) if e else 0)" 2>>$R/$j.log)
    echo "== $j epochs done: $done_ep" >> $R/$j.log
    local again=() skip=0 a  # the same arguments less --init-from (the checkpoint holds the weights)
    for a in "$@"; do
        if [ $skip = 1 ]; then skip=0; elif [ "$a" = --init-from ]; then skip=1; else again+=("$a"); fi
    done
    if [ "${done_ep:-0}" -gt 0 ] && [ ! -f $out/release/model.safetensors ] ; then
        $PY -m zoo train $n --epochs $done_ep --resume --out $out --device $DEV --no-eval --samples 0 --quiet \
            "${again[@]}" "${EXTRA[@]}" >> $R/$j.log 2>&1; echo "== $j finished rc=$? $(date -u +%T)" >> $R/$j.log
    fi
    mkdir -p $out; cp $R/$j.log $out/job.log
    tar -cf $DEST/$j.tar -C $R --exclude=checkpoint.safetensors --exclude=best.safetensors --exclude=samples $j 2>>$R/$j.log
    echo "== $j packed $(date -u +%T) $(du -h $DEST/$j.tar | cut -f1)"
}
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
# shellcheck source=gpu_jobs.sh
source "${JOBS:-$(dirname "$0")/gpu_jobs.sh}"
wait
tail -n 4 $R/*.log
for j in $R/*/; do [ -f $j/train_log.jsonl ] && echo "$j $(grep '"valid"' $j/train_log.jsonl | tail -1)"; done
echo "total $(( $(date +%s) - T0 )) s"
