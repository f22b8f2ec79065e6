"""How much a larger k tightens a released model's bound, image by image: two `zoo eval --parts` folders.

    python stages/tools/paired_gap.py stages/pixelvae-k100.binarized-mnist stages/pixelvae-k5000.binarized-mnist \
        --full cards/pixelvae.binarized-mnist/eval.json

The two folders must pin the same evaluation (weights, data, split, subset, seed, batch size) at two values of k,
and hold every batch. Prints each one's NLL bound on those images and the paired gap: the mean over images of
(NLL bound at the first k) - (NLL bound at the second k), with its standard error. An image's two values move
together, so the gap is known far more closely than either mean.

With `--full RESULT` (a `zoo eval --out` result of the same weights at the first k on the whole split) it also
prints that NLL minus the gap: an estimate of the whole split's NLL bound at the second k, for when scoring the
whole split at that k costs too much. The subset of a `--limit` is a seeded random sample of the split, so the
gap on it estimates the gap on the whole; the error printed is the gap's (the whole split's own value at the
first k has no sampling error over images: it is every image).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoo.errors import ArgumentError
from zoo.eval.likelihood import mean_stderr, pin_difference, read_parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path, help="the --parts folder at the smaller k")
    ap.add_argument("second", type=Path, help="the --parts folder at the larger k")
    ap.add_argument("--full", type=Path, help="zoo eval --out result of the same weights at the first k, whole split")
    args = ap.parse_args()
    try:
        (pin_a, a), (pin_b, b) = read_parts(args.first), read_parts(args.second)
    except ArgumentError as e:
        raise SystemExit(str(e)) from None
    differ = [k for k in pin_difference(pin_a, pin_b) if k != "k"]
    if differ:
        raise SystemExit(f"the folders score different things: {', '.join(differ)} differ")
    for pin, v in ((pin_a, a), (pin_b, b)):
        m, s = mean_stderr(-v)
        print(f"k={pin['k']}: NLL <= {m:.4f} ± {s:.4f} nats on {v.numel()} images")
    gap, gap_err = mean_stderr(b - a)
    print(f"paired gap k={pin_a['k']} -> k={pin_b['k']}: {gap:.4f} ± {gap_err:.4f} nats")
    if args.full is not None:
        result = json.loads(args.full.read_text())
        result = result[0] if isinstance(result, list) else result
        prov, nll = result["provenance"], result["metrics"]["nll"]
        same = [prov["weights"], prov["dataset"], prov["split"], nll["details"].get("k")]
        if same != [pin_a["weights"], pin_a["dataset"], pin_a["split"], pin_a["k"]] or prov["limit"] is not None:
            raise SystemExit(f"{args.full} is not these weights' bound at k={pin_a['k']} on the whole split")
        print(
            f"whole split: k={pin_a['k']} NLL <= {nll['value']:.4f} (n={nll['details']['n']}), so at "
            f"k={pin_b['k']} an estimated NLL <= {nll['value'] - gap:.4f} ± {gap_err:.4f}"
        )


if __name__ == "__main__":
    main()
