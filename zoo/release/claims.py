"""A card's claims: read back from its front matter, re-measured by the harness, compared.

`read_claims` reads the numbers a card claims; `verify_claims` re-runs `zoo.evaluate` on a release
folder and `compare_claims` checks each claim: this is what `zoo publish` verifies. `CardMetrics`
gives a plugin's `WeightsSpec.metrics` from its bundled card's eval.json, so no number is typed by hand.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..errors import ZooError
from ..weights import CARD_NAME, CONFIG_NAME, bundled_cards_dirs, release_dir
from .summary import EvalSummary, fmt, number, summarize, verifiable

__all__ = ["read_claims", "ClaimCheck", "compare_claims", "verify_claims", "CardMetrics"]


def read_claims(card: str) -> EvalSummary:
    """The numbers a card claims, read back from its front matter."""
    import yaml

    if not card.startswith("---"):
        return EvalSummary()
    end = card.find("\n---", 3)
    if end < 0:
        raise ZooError("the model card's YAML front matter is not closed by '---'")
    try:
        meta = yaml.safe_load(card[3:end]) or {}
    except yaml.YAMLError as e:
        raise ZooError(f"the model card's front matter is not valid YAML: {e}") from None
    z = meta.get("zoo") or {}
    s = EvalSummary(dataset=z.get("dataset") or "", split=z.get("split") or "test", n=z.get("n"), seed=z.get("seed"), limit=z.get("limit"))
    for entry in meta.get("model-index") or []:
        for res in entry.get("results") or []:
            dataset = res.get("dataset") or {}
            s.dataset = s.dataset or dataset.get("type", "")
            s.split = dataset.get("split") or s.split
            for m in res.get("metrics") or []:
                value = number(m.get("value"))
                if value is None:
                    continue
                s.metrics[str(m["type"])] = value
                se = number((m.get("args") or {}).get("stderr"))
                if se is not None:
                    s.stderr[str(m["type"])] = se
    return s


@dataclass
class ClaimCheck:
    """One claimed number against the harness's fresh measurement."""

    key: str
    claimed: float
    measured: float | None
    tolerance: float
    ok: bool

    def __str__(self) -> str:
        if self.measured is None:
            return f"{self.key}: claimed {fmt(self.claimed)}, but the harness did not report it  FAIL"
        diff = abs(self.measured - self.claimed)
        return (f"{self.key}: claimed {fmt(self.claimed)}, measured {fmt(self.measured)} "
                f"(|diff| {diff:.3g}, tolerance {self.tolerance:.3g})  {'ok' if self.ok else 'FAIL'}")


def compare_claims(claims: EvalSummary, measured: EvalSummary, *, subset: bool = False, rtol: float | None = None) -> list[ClaimCheck]:
    """Check each verifiable claim. Full runs: within `rtol` (default 1e-3) relative.

    A `subset` run (`--limit`) measures other images than the card (the harness takes the
    first N of the split, and a split's order is not random: MNIST's first 5000 test digits
    are easier than the rest), so it is a smoke check that catches numbers belonging to other
    weights or data, not small discrepancies: the tolerance is the larger of 4 standard errors
    of the subset's estimate and `rtol` (default 5%) relative.
    """
    checks = []
    for key, claimed in claims.metrics.items():
        if not verifiable(key):
            continue
        got = measured.metrics.get(key)
        if subset:
            se = measured.stderr.get(key)
            tol = max(4.0 * se if se else 0.0, (rtol if rtol is not None else 0.05) * abs(claimed))
        else:
            tol = (rtol if rtol is not None else 1e-3) * abs(claimed)
        tol = max(tol, 1e-6)
        ok = got is not None and math.isfinite(got) and abs(got - claimed) <= tol
        checks.append(ClaimCheck(key, claimed, got, tol, ok))
    return checks


def verify_claims(folder: Path, *, limit: int | None = None, rtol: float | None = None,
                  evaluate: Callable[..., Any] | None = None) -> list[ClaimCheck]:
    """Re-run the harness on the claims of `folder`'s card and compare; returns the `ClaimCheck`s.

    `limit` scores only the first `limit` images (a smoke check with a statistical tolerance);
    `evaluate` replaces `zoo.evaluate` and is called with the same keywords."""
    from ..factory import load

    card = Path(folder) / CARD_NAME
    if not card.is_file():
        raise ZooError(f"{folder} has no {CARD_NAME}: write the folder with zoo.save_pretrained(model, DIR, results=zoo.evaluate(...))")
    claims = read_claims(card.read_text())
    if not claims.metrics:
        return []
    if evaluate is None:
        from ..eval import evaluate
    result = evaluate(
        load(f"local-dir:{folder}"), dataset=claims.dataset, split=claims.split, metrics=claims.metric_names,
        seed=0 if claims.seed is None else claims.seed, limit=claims.limit if limit is None else limit,
    )
    subset = limit is not None and (claims.n is None or limit < claims.n)
    return compare_claims(claims, summarize(result), subset=subset, rtol=rtol)


class CardMetrics(Mapping[str, float]):
    """The verifiable claims of the bundled release folder `arch.tag`, read from its eval.json on first use.

    For `WeightsSpec(metrics=CardMetrics("pixelcnn.binarized-mnist"))`: the registry keeps the sha256 pin,
    the card keeps the numbers. Reading nothing at registration keeps `zoo list` fast. The eval.json must
    have been measured on the folder's own weights (its provenance names their sha256), and the folder
    must be there (`zoo.weights.release_dir`, as `zoo.load` finds it): otherwise reading raises `ZooError`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._values: dict[str, float] | None = None

    def _load(self) -> dict[str, float]:
        if self._values is None:
            arch, _, tag = self.name.partition(".")
            folder = release_dir(arch, tag)
            if folder is None or not (folder / "eval.json").is_file():
                raise ZooError(f"the claims of {self.name} live in its bundled release folder's eval.json, which is "
                               f"not there (cards folders: {', '.join(map(str, bundled_cards_dirs())) or 'none'})")
            results = json.loads((folder / "eval.json").read_text())
            weights = json.loads((folder / CONFIG_NAME).read_text())["weights"]["sha256"]
            if (results.get("provenance") or {}).get("weights") != weights:
                raise ZooError(f"{folder}/eval.json was not measured on the folder's model.safetensors ({weights}); "
                               f"re-render it with `zoo card {folder}`")
            self._values = {k: v for k, v in summarize(results).metrics.items() if verifiable(k)}
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"CardMetrics({self.name!r})"
