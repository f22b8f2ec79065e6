"""A card's claims: read back from its front matter, re-measured by the harness, compared.

`read_claims` reads the numbers a card claims (and its canonical-subset claims); `verify_claims`
checks them against each other (`consistency`), re-runs `zoo.evaluate` on a release folder (the
whole split, the canonical subset, or a seeded random subset) and `compare_claims` checks each
claim: this is what `zoo publish` verifies. `CardMetrics`
gives a plugin's `WeightsSpec.metrics` from its bundled card's eval.json, so no number is typed by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..weights import CARD_NAME, CONFIG_NAME, cards_dirs, release_dir
from .summary import EvalSummary, fmt, number, summarize, verifiable

__all__ = ["read_claims", "ClaimCheck", "compare_claims", "verify_claims", "CardMetrics"]


def read_claims(card: str) -> EvalSummary:
    """The numbers a card claims, read back from its front matter (with its canonical-subset claims)."""
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
    s = EvalSummary(
        dataset=z.get("dataset") or "",
        split=z.get("split") or "test",
        n=z.get("n"),
        seed=z.get("seed"),
        limit=z.get("limit"),
    )
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
                args = m.get("args") or {}
                se = number(args.get("stderr"))
                if se is not None:
                    s.stderr[str(m["type"])] = se
                if args.get("bound"):
                    s.bounds[str(m["type"]).split(".")[0]] = {"bound": str(args["bound"]), "k": args.get("k")}
    if z.get("iw_samples"):
        s.provenance["iw_samples"] = z["iw_samples"]
    sub = z.get("canonical_subset")
    if isinstance(sub, dict):
        s.subset = EvalSummary(
            dataset=s.dataset,
            split=s.split,
            n=sub.get("n"),
            seed=sub.get("seed"),
            limit=sub.get("limit"),
            metrics={str(k): float(v) for k, v in (sub.get("metrics") or {}).items() if number(v) is not None},
            stderr={str(k): float(v) for k, v in (sub.get("stderr") or {}).items() if number(v) is not None},
            provenance={
                k: sub[k]
                for k in ("num_samples", "batch_size", "iw_samples", "indices_sha256")
                if sub.get(k) is not None
            },
            # the canonical subset may score a bound with fewer importance samples than the full split
            bounds={m: {**b, "k": sub.get("iw_samples", b.get("k"))} for m, b in s.bounds.items()},
        )
    return s


@dataclass
class ClaimCheck:
    """One claimed number against the harness's fresh measurement (`kind` "measured"), a check of the
    claims against each other before anything runs ("consistency"), or a remark ("note")."""

    key: str
    claimed: float
    measured: float | None
    tolerance: float
    ok: bool
    kind: str = "measured"
    note: str = ""

    def __str__(self) -> str:
        if self.kind == "note":
            return f"note: {self.note}"
        if self.kind == "consistency":
            return f"{self.key}: {self.note}  {'ok' if self.ok else 'FAIL'}"
        if self.measured is None:
            return f"{self.key}: claimed {fmt(self.claimed)}, but the harness did not report it  FAIL"
        diff = abs(self.measured - self.claimed)
        return (
            f"{self.key}: claimed {fmt(self.claimed)}, measured {fmt(self.measured)} "
            f"(|diff| {diff:.3g}, tolerance {self.tolerance:.3g})  {'ok' if self.ok else 'FAIL'}"
            + (f"  ({self.note})" if self.note else "")
        )


def compare_claims(
    claims: EvalSummary, measured: EvalSummary, *, subset: bool = False, rtol: float | None = None
) -> list[ClaimCheck]:
    """Check each verifiable claim against a measurement of the same images, within `rtol`
    (default 1e-3) relative: the harness is deterministic, so this is tight.

    `subset=True`: the measurement is of a seeded random subset of the images the claims were
    measured on (`--limit`, no canonical-subset claims), so it only estimates them. A claim passes
    within 3 standard errors of the subset's estimate, finite-population corrected
    (`3 se sqrt(1 - n/N)`, never below the `rtol` tolerance); the check's note says how large a
    lie could pass. A number without a standard error (fid, precision, recall) cannot be checked
    this way and fails.
    """
    from .consistency import SIGMAS

    rtol = 1e-3 if rtol is None else rtol
    checks = []
    for key, claimed in claims.metrics.items():
        if not verifiable(key):
            continue
        got = measured.metrics.get(key)
        tol, note = max(rtol * abs(claimed), 1e-6), ""
        if subset:
            se = measured.stderr.get(key)
            if not se or not math.isfinite(se):
                checks.append(
                    ClaimCheck(
                        key,
                        claimed,
                        got,
                        0.0,
                        False,
                        note="no standard error, so a subset cannot "
                        "check it: verify on the whole split, or record canonical-subset claims "
                        "with `zoo card DIR`",
                    )
                )
                continue
            n, total = measured.n or 0, claims.n or 0
            fpc = math.sqrt(max(0.0, 1 - n / total)) if total else 1.0
            tol = max(tol, SIGMAS * se * fpc)
            note = f"a lie smaller than {tol:.3g} can pass this check ({SIGMAS:g} standard errors of {n} images)"
        ok = got is not None and math.isfinite(got) and abs(got - claimed) <= tol
        checks.append(ClaimCheck(key, claimed, got, tol, ok, note=note))
    return checks


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ZooError(f"{path} is not valid JSON: {e}") from None


def verify_claims(
    folder: Path, *, limit: int | None = None, rtol: float | None = None, evaluate: Callable[..., Any] | None = None
) -> list[ClaimCheck]:
    """Check the claims of `folder`'s card; returns the `ClaimCheck`s (the harness's first).

    1. Before anything runs, the claims are checked against each other (`zoo.release.consistency`):
       bits/dim against nats, README.md against eval.json and the registry's pin. If one fails,
       only these checks are returned and nothing is scored.
    2. Without `limit`: the harness re-runs the card's evaluation and each claim must reproduce
       within `rtol` (default 1e-3).
    3. With `limit` equal to the size of the card's canonical subset: the harness re-runs the
       canonical-subset evaluation (deterministic) and its claims must reproduce within `rtol`.
    4. With another `limit`: a seeded random subset, checked statistically (`compare_claims`).

    `evaluate` replaces `zoo.evaluate` and is called with the same keywords."""
    from ..factory import load
    from .canonical import evaluation_settings
    from .consistency import check_consistency

    folder = Path(folder)
    card = folder / CARD_NAME
    if not card.is_file():
        raise ZooError(
            f"{folder} has no {CARD_NAME}: write the folder with "
            "zoo.save_pretrained(model, DIR, results=zoo.evaluate(...))"
        )
    claims = read_claims(card.read_text())
    results = _read_json(folder / "eval.json")
    config = _read_json(folder / CONFIG_NAME) or {}
    consistency = check_consistency(claims, config, results) if claims.metrics else []
    if not all(c.ok for c in consistency):
        return consistency
    if not claims.metrics:
        return []
    if evaluate is None:
        from ..eval import evaluate as harness

        evaluate = harness
    full = summarize(results) if results else claims
    settings = {
        **evaluation_settings(full if full.metrics else claims),
        "metrics": claims.metric_names,
        "dataset": claims.dataset,
        "split": claims.split,
        "seed": 0 if claims.seed is None else claims.seed,
    }
    canonical = claims.subset
    notes: list[ClaimCheck] = []
    if limit is not None and canonical is not None and limit == canonical.limit:
        settings.update(
            seed=0 if canonical.seed is None else canonical.seed,
            metrics=canonical.metric_names,
            **{
                k: canonical.provenance[k]
                for k in ("num_samples", "batch_size", "iw_samples")
                if k in canonical.provenance
            },
        )
        measured = summarize(evaluate(load(f"local-dir:{folder}"), limit=limit, **settings))
        checks = [_prefixed(c) for c in compare_claims(canonical, measured, rtol=rtol)]
        want, got = canonical.provenance.get("indices_sha256"), measured.provenance.get("subset.indices_sha256")
        if want != got:
            checks.append(
                ClaimCheck(
                    "canonical subset",
                    math.nan,
                    math.nan,
                    0.0,
                    False,
                    kind="consistency",
                    note=f"the card's subset has indices sha256 {want}, the harness drew {got}",
                )
            )
        return checks + consistency
    if limit is not None and canonical is not None:
        notes.append(
            ClaimCheck(
                "canonical subset",
                math.nan,
                math.nan,
                0.0,
                True,
                kind="note",
                note=f"this card records exact claims on its canonical subset: `--limit "
                f"{canonical.limit}` checks them at the full check's tolerance",
            )
        )
    measured = summarize(
        evaluate(load(f"local-dir:{folder}"), limit=claims.limit if limit is None else limit, **settings)
    )
    subset = limit is not None and (claims.n is None or limit < claims.n)
    return compare_claims(claims, measured, subset=subset, rtol=rtol) + consistency + notes


def _prefixed(check: ClaimCheck) -> ClaimCheck:
    check.key = f"{check.key} (canonical subset)"
    return check


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
                raise ZooError(
                    f"the claims of {self.name} live in its bundled release folder's eval.json, which is "
                    f"not there (cards folders: {', '.join(map(str, cards_dirs(arch, tag))) or 'none'})"
                )
            results = json.loads((folder / "eval.json").read_text())
            weights = json.loads((folder / CONFIG_NAME).read_text())["weights"]["sha256"]
            if (results.get("provenance") or {}).get("weights") != weights:
                raise ZooError(
                    f"{folder}/eval.json was not measured on the folder's model.safetensors ({weights}); "
                    f"re-render it with `zoo card {folder}`"
                )
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
