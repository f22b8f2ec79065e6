"""Splice docs/leaderboard/leaderboard.md's table (without its title) into the README between its leaderboard
markers, as tests/test_readme.py expects. Run from the repository root after the board changes."""

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
block = re.escape(start) + r".*?" + re.escape(end)
new = re.sub(block, lambda m: start + "\n" + table + "\n\n" + end, text, count=1, flags=re.S)
readme.write_text(new)
print("README.md:", "updated" if new != text else "unchanged")
