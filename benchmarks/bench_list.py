"""Wall time of `zoo list` (goal: under 0.5 s) and whether it imported torch or model code.

python benchmarks/bench_list.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

PROBE = r"""
import sys, io, contextlib
from zoo.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        main(["list"])
    except SystemExit:
        pass
ours = ('zoo_pixelcnn', 'zoo_pixelrnn', 'zoo_gan', 'zoo_independent')
models = [m for m in sys.modules if m.split('.')[0] in ours and not m.endswith(('.plugin',)) and m.count('.')]
import json
listed = len(buf.getvalue().splitlines())
print(json.dumps({'torch': 'torch' in sys.modules, 'models': sorted(models), 'listed': listed}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    exe = shutil.which("zoo")
    cmd = [exe, "list"] if exe else [sys.executable, "-m", "zoo", "list"]
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    import json

    probe = json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout)
    med = statistics.median(times)
    print(f"command            {' '.join(cmd)}")
    print(f"runs               {args.runs}")
    print(
        f"median wall time   {med:.3f} s (min {min(times):.3f}, max {max(times):.3f}); "
        f"goal < 0.5 s: {'met' if med < 0.5 else 'NOT met'}"
    )
    print(f"models listed      {probe['listed']}")
    print(f"torch imported     {probe['torch']}")
    print(f"model modules      {probe['models'] or 'none'}")


if __name__ == "__main__":
    main()
