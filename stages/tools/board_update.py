"""Re-score some releases on docs/leaderboard and keep every other row's numbers, for a promotion that changed
only those weights (a full `zoo eval --all --report docs/leaderboard` takes 30-90 minutes here):

    stages/tools/regen_board.sh pggan.binarized-mnist     # pauses the trainings, runs this, splices the README
    stages/tools/regen_board.sh                           # every row: runs COMMAND (30-90 minutes)

The named releases are scored as the board's command scores them (every metric, k=100 importance samples,
1000 samples, seed 0) and replace their rows in results.json. The sample grids and the overview are redrawn
for every row with the board's settings (`zoo.evaluate` with `metrics=()`: a full run's pictures, no scores).
"""

import json
import subprocess
import sys
from pathlib import Path

from zoo.eval import EvalResult, evaluate
from zoo.eval.report import write_report

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
            results[i] = evaluate(r.model, grid=GRID, **SETTINGS)
        else:
            print(f"redrawing {r.model}'s pictures ...", flush=True)
            pictures(r)
    for path in write_report(results, BOARD, command=COMMAND):
        print("wrote", path)


if __name__ == "__main__":
    main(sys.argv[1:])
