"""The core's naive sampler, completion and `zoo.sample` dispatch."""

import pytest
import torch
from torch import nn

import zoo
from zoo.autoregressive import AutoregressiveModel, categorical_log_prob
from zoo.protocols import DataSpec
from zoo.sampling import choose, draw_uniforms, sample_naive


class LeftNeighbour(AutoregressiveModel):
    """A tiny exact model: each sub-pixel's logits depend on the previous sub-pixel only."""

    def __init__(self, channels=1, height=3, width=3, levels=3):
        super().__init__()
        self.data_spec = DataSpec(channels, height, width, levels)
        self.table = nn.Parameter(torch.randn(levels + 1, levels, generator=torch.Generator().manual_seed(1)) * 2)

    def logits(self, x):
        x = self.data_spec.validate(x)
        flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (B, D) in autoregressive order
        prev = torch.cat([torch.full_like(flat[:, :1], self.data_spec.levels), flat[:, :-1]], 1)
        out = self.table[prev]  # (B, D, L)
        B, C, H, W = x.shape
        return out.view(B, H, W, C, -1).permute(0, 3, 1, 2, 4)


class StepsLeftNeighbour(LeftNeighbour):
    """The same model with incremental steps (the FAST SAMPLER CONTRACT of zoo/sampling.py)."""

    def fast_sampler(self, x):
        return self.Steps(self, x)

    class Steps:
        asked: list = []  # every (i, j, c) the driver asks for, in order

        def __init__(self, model, x):
            n, C, H, W = x.shape
            self.table, self.x = model.table, x.clone()  # a copy: the steps learn levels from `put` only
            self.start = torch.full((n,), model.data_spec.levels)

        def logits(self, i, j, c):
            type(self).asked.append((i, j, c))
            n, C, H, W = self.x.shape
            k = (i * W + j) * C + c  # the sub-pixel's place in raster order
            prev = self.start if k == 0 else self.x.permute(0, 2, 3, 1).reshape(n, -1)[:, k - 1]
            return self.table[prev]  # (n, levels)

        def put(self, i, j, c, level):
            self.x[:, c, i, j] = level

        def row_done(self, i):
            pass


class FastLeftNeighbour(LeftNeighbour):
    """The same model with a hand-written whole sampler (the previous fast-sampler contract)."""

    calls = 0

    def sample_fast(self, u, *, temperature, known, mask, progress=False):
        type(self).calls += 1
        n, C, H, W = u.shape
        x = torch.zeros(n, C, H, W, dtype=torch.long)
        prev = torch.full((n,), self.data_spec.levels)
        for i in range(H):
            for j in range(W):
                for c in range(C):
                    v = choose(self.table[prev], u[:, c, i, j], temperature)
                    if mask is not None:
                        v = torch.where(mask[:, c, i, j], known[:, c, i, j], v)
                    x[:, c, i, j] = v
                    prev = v
        return x


def test_choose_is_inverse_cdf():
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5]])).expand(5, 3)
    u = torch.tensor([0.0, 0.19, 0.21, 0.49, 0.999], dtype=torch.float64)
    assert choose(logits, u).tolist() == [0, 0, 1, 1, 2]
    assert choose(logits, u, temperature=0).tolist() == [2] * 5


def test_naive_sampler_matches_the_exact_distribution():
    """Sampling a 2-sub-pixel model many times gives frequencies close to exp(log_prob)."""
    torch.manual_seed(0)
    m = LeftNeighbour(1, 1, 2, 3)
    x = m.sample(4000, generator=torch.Generator().manual_seed(0))
    all_images = torch.tensor([[a, b] for a in range(3) for b in range(3)]).view(9, 1, 1, 2)
    p = m.log_prob(all_images).exp().detach()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    counts = torch.stack([(x.view(-1, 2) == img.view(2)).all(1).float().mean() for img in all_images])
    assert torch.allclose(counts, p, atol=0.03)


def test_same_generator_same_images_and_temperature():
    m = LeftNeighbour(3, 2, 2, 4)
    a = m.sample(5, generator=torch.Generator().manual_seed(3))
    b = m.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.long and a.shape == (5, 3, 2, 2)
    greedy = m.sample(3, temperature=0.0, generator=torch.Generator().manual_seed(4))
    assert (greedy == greedy[0]).all()


def test_completion_keeps_known_subpixels():
    m = LeftNeighbour(3, 3, 3, 4)
    known = torch.randint(0, 4, (3, 3, 3))
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0] = True
    x = m.sample(6, known=known, mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x[:, :, 0], known[:, 0].expand(6, 3, 3))
    assert not torch.equal(x[:, :, 1:], known[:, 1:].expand(6, 3, 2, 3))  # the rest is sampled


def test_fast_sampler_steps_are_driven_in_raster_order_and_equal_naive():
    m = StepsLeftNeighbour(3, 3, 2, 5)
    known = torch.randint(0, 5, (2, 3, 3, 2))
    mask = torch.rand(2, 3, 3, 2, generator=torch.Generator().manual_seed(1)) < 0.4
    mask[:, :, 0, 0] = True  # pixel (0, 0) known in every image
    mask[:, 0, 1, 1] = True  # R of pixel (1, 1) known in every image
    for kw in ({}, {"known": known, "mask": mask}):
        StepsLeftNeighbour.Steps.asked = []
        fast = zoo.sample(m, 2, generator=torch.Generator().manual_seed(7), **kw)
        naive = zoo.sample(m, 2, method="naive", generator=torch.Generator().manual_seed(7), **kw)
        assert torch.equal(fast, naive)
        asked = StepsLeftNeighbour.Steps.asked
        assert asked == sorted(asked)  # rows, then pixels, then channels
        if kw:
            assert (0, 0, 2) in asked and (0, 0, 0) not in asked  # a known pixel: only its last channel
            assert (1, 1, 0) not in asked and (1, 1, 1) in asked
        else:
            assert len(asked) == 3 * 3 * 2
    for t in (0.0, 0.5):
        fast = zoo.sample(m, 3, method="fast", temperature=t, generator=torch.Generator().manual_seed(2))
        assert torch.equal(
            fast, zoo.sample(m, 3, method="naive", temperature=t, generator=torch.Generator().manual_seed(2))
        )


def test_fast_sampler_is_used_by_auto_and_equals_naive():
    """A whole sampler of the previous contract (`sample_fast`) still runs, and warns."""
    m = FastLeftNeighbour(3, 3, 2, 5)
    known = torch.randint(0, 5, (2, 3, 3, 2))
    mask = torch.rand(2, 3, 3, 2, generator=torch.Generator().manual_seed(1)) < 0.4
    for kw in ({}, {"known": known, "mask": mask}):
        FastLeftNeighbour.calls = 0
        with pytest.warns(DeprecationWarning, match="fast_sampler"):
            fast = zoo.sample(m, 2, generator=torch.Generator().manual_seed(7), **kw)
        assert FastLeftNeighbour.calls == 1
        naive = zoo.sample(m, 2, method="naive", generator=torch.Generator().manual_seed(7), **kw)
        assert torch.equal(fast, naive)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"method": "warp"}, "method must be one of"),
        ({"method": "fast"}, "has no fast sampler"),
        ({"temperature": -1.0}, "temperature"),
        ({"known": torch.zeros(1, 2, 2, dtype=torch.long)}, "needs both"),
        ({"known": torch.zeros(1, 2, 2, dtype=torch.long), "mask": torch.ones(2, 2)}, "bool tensor"),
        (
            {"known": torch.zeros(1, 2, 2, dtype=torch.long), "mask": torch.ones(3, 3, dtype=torch.bool)},
            "does not broadcast",
        ),
        (
            {"known": torch.full((1, 2, 2), 9), "mask": torch.ones(2, 2, dtype=torch.bool)},
            r"known: expected .* got values",
        ),
        ({"generator": "seed"}, "must be a torch.Generator"),
    ],
)
def test_bad_sampling_arguments(kw, message):
    m = LeftNeighbour(1, 2, 2, 3)
    with pytest.raises((ValueError, TypeError), match=message):
        zoo.sample(m, 2, **kw)


def test_bad_n():
    with pytest.raises(ValueError, match="positive int"):
        zoo.sample(LeftNeighbour(), 0)


def test_sample_naive_skips_nothing_it_should_not():
    m = LeftNeighbour(1, 2, 2, 3)
    u = draw_uniforms(2, m.data_spec, torch.Generator().manual_seed(0))
    x = sample_naive(m, u)
    assert torch.allclose(m.log_prob(x), categorical_log_prob(m.logits(x), x))


def test_sampling_restores_training_mode():
    m = LeftNeighbour()
    m.train()
    m.sample(1)
    assert m.training


def test_after_first_subpixels_follows_the_sampling_order():
    from zoo.sampling import after_first_subpixels

    m = after_first_subpixels(DataSpec(channels=3, height=2, width=3, levels=4), 4)
    assert m.shape == (3, 2, 3) and int((~m).sum()) == 4
    assert not m[:, 0, 0].any()  # pixel (0, 0): R, G, B drawn
    assert m[:, 0, 1].tolist() == [False, True, True]  # then R of pixel (0, 1)
    assert m[:, 1].all() and m[:, 0, 2].all()


def _zoo_imports(path) -> set[str]:
    """The zoo modules that a module of the zoo package imports (relative or absolute), e.g. {"protocols"}."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.add(node.module or "")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module is not None  # always so for an absolute import
            and node.module.split(".")[0] in ("zoo", "zoo_pixelcnn", "zoo_pixelrnn")
        ):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "zoo"}
    return found


def test_import_rule_of_the_sampling_driver_and_the_building_blocks():
    """zoo/sampling.py may import only zoo.protocols and zoo.util of the zoo; zoo/nn.py only zoo.util
    (both import torch): leaves that every model file and the rest of the core can use."""
    from pathlib import Path

    root = Path(zoo.__file__).parent
    assert _zoo_imports(root / "sampling.py") == {"protocols", "util"}
    assert _zoo_imports(root / "nn.py") == {"util"}
