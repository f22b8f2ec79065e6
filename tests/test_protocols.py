"""DataSpec validation and the runtime-checkable protocols."""

import pytest
import torch

import zoo
from zoo.protocols import DataSpec


def test_dataspec_basics():
    spec = DataSpec(3, 32, 32, 256)
    assert spec.shape == (3, 32, 32)
    assert spec.dims == 3072
    assert spec.bits_per_dim(3072 * torch.log(torch.tensor(2.0)).item()) == pytest.approx(1.0)
    assert DataSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("bad", [dict(channels=0), dict(levels=1), dict(height=2.5), dict(width=True)])
def test_dataspec_rejects_bad_fields(bad):
    kw = dict(channels=1, height=4, width=4, levels=2) | bad
    with pytest.raises(ValueError, match="DataSpec"):
        DataSpec(**kw)


def test_validate_accepts_integer_images():
    spec = DataSpec(1, 4, 4, 2)
    x = torch.randint(0, 2, (3, 1, 4, 4))
    assert spec.validate(x) is x
    assert spec.validate(x.to(torch.uint8)) is not None
    assert spec.validate(x[0], batch=False) is not None


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.rand(2, 1, 4, 4), "dtype torch.float32"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.bool), "dtype torch.bool"),
        (torch.zeros(2, 1, 4, 5, dtype=torch.long), r"got shape \(2, 1, 4, 5\)"),
        (torch.zeros(1, 4, 4, dtype=torch.long), r"got shape \(1, 4, 4\)"),
        (torch.full((2, 1, 4, 4), 2), r"got values in \[2, 2\]"),
        (torch.full((2, 1, 4, 4), -1), r"got values in \[-1, -1\]"),
        ([[0, 1]], "got list"),
    ],
)
def test_validate_says_what_was_expected_and_what_came(x, message):
    spec = DataSpec(1, 4, 4, 2)
    with pytest.raises(ValueError, match=message) as e:
        spec.validate(x)
    assert "expected an integer tensor of shape (B, 1, 4, 4) with levels in [0, 2)" in str(e.value)


def test_protocols_are_runtime_checkable():
    m = zoo.create("independent", height=4, width=4)
    assert isinstance(m, zoo.Model) and isinstance(m, zoo.Likelihood) and isinstance(m, zoo.Sampler)
    assert isinstance(m, zoo.Autoregressive)

    class OnlySampler:
        data_spec = DataSpec(1, 2, 2, 2)

        def sample(self, n, *, generator=None, temperature=1.0, known=None, mask=None):
            return torch.zeros(n, 1, 2, 2, dtype=torch.long)

    s = OnlySampler()
    assert isinstance(s, zoo.Sampler) and not isinstance(s, zoo.Likelihood)
