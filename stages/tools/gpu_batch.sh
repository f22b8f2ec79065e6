#!/usr/bin/env bash
# The GPU batch of 2026-12-04 (issue 17), as it ran from the repository root on a GPU machine with torch but without
# this package installed: .gpu/ (not in git) held site/ (a dist-info with pyproject's entry points, so the built-in
# plugins register), mnist/ and bmnist/ (the prepared data caches, gzipped) and ckpt/pvae (pixelvae-w64's checkpoint
# of epoch 4). Called as `THREADS=2 bash run.sh $OUT 455 cuda`. Each job's log is in stages/gpu-trials/ or beside its stage.
# GPU batch: several `zoo train` runs side by side until HARD seconds, then each is stopped (SIGTERM: checkpoint),
# finished into a release folder (`--epochs <done> --resume`, trains nothing) and packed into $DEST/<job>.tar.
# usage: run.sh DEST HARD [DEVICE] [EXTRA zoo train args for a smoke test...]
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
mkdir -p $R/pvae && cp $G/ckpt/pvae/* $R/pvae/

job() {  # JOB NAME EPOCHS RESUME(0/1) ARGS...
    local j=$1 n=$2 ep=$3 res=$4; shift 4
    local out=$R/$j left=$(( HARD - ($(date +%s) - T0) ))
    local r=(); [ "$res" = 1 ] && r=(--resume)
    echo "== $j start $(date -u +%T) ($left s)" >> $R/$j.log
    timeout -s TERM -k 60 $left $PY -m zoo train $n --epochs $ep --out $out "${r[@]}" --device $DEV --no-eval \
        --samples 0 --quiet "$@" "${EXTRA[@]}" >> $R/$j.log 2>&1
    echo "== $j stopped rc=$? $(date -u +%T)" >> $R/$j.log
    local done_ep=$($PY -c "
import json,sys
e=[json.loads(l).get('epoch') for l in open('$out/train_log.jsonl') if '\"valid\"' in l]
print(max(e) if e else 0)" 2>>$R/$j.log)
    echo "== $j epochs done: $done_ep" >> $R/$j.log
    if [ "${done_ep:-0}" -gt 0 ] && [ ! -f $out/release/model.safetensors ] ; then
        $PY -m zoo train $n --epochs $done_ep --resume --out $out --device $DEV --no-eval --samples 0 --quiet \
            "$@" "${EXTRA[@]}" >> $R/$j.log 2>&1; echo "== $j finished rc=$? $(date -u +%T)" >> $R/$j.log
    fi
    mkdir -p $out; cp $R/$j.log $out/job.log
    tar -cf $DEST/$j.tar -C $R --exclude=checkpoint.safetensors --exclude=best.safetensors --exclude=samples $j 2>>$R/$j.log
    echo "== $j packed $(date -u +%T) $(du -h $DEST/$j.tar | cut -f1)"
}
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
VAE=(--recipe iwae --set iw_samples=50)
PV=(--set model.decoder_hidden=64 --set model.cond_hidden=64 --set dynamic_binarization=true
    --set lr_schedule=exponential --set lr_gamma=0.9)
want vae50 && job vae50 vae 1000 0 "${VAE[@]}" &
want vae50b && job vae50b vae 1000 0 "${VAE[@]}" --set batch_size=256 --set lr=2e-3 &
want pvae && job pvae pixelvae 25 1 "${PV[@]}" &
want pcnn128 && job pcnn128 pixelcnn 60 0 --set model.hidden=128 --set model.out_hidden=256 &
want row32 && job row32 pixelrnn-row 60 0 --set model.hidden=32 --set model.out_features=64 &
wait
tail -n 4 $R/*.log
grep -h '"valid"' $R/*/train_log.jsonl | tail -n 0
for j in $R/*/; do echo "$j $(grep '"valid"' $j/train_log.jsonl | tail -1)"; done
echo "total $(( $(date +%s) - T0 )) s"
