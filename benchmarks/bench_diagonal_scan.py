"""One Diagonal BiLSTM layer's scan, with its C kernel (plugins/zoo_pixelrnn/diagonal_cells.c) against the
PyTorch loop it replaced, in one process, alternating rounds: training (forward and backward) and scoring
(forward without gradients), at the release's width (h = 16, 2h input features, 28 x 28).

    python benchmarks/bench_diagonal_scan.py [--threads 1] [--batch 32] [--rounds 3] [--steps 10]

Times are CPU seconds of the process (`time.process_time`), so that a run beside other work still compares
the two sides; on more than one thread they add up the threads' time, so read the ratios, and time
wall-clock speed with bench_train.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="calls per side and round")
    args = ap.parse_args()

    import torch

    from zoo.util import keep_freed_memory
    from zoo_pixelrnn import diagonal_scan as scan

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    if scan._c_kernels(torch.float32) is None:
        raise SystemExit("the C kernel could not be built here (no C compiler, or ZOO_NATIVE=0)")
    H = W = 28
    B, h = args.batch, 16
    g = torch.Generator().manual_seed(0)
    layout = scan.SlotLayout(H, W)
    x = torch.randn(2, H * W, B, 2 * h, generator=g).requires_grad_()
    w_in = (torch.randn(2, 2 * h, 4 * h, generator=g) / (2 * h) ** 0.5).requires_grad_()
    bias = torch.zeros(2, 4 * h, requires_grad=True)
    w_state = (torch.randn(2, 2 * h, 4 * h, generator=g) / (2 * h) ** 0.5).requires_grad_()

    def train() -> None:
        hs = scan.diagonal_scan(x, w_in, bias, w_state, layout)
        hs.backward(torch.ones_like(hs))

    def score() -> None:
        with torch.no_grad():
            scan.diagonal_scan(x, w_in, bias, w_state, layout)

    def ms(fn: Callable[[], None]) -> float:
        fn()
        start = time.process_time()
        for _ in range(args.steps):
            fn()
        return (time.process_time() - start) / args.steps * 1e3

    kernels = scan._kernels
    times: dict[str, list[float]] = {key: [] for key in ("train C", "train torch", "score C", "score torch")}
    for _ in range(args.rounds):
        for side, chosen in (("C", kernels), ("torch", lambda *tensors: None)):
            scan._kernels = chosen
            times[f"train {side}"].append(ms(train))
            times[f"score {side}"].append(ms(score))
    scan._kernels = kernels
    med = {key: statistics.median(v) for key, v in times.items()}
    print(f"one layer, batch {B}, {args.threads} thread(s), median of {args.rounds} rounds (CPU ms a call):")
    for kind in ("train", "score"):
        c, t = med[f"{kind} C"], med[f"{kind} torch"]
        print(f"  {kind}: C kernel {c:.1f} ms, PyTorch loop {t:.1f} ms, {t / c:.2f}x")


if __name__ == "__main__":
    main()
