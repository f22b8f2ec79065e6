#!/usr/bin/env bash
# Regenerate docs/leaderboard (every bundled release, every metric) with background trainings paused
# (SIGSTOP, resumed on exit whatever happens), so that the scoring has both cores. Run from the repository root.
set -euo pipefail
pids=$(pgrep -f "zoo train|gan_fid_curve" || true)
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null || true; }
trap resume EXIT
[ -n "$pids" ] && kill -STOP $pids
zoo eval --all --metrics all --iw-samples 100 --report docs/leaderboard --no-progress
