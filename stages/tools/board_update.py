"""Re-score some releases on docs/leaderboard and keep every other row's numbers, for a promotion that changed
only those weights (a full `zoo eval --all --report docs/leaderboard` takes 30-90 minutes here):

    stages/tools/regen_board.sh pggan.binarized-mnist     # pauses the trainings, runs this, splices the README
    stages/tools/regen_board.sh                           # every row: runs COMMAND (30-90 minutes)

The named releases are scored as the board's command scores them (every metric, k=100 importance samples,
1000 samples, seed 0) and replace their rows in results.json. A metric the release's card (its eval.json) has
already measured on the same weights with the same settings (split, seed, batch size; k for the bound, the
number of samples for the sample metrics) is taken from the card instead of measured again, and the row's
provenance names it (`reused_from_card`): the same harness, the same numbers, without an hour of re-scoring.
The sample grids and the overview are redrawn for every row with the board's settings (`zoo.evaluate` with
`metrics=()`: a full run's pictures, no scores).
"""

import json
import subprocess
import sys
from pathlib import Path

from zoo.util import keep_freed_memory, short_openmp_spin

keep_freed_memory()  # as `zoo eval` (the board's command) does first, so that the speed columns are the CLI's
short_openmp_spin()  # before torch loads

import zoo  # noqa: E402
from zoo.eval import EvalResult, evaluate  # noqa: E402
from zoo.eval.harness import resolve_metrics  # noqa: E402
from zoo.eval.report import write_report  # noqa: E402

BOARD = Path("docs/leaderboard")
COMMAND = "zoo eval --all --metrics all --iw-samples 100 --report docs/leaderboard"
SETTINGS = dict(dataset="binarized-mnist", metrics="all", iw_samples=100, num_samples=1000, seed=0, batch_size=100)
GRID = 64


def pictures(result: EvalResult) -> None:
    """Attach the grid samples and completions a full run would keep for this row's weights."""
    settings = {k: v for k, v in SETTINGS.items() if k != "metrics"}
    drawn = evaluate(result.model, metrics=(), grid=GRID, **settings)
    assert drawn.provenance["weights"] == result.provenance["weights"], (result.model, "weights changed: re-score it")
    result.samples, result.completions = drawn.samples, drawn.completions


def card_metrics(name: str) -> dict:
    """The metrics of cards/NAME/eval.json measured on the pinned weights with the board's settings."""
    path = Path("cards") / name / "eval.json"
    if not path.is_file():
        return {}
    card = EvalResult.from_dict(json.loads(path.read_text()))
    p, (arch, _, tag) = card.provenance, name.partition(".")
    same = {"weights": zoo.info(arch).weights_for(tag).sha256, "dataset": SETTINGS["dataset"], "split": "test"}
    same.update(limit=None, seed=SETTINGS["seed"], batch_size=SETTINGS["batch_size"])
    if any(p.get(k) != v for k, v in same.items()):
        return {}
    out = {}
    for metric, value in card.metrics.items():
        if metric == "nll" and p.get("iw_samples") not in (None, SETTINGS["iw_samples"]):
            continue  # a bound at another k
        if metric in ("fid", "precision", "recall", "parzen") and p.get("num_samples") != SETTINGS["num_samples"]:
            continue
        out[metric] = value
    return out


def score(name: str) -> EvalResult:
    """The board's evaluation of one release, reusing what its card measured with the same settings."""
    order = [m.name for m in resolve_metrics(SETTINGS["metrics"])]
    reused = card_metrics(name)
    rest = [m for m in order if m not in reused]
    result = evaluate(name, grid=GRID, **{**SETTINGS, "metrics": rest})
    result.metrics = {m: reused[m] if m in reused else result.metrics[m] for m in order}
    result.provenance["reused_from_card"] = sorted(reused)
    print(f"  {name}: {', '.join(sorted(reused)) or 'nothing'} from its card", flush=True)
    return result


def main(names: list[str]) -> None:
    if not names:  # every row: the board's own command
        subprocess.run([*COMMAND.split(), "--no-progress"], check=True)
        return
    board = (BOARD / "leaderboard.md").read_text()
    assert f"regenerate: `{COMMAND}`" in board, "the board's command changed: update SETTINGS here"
    results = [EvalResult.from_dict(d) for d in json.loads((BOARD / "results.json").read_text())]
    known = [r.model for r in results]
    for name in names:
        if name not in known:
            raise SystemExit(f"{name} is not on the board ({', '.join(known)}): run the full regeneration")
    for i, r in enumerate(results):
        if r.model in names:
            print(f"scoring {r.model} ...", flush=True)
            results[i] = score(r.model)
        else:
            print(f"redrawing {r.model}'s pictures ...", flush=True)
            pictures(r)
    for path in write_report(results, BOARD, command=COMMAND):
        print("wrote", path)


if __name__ == "__main__":
    main(sys.argv[1:])
