"""The Diagonal BiLSTM's fast scan (plugins/zoo_pixelrnn/diagonal_scan.py) against its plain
version, `torch.autograd.gradcheck`, and the logits of the implementation it replaced; the scan's cell
updates both ways, in the C kernel (diagonal_cells.c, where a compiler builds it) and in PyTorch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo_pixelrnn import diagonal_scan as scan_module
from zoo_pixelrnn.diagonal import DiagonalBiLSTM
from zoo_pixelrnn.diagonal_scan import SlotLayout, diagonal_bilstm, diagonal_bilstm_reference, diagonal_scan

FIXTURE = Path(__file__).parent / "fixtures" / "pixelrnn_diag_9491e71.safetensors"
SIZES = [(3, 4, 2, 2), (5, 5, 1, 3), (1, 3, 2, 2), (4, 1, 2, 1), (6, 2, 3, 2)]  # H, W, B, h


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread (conftest)


@pytest.fixture(params=["c", "torch"])
def cells(request, monkeypatch):
    """Run the test with the scan's cell updates in the C kernel, then in PyTorch."""
    if request.param == "torch":
        monkeypatch.setattr(scan_module, "_kernels", lambda *tensors: None)
    elif scan_module._c_kernels(torch.float64) is None:
        pytest.skip("diagonal_cells.c could not be built here (no C compiler, or ZOO_NATIVE=0)")
    return request.param


def _inputs(H, W, B, h, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    gates = torch.randn(H, W, B, 2, 4 * h, generator=g, dtype=dtype).requires_grad_()
    w_state = torch.randn(2, 2 * h, 4 * h, generator=g, dtype=dtype).requires_grad_()
    return gates, w_state


@pytest.mark.parametrize("H,W,B,h", SIZES)
def test_hand_written_backward_passes_gradcheck(H, W, B, h, cells):
    assert torch.autograd.gradcheck(diagonal_bilstm, _inputs(H, W, B, h))


def test_scan_with_input_product_passes_gradcheck(cells):
    """`diagonal_scan` itself (features in diagonal order, the input product and bias), every input differentiated."""
    layout = SlotLayout(4, 3)
    g = torch.Generator().manual_seed(4)
    shapes = [(2, 12, 2, 3), (2, 3, 8), (2, 8), (2, 4, 8)]  # x, w_in, bias, w_state
    args = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]
    assert torch.autograd.gradcheck(lambda *a: diagonal_scan(*a, layout), args)


@pytest.mark.parametrize("H,W,B,h", SIZES)
def test_fast_scan_equals_the_plain_recurrence(H, W, B, h, cells):
    gates, w_state = _inputs(H, W, B, h, torch.float32, seed=H * 10 + W)
    fast = diagonal_bilstm(gates, w_state)
    plain = diagonal_bilstm_reference(gates, w_state)
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
    weight = torch.randn_like(plain)  # compare gradients of a generic scalar of the outputs
    d_fast = torch.autograd.grad((fast * weight).sum(), (gates, w_state))
    d_plain = torch.autograd.grad((plain * weight).sum(), (gates, w_state))
    for a, b in zip(d_fast, d_plain, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_directions_read_the_pixel_above_and_the_pixel_behind():
    """Direction 0 at (i, j) depends on (i', j') only for i' <= i, j' <= j; direction 1 for j' >= j."""
    H, W, B, h = 4, 5, 1, 2
    gates, w_state = _inputs(H, W, B, h)
    out = diagonal_bilstm(gates, w_state)
    for d, allowed in ((0, lambda i, j: i <= 2 and j <= 3), (1, lambda i, j: i <= 2 and j >= 3)):
        (grad,) = torch.autograd.grad(out[2, 3, 0, d].sum(), gates, retain_graph=True)
        seen = grad[:, :, 0, d].abs().sum(-1) > 0  # (H, W)
        assert not grad[:, :, 0, 1 - d].any()  # the directions are independent
        for i in range(H):
            for j in range(W):
                assert bool(seen[i, j]) == allowed(i, j), (d, i, j)


@pytest.mark.parametrize("scale,threads", [(1.0, 1), (40.0, 1), (1.0, 2)])  # 40: gates far into saturation
def test_c_kernel_gives_the_pytorch_cells_numbers(scale, threads, monkeypatch):
    """At the release's width (h = 16) in float32, training (every gate kept) and scoring (a workspace),
    on one thread and with the second direction on a second thread."""
    if scan_module._c_kernels(torch.float32) is None:
        pytest.skip("diagonal_cells.c could not be built here (no C compiler, or ZOO_NATIVE=0)")
    layout, g = SlotLayout(6, 5), torch.Generator().manual_seed(1)
    # batch 30: up to 150 rows a diagonal, several of the kernel's 64-row chunks and a partial one
    shapes = [(2, 30, 30, 7), (2, 7, 64), (2, 64), (2, 32, 64)]  # x, w_in, bias, w_state
    args = [(torch.randn(s, generator=g) * scale / s[-2] ** 0.5).requires_grad_() for s in shapes]
    weight = torch.randn(2, layout.n_slots, 30, 16, generator=g)

    def run():
        hs = diagonal_scan(*args, layout)
        with torch.no_grad():
            scored = diagonal_scan(*args, layout)
        return hs, scored, torch.autograd.grad((hs * weight).sum(), args)

    torch.set_num_threads(threads)  # (the one_torch_thread fixture restores the count afterwards)
    c_hs, c_scored, c_grads = run()
    torch.set_num_threads(1)
    monkeypatch.setattr(scan_module, "_kernels", lambda *tensors: None)
    t_hs, t_scored, t_grads = run()
    # the kernel sums the products in another order, with fused multiply-adds: float rounding apart, which
    # grows with the pre-activations' size
    torch.testing.assert_close(c_hs, t_hs, atol=2e-6 * scale, rtol=1e-5)
    torch.testing.assert_close(c_scored, t_scored, atol=2e-6 * scale, rtol=1e-5)
    assert torch.equal(c_hs, c_scored)  # scoring keeps one diagonal's workspace: the same numbers
    for a, b in zip(c_grads, t_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_slot_layout_holds_every_cell_once():
    lay = SlotLayout(5, 3)
    assert sorted(lay.slots[0].tolist()) == sorted(lay.slots[1].tolist())
    assert len(set(lay.slots[0].tolist())) == 15 and len(lay.pads) == lay.n_slots - 15
    assert sorted(lay.cells[0].tolist()) == list(range(15)) == sorted(lay.cells[1].tolist())
    assert sum(n for _, n, _, _ in lay.steps) == 15 and len(lay.steps) == 5 + 3 - 1


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(H, W, B, 2, 4h\)"):
        diagonal_bilstm(torch.zeros(3, 3, 1, 2, 8), torch.zeros(2, 4, 4))


@pytest.mark.parametrize(
    "tag,channels,levels,full_context", [("binary", 1, 2, True), ("colour", 3, 5, True), ("paper", 1, 2, False)]
)
def test_logits_of_the_replaced_implementation(tag, channels, levels, full_context, cells):
    """Frozen logits of the per-column implementation of commit 9491e71 (7 x 9 images, 2 layers,
    h = 6, random weights with N(0, 0.25) entries): the fast layer reproduces them."""
    saved = load_file(FIXTURE)
    m = DiagonalBiLSTM(
        channels=channels,
        height=7,
        width=9,
        levels=levels,
        layers=2,
        hidden=6,
        out_features=12,
        full_context=full_context,
    )
    prefix = f"{tag}.state."
    m.load_state_dict({k[len(prefix) :]: v for k, v in saved.items() if k.startswith(prefix)}, strict=True)
    with torch.no_grad():
        logits = m.logits(saved[f"{tag}.x"])
    torch.testing.assert_close(logits, saved[f"{tag}.logits"], atol=1e-4, rtol=0)
