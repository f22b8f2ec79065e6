"""`--limit N`: which images of a split a limited evaluation scores, and how the result names them.

A limit never takes the first N images (a split's order is not random: MNIST's first test
digits are easier than the rest). It takes the first N entries of one seeded permutation of
the split, sorted back into split order:

    perm = torch.randperm(len(split), generator=Generator().manual_seed(derive_seed(seed, "limit", split)))
    indices = sorted(perm[:N])

so the same seed scores the same images, and a smaller limit scores a subset of a larger one
(`--limit 500` is inside `--limit 1000`). A result records the subset as `provenance["subset"]`:
the seed, N, the split's size and the sha256 of the sorted indices (as little-endian int64).
"""

from __future__ import annotations

import hashlib

import torch

from .distributed import derive_seed

__all__ = ["subset_indices", "subset_identity"]


def subset_indices(total: int, limit: int | None, seed: int, split: str) -> torch.Tensor | None:
    """The sorted indices `(limit,)` of the seeded subset of a split of `total` images;
    None when the limit takes the whole split (no limit, or `limit >= total`)."""
    if limit is None or limit >= total:
        return None
    g = torch.Generator().manual_seed(derive_seed(seed, "limit", split))
    return torch.randperm(total, generator=g)[:limit].sort().values


def subset_identity(indices: torch.Tensor, *, seed: int, total: int) -> dict[str, object]:
    """What names a subset in a result's provenance: seed, size, the split's size, sha256 of the indices."""
    digest = hashlib.sha256(indices.to(torch.int64).numpy().astype("<i8").tobytes()).hexdigest()
    return {
        "seed": seed,
        "limit": int(indices.numel()),
        "of": total,
        "indices_sha256": digest,
        "rule": "sorted(randperm(of, derive_seed(seed, 'limit', split))[:limit])",
    }
