"""The autoregressive-causality checker behind `zoo check`.

For a model with `logits(x) -> (B, C, H, W, levels)`, by perturbation:

1. Causality: the logits of sub-pixel k do not change when sub-pixel k or any
   later one changes (sub-pixels ordered pixel by pixel in raster order, and
   R, G, B within a pixel). Every later sub-pixel is given a different level,
   in several random trials.
2. Consistency: `log_prob(x)` equals the sum of the log-softmaxed logits at the
   observed levels, and `log_prob` rejects a float image with `ValueError`.
3. Receptive field, measured: which earlier pixels change the logits of
   - a probe pixel on the last row, a quarter of the way across, so that there
     are columns to its right: a *blind spot* is an earlier pixel the probe does
     not see although it sees the pixel above it in the same column (or, in
     its own row, a pixel further left). PixelCNN's stacked masked 3x3
     convolutions have one (van den Oord et al. 2016b, Fig. 1); gated
     PixelCNN and the Diagonal BiLSTM do not.
   - the last pixel: the field is *full* when every earlier pixel is seen.
   - within the probe pixel: which colour channels see which (G sees R, B
     sees R and G).

It checks a randomly initialised architecture; trained weights do not change
which connections exist. By default it runs a float64 copy of the model, so that
weak but real connections (deep stacks at random initialisation can pass on as
little as 1e-8 of a change) stand far above rounding noise.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .autoregressive import categorical_log_prob
from .errors import ArgumentError, ZooError
from .protocols import DataSpec
from .sampling import device_of
from .util import is_positive_int

__all__ = ["CheckReport", "check"]


@dataclass
class CheckReport:
    """What `check` measured. `passed` is causality and consistency together."""

    model: str
    data_spec: dict[str, int]
    trials: int
    causal: bool
    max_leak: float  # largest logit change at a sub-pixel caused by itself or a later one
    leaking: int  # how many sub-pixels change with themselves or a later one (in any trial)
    subpixels: int  # C*H*W
    violations: list[dict[str, Any]]  # first few: {"subpixel": (c, i, j), "leak": float, "sees": "itself"|"later"}
    log_prob_consistent: bool
    log_prob_error: float
    rejects_float_input: bool
    probe: tuple[int, int]
    receptive_field: list[list[int]]  # probe's map: 1 seen, 0 unseen earlier pixel, -1 the probe or later
    blind_spot: bool
    blind_spot_pixels: list[tuple[int, int]]
    last_pixel_full: bool  # every earlier pixel influences the last pixel
    last_pixel_unseen: list[tuple[int, int]]
    channel_field: list[list[bool]]  # [target c][source c'] within the probe pixel
    tolerance: float = 0.0
    notes: list[str] = field(default_factory=list)
    spec_problems: list[str] | None = None  # zoo.specs.check_spec's findings; None: the spec was not checked

    @property
    def passed(self) -> bool:
        return self.causal and self.log_prob_consistent and self.rejects_float_input and not self.spec_problems

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def render_field(self) -> str:
        chars = {1: "#", 0: ".", -1: " "}
        rows = []
        for i, row in enumerate(self.receptive_field):
            line = "".join("X" if (i, j) == tuple(self.probe) else chars[v] for j, v in enumerate(row))
            rows.append(line.rstrip())
        return "\n".join(rows)

    def __str__(self) -> str:
        ok = lambda b: "ok" if b else "FAIL"  # noqa: E731
        spec = self.data_spec
        lines = [
            f"zoo check {self.model} ({spec['channels']}x{spec['height']}x{spec['width']}, {spec['levels']} levels)"
        ]
        if self.spec_problems is not None:
            lines.append(f"  spec (builder, config keys, data_spec): {ok(not self.spec_problems)}")
            lines += [f"    {p}" for p in self.spec_problems]
        lines.append(
            f"  causality ({self.trials} trials): {ok(self.causal)}  {self.leaking} of {self.subpixels} sub-pixels "
            f"leak (max change {self.max_leak:.2e}, tolerance {self.tolerance:.1e})"
        )
        for v in self.violations[:5]:
            sees = "itself" if v["sees"] == "itself" else "a later sub-pixel"
            lines.append(
                f"    sub-pixel (c={v['subpixel'][0]}, i={v['subpixel'][1]}, j={v['subpixel'][2]}) "
                f"sees {sees}: change {v['leak']:.3g}"
            )
        if self.leaking > len(self.violations[:5]):
            lines.append(
                f"    ... and {self.leaking - len(self.violations[:5])} more "
                f"(--json lists the first {len(self.violations)})"
            )
        lines += [
            f"  log_prob = sum of log-softmaxed logits: {ok(self.log_prob_consistent)}  "
            f"max error {self.log_prob_error:.2e} nats",
            f"  log_prob rejects float input: {ok(self.rejects_float_input)}",
            f"  blind spot at probe pixel {tuple(self.probe)}: "
            + (f"yes, {len(self.blind_spot_pixels)} earlier pixels unseen" if self.blind_spot else "none"),
            "  last pixel sees every earlier pixel: "
            + (
                "yes (full receptive field)"
                if self.last_pixel_full
                else f"no, {len(self.last_pixel_unseen)} earlier pixels unseen"
            ),
        ]
        if len(self.channel_field) > 1:
            names = "RGB" if len(self.channel_field) == 3 else [str(c) for c in range(len(self.channel_field))]
            seen = [
                f"{names[c]}<-{''.join(names[s] for s in range(c) if self.channel_field[c][s]) or '-'}"
                for c in range(len(self.channel_field))
            ]
            lines.append(f"  within a pixel: {'  '.join(seen)}")
        lines.append("  receptive field of the probe (X probe, # seen, . unseen):")
        lines += ["    |" + r for r in self.render_field().splitlines()]
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)


def _shift(x: torch.Tensor, where: torch.Tensor, levels: int, g: torch.Generator) -> torch.Tensor:
    """Give every sub-pixel in `where` a different level (adds 1..levels-1 modulo levels)."""
    r = torch.randint(1, levels, x.shape, generator=g)
    return torch.where(where, (x + r) % levels, x)


def _blind_spot(seen: torch.Tensor, probe: tuple[int, int]) -> list[tuple[int, int]]:
    """Earlier pixels unseen although a pixel further from the probe in the same line is seen."""
    pi, pj = probe
    holes = []
    H, W = seen.shape
    for j in range(W):
        col = seen[:pi, j]
        seen_rows = col.nonzero().flatten()
        if len(seen_rows):
            top = int(seen_rows.min())
            holes += [(i, j) for i in range(top, pi) if not col[i]]
    row = seen[pi, :pj]
    seen_cols = row.nonzero().flatten()
    if len(seen_cols):
        holes += [(pi, j) for j in range(int(seen_cols.min()), pj) if not row[j]]
    return sorted(holes)


@torch.no_grad()
def check(
    model: Any,
    *,
    name: str | None = None,
    trials: int = 2,
    batch_size: int = 64,
    seed: int = 0,
    atol: float | None = None,
    cond: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float64,
) -> CheckReport:
    """Check an autoregressive model's causality and measure its receptive field.

    `model` is a model object or a registered name (built with random weights).
    `atol` scales with the logits' magnitude (default 1e-9 in float64, 1e-4 in
    float32); `cond` is passed to `logits`. `dtype` is the precision of the copy
    of the model that is checked; the model itself is left as it is.
    """
    if not is_positive_int(trials):
        raise ArgumentError(f"trials must be a positive int (0 trials would check nothing), got {trials!r}")
    if not is_positive_int(batch_size):
        raise ArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(model, str):
        from .factory import create

        name = name or model
        torch.manual_seed(seed)  # the same seed, the same random weights, the same findings
        model = create(model)
    if not callable(getattr(model, "logits", None)):
        raise ZooError(f"zoo check applies to autoregressive models (with logits()); {type(model).__name__} has none")
    name = name or str(getattr(model, "zoo_name", type(model).__name__))
    spec: DataSpec = model.data_spec
    notes: list[str] = []
    if dtype != next((p.dtype for p in model.parameters()), dtype):
        try:
            copy = deepcopy(model).to(dtype)
            copy.eval()
            copy.logits(torch.zeros(1, *spec.shape, dtype=torch.long), **(cond or {}))
            model = copy
        except Exception as e:  # a model that cannot run in that precision is checked as it is
            notes.append(
                f"checked in {next(model.parameters()).dtype}: a {dtype} copy failed ({type(e).__name__}: {e})"
            )
            dtype = next(model.parameters()).dtype
    if atol is None:
        atol = 1e-9 if dtype == torch.float64 else 1e-4
    C, H, W, L = spec.channels, spec.height, spec.width, spec.levels
    cond = cond or {}
    was_training = model.training
    model.eval()
    device = device_of(model)
    g = torch.Generator().manual_seed(seed)

    def run(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        c = {k: (v.expand(n, *v.shape[1:]) if isinstance(v, torch.Tensor) else v) for k, v in cond.items()}
        return model.logits(x.to(device), **c).double().cpu()

    # order[c, i, j]: position of each sub-pixel in the autoregressive order
    order = torch.arange(C * H * W).view(H, W, C).permute(2, 0, 1)
    try:
        # 1. causality
        max_leak, tol = 0.0, 0.0
        violations: list[dict[str, Any]] = []
        leaking: set[int] = set()  # flat sub-pixel indices
        for _ in range(trials):
            x0 = torch.randint(0, L, (1, C, H, W), generator=g)
            base = run(x0)[0]  # (C, H, W, L)
            tol = atol * max(1.0, float(base.abs().max()))
            for start in range(0, C * H * W, batch_size):
                ks = torch.arange(start, min(start + batch_size, C * H * W))
                later = order.unsqueeze(0) >= ks.view(-1, 1, 1, 1)
                out = run(_shift(x0.expand(len(ks), C, H, W), later, L, g))  # (len(ks), C, H, W, L)
                for b, k in enumerate(ks.tolist()):
                    c, i, j = k % C, k // C // W, k // C % W
                    leak = float((out[b, c, i, j] - base[c, i, j]).abs().max())
                    max_leak = max(max_leak, leak)
                    if leak > tol:
                        leaking.add(k)
                        if len(violations) < 20 and all(v["subpixel"] != (c, i, j) for v in violations):
                            own = torch.zeros(1, C, H, W, dtype=torch.bool)
                            own[0, c, i, j] = True
                            alone = float((run(_shift(x0, own, L, g))[0, c, i, j] - base[c, i, j]).abs().max())
                            violations.append(
                                {"subpixel": (c, i, j), "leak": leak, "sees": "itself" if alone > tol else "later"}
                            )
        causal = not violations

        # 2. consistency of log_prob with logits, and input validation
        xs = torch.randint(0, L, (4, C, H, W), generator=g).to(device)
        c4 = {k: (v.expand(4, *v.shape[1:]) if isinstance(v, torch.Tensor) else v) for k, v in cond.items()}
        lp = model.log_prob(xs, **c4).double().cpu()
        ref = categorical_log_prob(model.logits(xs, **c4), xs).double().cpu()
        lp_err = float((lp - ref).abs().max())
        # log_prob may compute in float32 (categorical_log_prob does): allow float32 rounding
        consistent = lp.shape == (4,) and lp_err <= 1e-4 * max(1.0, float(ref.abs().max()))
        try:
            model.log_prob(xs.float(), **c4)
            rejects = False
        except ValueError:
            rejects = True

        # 3. receptive fields: perturb one earlier pixel at a time (all its channels)
        probe = (H - 1, W // 4)
        x0 = torch.randint(0, L, (1, C, H, W), generator=g)
        base = run(x0)[0]
        tol = max(tol, atol * max(1.0, float(base.abs().max())))
        n_pix = H * W - 1  # every pixel before the last one
        change_last = torch.zeros(n_pix, dtype=torch.bool)
        change_probe = torch.zeros(n_pix, dtype=torch.bool)
        for start in range(0, n_pix, batch_size):
            qs = torch.arange(start, min(start + batch_size, n_pix))
            where = torch.zeros(len(qs), C, H * W, dtype=torch.bool)
            where[torch.arange(len(qs)), :, qs] = True
            out = run(_shift(x0.expand(len(qs), C, H, W), where.view(len(qs), C, H, W), L, g))
            change_last[qs] = (out[:, :, H - 1, W - 1] - base[:, H - 1, W - 1]).abs().flatten(1).amax(1) > tol
            change_probe[qs] = (out[:, :, probe[0], probe[1]] - base[:, probe[0], probe[1]]).abs().flatten(1).amax(
                1
            ) > tol
        p_index = probe[0] * W + probe[1]
        seen_probe = torch.zeros(H * W, dtype=torch.bool)
        seen_probe[:p_index] = change_probe[:p_index]
        field_map = torch.full((H * W,), -1, dtype=torch.long)
        field_map[:p_index] = seen_probe[:p_index].long()
        seen_probe = seen_probe.view(H, W)
        holes = _blind_spot(seen_probe, probe)
        unseen_last = [(int(k // W), int(k % W)) for k in range(n_pix) if not change_last[k]]

        # within the probe pixel: does channel c see channel s?
        channel_field = [[False] * C for _ in range(C)]
        for s in range(C):
            w = torch.zeros(1, C, H, W, dtype=torch.bool)
            w[0, s, probe[0], probe[1]] = True
            o = run(_shift(x0, w, L, g))[0]
            for c in range(C):
                channel_field[c][s] = bool((o[c, probe[0], probe[1]] - base[c, probe[0], probe[1]]).abs().max() > tol)
    finally:
        if was_training:
            model.train()

    if H * W > 1 and not bool(change_last.any()):
        notes.append("the last pixel sees no earlier pixel: is the model conditioning on anything?")
    return CheckReport(
        model=name,
        data_spec=spec.to_dict(),
        trials=trials,
        causal=causal,
        max_leak=max_leak,
        leaking=len(leaking),
        subpixels=C * H * W,
        violations=violations,
        log_prob_consistent=consistent,
        log_prob_error=lp_err,
        rejects_float_input=rejects,
        probe=probe,
        receptive_field=field_map.view(H, W).tolist(),
        blind_spot=bool(holes),
        blind_spot_pixels=holes,
        last_pixel_full=not unseen_last,
        last_pixel_unseen=unseen_last,
        channel_field=channel_field,
        tolerance=tol,
        notes=notes,
    )
