#!/usr/bin/env bash
# Regenerate docs/leaderboard (every bundled release, every metric) with background trainings paused
# (SIGSTOP, resumed on exit whatever happens), so that the scoring has both cores. Run from the repository root.
set -euo pipefail
pids=$(pgrep -f "zoo train|gan_fid_curve" || true)
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null || true; }
trap resume EXIT
[ -n "$pids" ] && kill -STOP $pids
zoo eval --all --metrics all --iw-samples 100 --report docs/leaderboard --no-progress
# The README carries the same table, without its title, between its leaderboard markers (tests/test_readme.py)
python - <<'PY'
import json
import re
from pathlib import Path

from zoo.eval import EvalResult
from zoo.eval.report import leaderboard_markdown

board = Path("docs/leaderboard/leaderboard.md").read_text()
command = re.search(r"regenerate: `([^`]+)`", board).group(1)
results = [EvalResult.from_dict(d) for d in json.loads(Path("docs/leaderboard/results.json").read_text())]
table = leaderboard_markdown(results, title=None, command=command).strip()
readme = Path("README.md")
text = readme.read_text()
start, end = "<!-- leaderboard: start -->\n", "<!-- leaderboard: end -->"
new = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda m: start + "\n" + table + "\n\n" + end, text, count=1, flags=re.S)
readme.write_text(new)
print("README.md:", "updated" if new != text else "unchanged")
PY
