"""Why a GAN trained on the bits of binarized MNIST scores a high FID: image sets scored in the
binarized-MNIST reference classifier's features against the test split (FID, precision, recall).

    python benchmarks/gan_binarization.py [--model dcgan.binarized-mnist] [--model local-dir:DIR] [--n 1000]

Binarized MNIST is one Bernoulli draw per pixel of MNIST's intensities (plugins/zoo_datasets/binarize.py),
so its images carry speckle along every grey edge. The rows compare real images binarized in
that way, real images thresholded at 1/2 (the same digits without the speckle) and the models'
samples, Bernoulli draws (what `sample` returns) and thresholded at 1/2 (`temperature=0`).
`grey` is the fraction of pixels whose intensity lies in [0.1, 0.9]: how much of an image
the Bernoulli draw turns into noise.
"""

from __future__ import annotations

import argparse
import json

import torch

import zoo
from zoo.data import get_dataset
from zoo.eval.classifier import load_reference
from zoo.eval.fid import frechet_distance
from zoo.eval.manifold import precision_recall_features


def bernoulli(p: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(p.shape, generator=g, dtype=torch.float64) < p).long()


def grey(p: torch.Tensor) -> float:
    return float(((p >= 0.1) & (p <= 0.9)).double().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=None, help="a GAN name (repeatable)")
    ap.add_argument("--n", type=int, default=1000, help="images per row")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(args.seed)
    feats = load_reference("binarized-mnist")

    def f(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([feats(x[i : i + 500].long()).double() for i in range(0, len(x), 500)])

    test = get_dataset("binarized-mnist").load("test")[0]
    real_all = f(test)  # (10000, 256): the FID side, as in `zoo eval`
    real_k = real_all[torch.randperm(len(test), generator=g)[: args.n]]  # the precision/recall side
    mnist = get_dataset("mnist").load("train")[0]
    pick = torch.randperm(len(mnist), generator=g)[: args.n]
    p_real = mnist[pick].double() / 256  # binarize.py: P(bit = 1) = k / 256

    rows: list[tuple[str, torch.Tensor, float]] = [
        ("mnist train, Bernoulli draw (the data's own process)", bernoulli(p_real, g), grey(p_real)),
        ("mnist train, thresholded at 1/2 (no speckle)", (p_real >= 0.5).long(), grey(p_real)),
    ]
    for name in args.model or ["dcgan.binarized-mnist"]:
        m = zoo.load(name)
        noise = m.draw_noise(args.n, torch.Generator().manual_seed(args.seed))
        with torch.no_grad():
            m.eval()
            p = torch.sigmoid(m.generator_logits(noise["z"]).double())  # (n, 1, 28, 28) intensities
        rows.append((f"{name}: Bernoulli draw (its samples)", bernoulli(p, g), grey(p)))
        rows.append((f"{name}: thresholded at 1/2", (p >= 0.5).long(), grey(p)))
    out = []
    for label, x, gr in rows:
        fx = f(x)
        prec, rec = precision_recall_features(real_k, fx)
        out.append(
            {
                "images": label,
                "fid": round(frechet_distance(fx, real_all), 2),
                "precision": round(prec, 3),
                "recall": round(rec, 3),
                "grey": round(gr, 3),
            }
        )
        print(json.dumps(out[-1]), flush=True)
    print("\n| images | FID | precision | recall | grey pixels |\n| --- | --- | --- | --- | --- |")
    for r in out:
        print(f"| {r['images']} | {r['fid']} | {r['precision']} | {r['recall']} | {r['grey']} |")


if __name__ == "__main__":
    main()
