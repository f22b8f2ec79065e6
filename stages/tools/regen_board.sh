#!/usr/bin/env bash
# Regenerate docs/leaderboard (every bundled release, every metric) with background trainings paused
# (SIGSTOP, resumed on exit whatever happens), so that the scoring has both cores. Run from the repository root.
#   stages/tools/regen_board.sh                          # every row (30-90 min)
#   stages/tools/regen_board.sh pggan.binarized-mnist    # re-score only these rows (board_update.py)
set -euo pipefail
pids=$(pgrep -f "zoo train|gan_fid_curve" || true)
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null || true; }
trap resume EXIT
[ -n "$pids" ] && kill -STOP $pids
python stages/tools/board_update.py "$@"   # no names: the board's whole command (board_update.COMMAND)
python stages/tools/splice_board.py   # the README carries the same table between its markers
