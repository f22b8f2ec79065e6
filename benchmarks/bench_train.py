"""Training and scoring speed of the likelihood models: this tree against a reference commit, in one run.

For every registered model with the "likelihood" capability, at the current tree's release config
(`zoo.create(name)` here; the reference builds the same options, so a config changed since the
reference commit is timed at today's size on both sides) and its default recipe's batch size, on
--threads CPU threads:
- training images/s: forward, backward, gradient clipping, optimizer step and EMA update,
  with the recipe's optimizer and settings (no data loading, no lr schedule);
- scoring images/s: `log_prob` under no_grad, batch --score-batch;
plus PixelCNN at the comparison config (hidden=16, residual_blocks=15, out_hidden=32, first_kernel=7).
Inputs and initial weights are random and seeded; both sides run the same steps.

The reference is exported with `git archive REV` into a temporary folder (no copy of old
code is kept in the repository). The current tree and the reference are timed in
alternating subprocesses (current, ref, current, ref, ... for --rounds rounds), each one
model for --seconds of training and --seconds of scoring after one warm-up call (a slow
step is still timed whole); the table gives the median of each side's rounds and the
ratio new/ref. Each subprocess imports the zoo
and plugin packages from its own tree (mapped as that tree's pyproject.toml maps them,
ahead of the editable install's finder) and reports their files; the driver checks them.
A model registered on one side only gets "-" on the other; a side whose worker fails
reads "failed", with its error under the table.

    python benchmarks/bench_train.py                      # all rows, 3 rounds of 5 s (10+ minutes)
    python benchmarks/bench_train.py --json               # the same as JSON
    python benchmarks/bench_train.py --models pixelcnn --seconds 3 --rounds 1   # a quick look
    python benchmarks/bench_train.py --main-job --models pixelrnn-diag   # with `zoo eval pixelrnn-diag`
    python benchmarks/bench_train.py --precision bf16 --models gated-pixelcnn   # bf16 autocast training

--main-job also times the README's main job, `zoo eval pixelrnn-diag` on the 10k test
split through the CLI, end to end in a subprocess of the current tree (the goal: <= 60 s).
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REF = "9491e71"  # the commit before the throughput work: the default reference
ROOT = Path(__file__).resolve().parents[1]  # the current tree
MARK = "BENCH_TRAIN_RESULT "  # prefixes the worker's one line of JSON on stdout
COMPARISON = {"hidden": 16, "residual_blocks": 15, "out_hidden": 32, "first_kernel": 7}
RECIPE_KEYS = (
    "batch_size",
    "optimizer",
    "lr",
    "betas",
    "eps",
    "momentum",
    "weight_decay",
    "grad_clip",
    "ema_decay",
    "ema_warmup",
)


# -- the worker: runs in a subprocess (or in-process, for tests) ------------------------------------------
class TreeFinder(importlib.abc.MetaPathFinder):
    """Imports the listed packages from their folders, as an editable install of their tree would.

    First on sys.meta_path, it wins over PYTHONPATH and the installed editable finder (which
    maps every package, zoo.cards too, to the installed tree and comes after the path finder).
    """

    def __init__(self, folders: dict[str, Path]):
        self.folders = folders

    def find_spec(self, fullname, path=None, target=None):
        folder = self.folders.get(fullname)
        if folder is None:
            return None
        if "." in fullname:  # as in an editable install, the parent's own module comes first (zoo/cards.py)
            found = importlib.machinery.PathFinder.find_spec(fullname, path)
            if found is not None:
                return found
        init = folder / "__init__.py"
        if init.is_file():
            return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[str(folder)])
        spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)  # a namespace package (cards/)
        spec.submodule_search_locations = [str(folder)]
        return spec


def tree_packages(tree: Path) -> dict[str, Path]:
    """Each package of `tree` -> its folder, as the tree's pyproject.toml maps them for setuptools."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10 (mypy's python_version: the branch it checks); tomli may or may not be installed
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # the backport, not a dependency
    setup = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = setup.get("package-dir", {})
    folders: dict[str, Path] = {}
    for pkg in sorted(setup["packages"], key=len):  # parents before children
        parent, _, leaf = pkg.rpartition(".")
        if pkg in package_dir:
            folders[pkg] = tree / package_dir[pkg]
        elif parent in folders:
            folders[pkg] = folders[parent] / leaf
        else:
            folders[pkg] = tree / package_dir.get("", "") / pkg.replace(".", "/")
    return folders


def use_tree(tree: Path) -> None:
    """Make `import zoo` (and the plugin packages) load `tree`'s code in this process."""
    if any(name.split(".")[0].startswith("zoo") for name in sys.modules):
        raise RuntimeError("use_tree() must run before anything imports zoo")
    sys.meta_path.insert(0, TreeFinder(tree_packages(tree)))


def images_per_second(fn, batch: int, seconds: float, warmup: int = 1) -> float:
    """Calls of `fn` (on `batch` images each) after `warmup` untimed ones, for at least `seconds`."""
    for _ in range(warmup):  # (the first training step also creates the optimizer's state)
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n * batch / elapsed


def make_train_step(model, x, recipe: dict):
    """One training step as the recipe takes it: loss, backward, clipping, optimizer step, EMA update."""
    import torch
    from timm.utils import ModelEmaV3

    kind, lr, wd = recipe["optimizer"], recipe["lr"], recipe["weight_decay"]
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        opt: torch.optim.Optimizer = cls(
            model.parameters(), lr=lr, betas=tuple(recipe["betas"]), eps=recipe["eps"], weight_decay=wd
        )
    elif kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=recipe["momentum"], weight_decay=wd)
    else:
        raise ValueError(f"bench_train knows adam, adamw and sgd, not the recipe's {kind!r}")
    ema = None
    if recipe["ema_decay"] > 0:
        ema = ModelEmaV3(model, decay=recipe["ema_decay"], use_warmup=recipe["ema_warmup"], warmup_power=3 / 4)
    steps = [0]

    bf16 = recipe.get("precision") == "bf16"

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # the recipe key `precision`
            loss = model.loss(x).float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["grad_clip"])
        opt.step()
        if ema is not None:
            steps[0] += 1
            ema.update(model, step=steps[0])

    return step


def measure(job: dict) -> dict:
    """Training and scoring images/s of one model, with the `zoo` this process imports."""
    import inspect

    import torch

    import zoo

    torch.set_num_threads(job["threads"])
    try:  # what `zoo train` and `zoo eval` do first, where this tree's zoo does it
        from zoo.util import keep_freed_memory
    except ImportError:  # the reference commit has no such setting
        pass
    else:
        keep_freed_memory()
    torch.manual_seed(job["seed"])
    model = zoo.create(job["model"], **job["config"])
    spec = model.data_spec
    g = torch.Generator().manual_seed(job["seed"])
    x_train = torch.randint(0, spec.levels, (job["train_batch"], *spec.shape), generator=g)
    x_score = torch.randint(0, spec.levels, (job["score_batch"], *spec.shape), generator=g)

    model.train()
    train = images_per_second(make_train_step(model, x_train, job["recipe"]), len(x_train), job["seconds"])
    model.eval()

    def score() -> None:
        with torch.no_grad():
            model.log_prob(x_score)

    scoring = images_per_second(score, len(x_score), job["seconds"])
    return {
        "model": job["model"],
        "train": train,
        "score": scoring,
        "params": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "zoo_file": zoo.__file__,
        "model_file": inspect.getfile(type(model)),
    }


def list_likelihood_models() -> dict:
    """The registered likelihood models with their default recipe's training settings."""
    import torch

    import zoo
    import zoo.data
    from zoo.training import RECIPE_SCHEMA

    defaults = {k: d for k, (d, _) in RECIPE_SCHEMA.items()}
    models, configs = {}, {}
    for name in zoo.list_models():
        spec = zoo.info(name)
        if "likelihood" in spec.capabilities:
            configs[name] = dict(spec.config)
            recipe = defaults | dict(spec.recipes.get("default", {}))
            models[name] = {k: recipe[k] for k in RECIPE_KEYS} | {"epochs": recipe["epochs"]}
            try:  # images per epoch, for the full recipe's time
                sizes = zoo.data.get_dataset(recipe["dataset"]).sizes
                models[name] |= {
                    "train_images": sizes[recipe["train_split"]],
                    "valid_images": sizes.get(recipe["valid_split"], 0),
                }
            except Exception:  # noqa: BLE001 - no dataset named, or sizes unknown: no estimate
                pass
    return {"models": models, "configs": configs, "zoo_file": zoo.__file__, "torch": torch.__version__}


def loaded_package_files(tree: Path) -> dict[str, str]:
    """The file of each of `tree`'s packages this process has imported."""
    return {
        name: str(getattr(sys.modules[name], "__file__", None) or list(sys.modules[name].__path__)[0])
        for name in tree_packages(tree)
        if name in sys.modules
    }


def worker(job: dict) -> None:
    """The subprocess's entry: import from the job's tree, do the job, print the result."""
    tree = Path(job["tree"])
    use_tree(tree)
    if job["kind"] == "cli":  # `zoo ARGS`, as the console script runs it
        import zoo
        from zoo.cli import main

        if not Path(zoo.__file__).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"bench_train: imported zoo from {zoo.__file__}, not from {tree}")
        main(job["argv"])
        return
    out = list_likelihood_models() if job["kind"] == "list" else measure(job)
    out["packages"] = loaded_package_files(tree)
    print(MARK + json.dumps(out), flush=True)


# -- the driver -------------------------------------------------------------------------------------------
class WorkerError(RuntimeError):
    """A worker exited with an error (e.g. a model that does not build on that side)."""


def spawn_worker(job: dict, threads: int) -> subprocess.CompletedProcess:
    """This file run as a worker in a fresh interpreter, on `threads` threads, with the OpenMP spin that
    `zoo train` and `zoo eval` set (`zoo.util.short_openmp_spin`; the same for both sides)."""
    from zoo.util import openmp_spin_setting  # the installed zoo's: no torch

    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.update(openmp_spin_setting(os.environ))
    return subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
    )


def run_worker(job: dict, threads: int) -> dict:
    p = spawn_worker(job, threads)
    lines = [line for line in p.stdout.splitlines() if line.startswith(MARK)]
    if p.returncode != 0 or not lines:
        raise WorkerError(
            f"worker {job['kind']} {job.get('model', '')} in {job['tree']} failed "
            f"(exit {p.returncode}):\n{p.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(MARK) :])


def check_own_code(result: dict, tree: Path, other: Path | None = None) -> None:
    """Raise unless the worker ran `tree`'s packages, and a model's code is `tree`'s or a third party's."""
    tree = tree.resolve()
    own = [result["zoo_file"], *result.get("packages", {}).values()]
    wrong = [f for f in own if not Path(f).resolve().is_relative_to(tree)]
    model_file = result.get("model_file")
    if model_file and other is not None and Path(model_file).resolve().is_relative_to(other.resolve()):
        wrong.append(model_file)
    if wrong:
        raise RuntimeError(f"the worker for {tree} imported code from elsewhere: {wrong}")


def export_commit(rev: str, dest: Path, repo: Path = ROOT) -> str:
    """`git archive REV | tar -x -C dest`, without stages/ (training records and checkpoints, hundreds of MB
    that no benchmark reads); returns the commit's short hash."""
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit, "--", ".", ":(exclude)stages"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return commit


def plan_rows(
    new: dict, ref: dict, selected: set[str] | None, train_batch: int | None, configs: dict | None = None
) -> list[dict]:
    """One row per likelihood model on either side (current's order first), plus PixelCNN's comparison config.

    `configs`: the current tree's release config per model, which both sides build (without it, or for a model
    the current tree lacks, each side builds its own default)."""
    names = list(new) + [n for n in ref if n not in new]
    rows = []
    for name in names:
        recipe = new.get(name) or ref[name]
        base = {
            "model": name,
            "recipe": recipe,
            "batch": train_batch or recipe["batch_size"],
            "sides": [s for s, listing in (("new", new), ("ref", ref)) if name in listing],
        }
        rows.append({**base, "note": "release config", "config": dict((configs or {}).get(name, {}))})
        if name == "pixelcnn":
            rows.append({**base, "note": "comparison config", "config": dict(COMPARISON)})
    return [r for r in rows if selected is None or r["model"] in selected]


def time_rows(rows: list[dict], trees: dict[str, Path], args) -> None:
    """Alternating subprocesses: for each round, each row, current then reference; medians into the rows.

    A side whose worker fails is reported as failed (with its error) and not run again.
    """
    for row in rows:
        row["rounds"] = {side: {"train": [], "score": []} for side in row["sides"]}
        row["failed"] = {}
    for k in range(args.rounds):
        for row in rows:
            for side in [s for s in row["sides"] if s not in row["failed"]]:
                job = {
                    "kind": "measure",
                    "tree": str(trees[side]),
                    "model": row["model"],
                    "config": row["config"],
                    "train_batch": row["batch"],
                    "score_batch": args.score_batch,
                    "seconds": args.seconds,
                    "threads": args.threads,
                    "seed": args.seed,
                    "recipe": {**row["recipe"], "precision": args.precision},
                }
                try:
                    r = run_worker(job, args.threads)
                except WorkerError as e:
                    row["failed"][side] = str(e).strip().splitlines()[-1]
                    print(f"{row['model']} ({row['note']}) {side} failed: {row['failed'][side]}", file=sys.stderr)
                    continue
                check_own_code(r, trees[side], trees["ref" if side == "new" else "new"])
                row["params"] = r["params"]
                for what in ("train", "score"):
                    row["rounds"][side][what].append(r[what])
                print(
                    f"round {k + 1}/{args.rounds} {row['model']} ({row['note']}) {side}: "
                    f"train {r['train']:.1f} img/s, score {r['score']:.1f} img/s",
                    file=sys.stderr,
                )
    for row in rows:
        for what in ("train", "score"):
            runs = {s: row["rounds"].get(s, {}).get(what) for s in ("ref", "new")}
            med = {s: statistics.median(v) if v else None for s, v in runs.items()}
            ratio = med["new"] / med["ref"] if med["new"] and med["ref"] else None
            row[what] = {**med, "ratio": ratio}


def time_main_job(args) -> dict:
    """`zoo eval pixelrnn-diag` (the README's main job) end to end in a subprocess of the current tree."""
    argv = ["eval", "pixelrnn-diag", "--json", "--no-progress"]
    if args.main_job_limit:
        argv += ["--limit", str(args.main_job_limit)]
    print(f"timing `zoo {shlex.join(argv)}` ...", file=sys.stderr)
    start = time.perf_counter()
    p = spawn_worker({"kind": "cli", "tree": str(ROOT), "argv": argv}, args.threads)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"`zoo {shlex.join(argv)}` failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    result = json.loads(p.stdout)[0]
    return {
        "command": "zoo " + shlex.join(argv),
        "threads": args.threads,
        "wall_s": wall,
        "images": result["provenance"].get("n"),
        "nll": result["metrics"]["nll"]["value"],
        "goal_s": 60,
    }


def git_describe(tree: Path) -> str:
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"{tree} (not a git checkout)"
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return f"{tree} at {head.stdout.strip()}" + (" with uncommitted changes" if dirty else "")


def machine(threads: int, torch_version: str, load_avg: float) -> dict:
    """Where it ran (the load average at the start says how busy the machine was)."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": threads,
        "torch": torch_version,
        "python": platform.python_version(),
        "load_avg_1min": load_avg,
    }


def cells(row: dict, what: str) -> str:
    """ref | new | ratio of `what` ("train" or "score"): "-" where a side lacks the model, "failed" where it broke."""
    out = []
    for side in ("ref", "new"):
        value = row[what][side]
        out.append(f"{value:.1f}" if value is not None else "failed" if side in row["failed"] else "-")
    ratio = row[what]["ratio"]
    return " | ".join(out + [f"{ratio:.2f}x" if ratio is not None else "-"])


def recipe_hours(row: dict) -> float | None:
    """Hours of the model's default recipe at the new side's measured speeds; None without them."""
    recipe, train, score = row["recipe"], row["train"]["new"], row["score"]["new"]
    if not train or not score or "train_images" not in recipe:
        return None
    per_epoch = recipe["train_images"] / train + recipe["valid_images"] / score
    return recipe["epochs"] * per_epoch / 3600


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"command: `{report['command']}`",
        f"machine: {m['cpu']} ({m['cpus']} CPUs, load {m['load_avg_1min']:.1f}), {m['threads']} threads, "
        f"torch {m['torch']}, Python {m['python']}",
        f"ref: {report['ref']}; new: {report['new']}",
        f"median of {report['rounds']} rounds of {report['seconds']} s per side; "
        f"scoring batch {report['score_batch']}; training precision {report.get('precision', 'fp32')}",
    ]
    if report["rows"]:
        lines += [
            "",
            "| model | config | batch | train img/s ref | new | ratio | score img/s ref | new | ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in report["rows"]:
            lines.append(f"| {r['model']} | {r['note']} | {r['batch']} | {cells(r, 'train')} | {cells(r, 'score')} |")
        lines += [
            f"\n{r['model']} ({r['note']}) failed on {side}: {error}"
            for r in report["rows"]
            for side, error in r["failed"].items()
        ]
    recipes = [(r, recipe_hours(r)) for r in report["rows"] if r["note"] == "release config"]
    if any(hours is not None for _, hours in recipes):
        lines += [
            "",
            "full default recipe at the new speeds (epochs x (train images / train img/s + valid images "
            "/ score img/s); no sampling or test scoring):",
        ]
        lines += [
            f"- {r['model']}: {r['recipe']['epochs']} epochs, {hours:.1f} h"
            for r, hours in recipes
            if hours is not None
        ]
    if any(r["note"] == "comparison config" for r in report["rows"]):
        args = ", ".join(f"{k}={v}" for k, v in COMPARISON.items())
        lines.append(f'\ncomparison config: zoo.create("pixelcnn", {args})')
    job = report.get("main_job")
    if job:
        lines += [
            "",
            f"main job: `{job['command']}` on {job['threads']} threads: {job['wall_s']:.1f} s wall "
            f"for {job['images']} images, NLL {job['nll']:.2f} nats "
            f"(goal: <= {job['goal_s']} s for the 10k test split)",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default=REF, help=f"the reference commit (default {REF}: before the throughput work)")
    ap.add_argument("--models", default=None, help="comma-separated model names (default: every likelihood model)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per side (default 3)")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds of training, and of scoring, per run")
    ap.add_argument("--threads", type=int, default=2, help="torch threads and OMP_NUM_THREADS (default 2)")
    ap.add_argument("--train-batch", type=int, default=None, help="override every recipe's batch size")
    ap.add_argument("--score-batch", type=int, default=256)
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="training forward under bf16 autocast on both sides (the recipe key `precision`)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--main-job", action="store_true", help="also time `zoo eval pixelrnn-diag` (current tree)")
    ap.add_argument("--main-job-limit", type=int, default=None, help="score only the first N test images (a smoke run)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.threads < 1:
        ap.error("--rounds and --threads must be >= 1, --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    selected = set(args.models.split(",")) if args.models else None
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_train_ref_") as tmp:
        trees = {"new": ROOT, "ref": Path(tmp)}
        commit = export_commit(args.ref, trees["ref"])
        listings = {}
        for side, tree in trees.items():
            listings[side] = run_worker({"kind": "list", "tree": str(tree)}, args.threads)
            check_own_code(listings[side], tree)
        new = listings["new"]
        rows = plan_rows(new["models"], listings["ref"]["models"], selected, args.train_batch, new.get("configs"))
        unknown = (selected or set()) - {r["model"] for r in rows}
        if unknown:
            print(f"not a likelihood model on either side: {', '.join(sorted(unknown))}", file=sys.stderr)
        time_rows(rows, trees, args)
    report = {
        "command": "python benchmarks/bench_train.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": machine(args.threads, listings["new"]["torch"], load),
        "ref": commit if commit.startswith(args.ref) else f"{args.ref} ({commit})",
        "new": git_describe(ROOT),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "score_batch": args.score_batch,
        "precision": args.precision,
        "rows": rows,
    }
    if args.main_job:
        report["main_job"] = time_main_job(args)
    print(json.dumps(report, indent=2) if args.json else markdown(report))


if __name__ == "__main__":
    main()
