"""The Row LSTM recurrence as one autograd Function, with a hand-written backward.

Van den Oord, Kalchbrenner, Kavukcuoglu 2016, "Pixel Recurrent Neural Networks", section 3.1:
row i of a layer's LSTM state is computed from the previous row's state and the layer's input,

    [o, f, i, g] = [sigmoid, sigmoid, sigmoid, tanh](K_ss (*) h_{i-1} + K_is (*) x_i)
    c_i = f . c_{i-1} + i . g,     h_i = o . tanh(c_i),         h_{-1} = c_{-1} = 0

where K_ss (*) is a 1 x k convolution along the row (zero padded, unmasked). The input-to-state
term K_is (*) x_i does not depend on the state: the caller computes it for all rows at once
(`pre` below); only the row-to-row recurrence needs a loop.

Written as a plain loop under autograd (`row_scan_reference`) each row records a dozen small
operations, and on the CPU their bookkeeping and copies cost far more than the arithmetic.
`RowScan` runs the same recurrence in preallocated buffers, 8 operations per row forward and
14 backward, and backpropagates through the rows by hand (BPTT), with d x = dL/dx and o, f, i, g
of row i:

    d h_i   = dL/dh_i (from the layer's output) + K_ss^T (*) d pre_{i+1}  (row i+1 read h_i)
    d c_i   = d c_{i+1} . f_{i+1} + d h_i . o . (1 - tanh(c_i)^2)
    d pre_i = [d h_i . tanh(c_i) . o(1-o),  d c_i . c_{i-1} . f(1-f),  d c_i . g . i(1-i),  d c_i . i . (1-g^2)]
    d K_ss  = sum_i  d pre_i (x) windows(h_{i-1})     (kept from the forward; one matrix product at the end)

K_ss^T (*) is a product with each tap's matrix, each result added back at the column its tap
read. Without gradients (scoring), only one row of gates and cells is kept.

Layout `(channels, H, B, W)`: channels first, then rows, then the row's pixels (batch and
columns together, N = B * W). `pre` is `(4h, H, B, W)` with gate blocks [o | f | i | g] (as
`lstm_cell` in layers.py), the kernel `(4h, h, k)` is the weight of `nn.Conv1d(h, 4h, k)`, the
output `(h, H, B, W)`. For one row, the state-to-state convolution is one product
`(4h, k h) @ (k h, N)` of the kernel and the row's k-wide windows, and each gate is a contiguous
block `(h, N)`: measured on the CPU, both the small matrix products and the elementwise gate
operations are about twice as fast this way round as with channels last (`(N, 4h)`, where
each gate is a strided column slice).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from zoo.nn import fast_tanh, sigmoid_and_tanh_

from .layers import lstm_cell

__all__ = ["row_scan", "row_scan_reference", "RowScan", "lstm_row"]


def _check(pre: torch.Tensor, kernel: torch.Tensor) -> None:
    if pre.ndim != 4 or kernel.ndim != 3 or not pre.shape[0] == kernel.shape[0] == 4 * kernel.shape[1]:
        raise ValueError(
            f"expected pre (4h, H, B, W) and kernel (4h, h, k), got {tuple(pre.shape)} and {tuple(kernel.shape)}"
        )
    if kernel.shape[-1] % 2 == 0:
        raise ValueError(f"the kernel width must be odd, got {kernel.shape[-1]}")


def row_scan(pre: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Hidden states of all rows `(h, H, B, W)` (a view into a zero-padded buffer) from the
    input-to-state pre-activations `pre` `(4h, H, B, W)` and the state-to-state kernel
    `(4h, h, k)`; see the module docstring. Without gradients to compute (e.g. under
    `torch.no_grad()`), nothing is kept for backward."""
    _check(pre, kernel)
    if torch.is_grad_enabled() and (pre.requires_grad or kernel.requires_grad):
        return RowScan.apply(pre, kernel)
    with torch.no_grad():
        return _scan(pre, kernel, keep=False)[0]


def row_scan_reference(pre: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The same recurrence, plainly: a loop over rows with autograd (the tests compare against it)."""
    _check(pre, kernel)
    G, H, B, W = pre.shape
    h = c = pre.new_zeros(B, W, G // 4)  # the row above the image
    rows = []
    for i in range(H):
        state = F.conv1d(h.transpose(1, 2), kernel, padding=kernel.shape[-1] // 2).transpose(1, 2)  # (B, W, 4h)
        h, c = lstm_cell(pre[:, i].permute(1, 2, 0) + state, c)  # (B, W, h) each
        rows.append(h)
    return torch.stack(rows).permute(3, 0, 1, 2)  # (h, H, B, W)


def lstm_row(a: torch.Tensor, c_old: torch.Tensor, c_new: torch.Tensor, tanh_c: torch.Tensor, h: torch.Tensor) -> None:
    """The LSTM update of one row, in place (as `lstm_cell`, channels first): the pre-activations
    `a` `(4h, B, W)`, blocks [o | f | i | g], become the gates; then c_new = f . c_old + i . g
    (c_new may be c_old), tanh_c = tanh(c_new), h = o . tanh_c, all `(h, B, W)`."""
    hid = a.shape[0] // 4
    sigmoid_and_tanh_(a, a[3 * hid :])  # o, f, i sigmoid; g tanh
    o, f, i, g = a.split(hid)  # (h, B, W) each
    torch.mul(f, c_old, out=c_new)
    c_new.addcmul_(i, g)
    fast_tanh(c_new, out=tanh_c)
    torch.mul(o, tanh_c, out=h)


def _scan(pre: torch.Tensor, kernel: torch.Tensor, keep: bool):
    """The forward recurrence. With `keep`, every row's windows, gates and cells are kept for
    backward; without, one row's buffers are reused. Returns h `(h, H, B, W)` (a view into the
    zero-padded `h_pad` `(h, H+1, B, W+2p)`) and the buffers win `(k h, H, B, W)` (the windows
    of h_{i-1}), gates `(H, 4h, B, W)`, c `(H+1, h, B, W)`, tanh_c `(H, h, B, W)`."""
    G, H, B, W = pre.shape
    hid, k = G // 4, kernel.shape[-1]
    p = k // 2
    w_ss = kernel.permute(0, 2, 1).reshape(G, k * hid)  # column t * h + c is K_ss[:, c, t], as in `win`
    # h_pad[:, i + 1] is h of row i with p zero columns on either side; h_pad[:, 0] is the zero row above the image
    h_pad = pre.new_zeros(hid, H + 1, B, W + 2 * p)
    rows = H if keep else 1
    win = pre.new_empty(k * hid, rows, B, W)  # row t * h + c: h_{i-1} at column j + t - p
    gates = pre.new_empty(rows, G, B, W)  # o, f, i, g after their nonlinearities
    c = pre.new_empty(rows + 1, hid, B, W)  # c[i] is c of row i - 1 (without `keep`: two slots in turn)
    c[0].zero_()  # the row above the image
    tanh_c = pre.new_empty(rows, hid, B, W)
    # per-row views, made once: row i of pre (4h, N), the windows of h_{i-1}, as (k, h, B, W)
    # in h_pad and as (k h, N) in `win`, the gates (4h, N), h_i (h, B, W)
    pre_rows = pre.reshape(G, H, -1).unbind(1)
    h_windows = h_pad.unfold(-1, k, 1).movedim(-1, 0).unbind(2)
    win_4d, win_rows = win.view(k, hid, rows, B, W).unbind(2), win.view(k * hid, rows, -1).unbind(1)
    gate_rows = gates.view(rows, G, -1).unbind(0)
    h_rows = h_pad[:, 1:, :, p : p + W].unbind(1)
    for i in range(H):
        r = i % rows  # row i's slot in the buffers (always 0 without `keep`)
        win_4d[r].copy_(h_windows[i])
        torch.addmm(pre_rows[i], w_ss, win_rows[r], out=gate_rows[r])  # K_is x_i + K_ss h_{i-1}
        lstm_row(gates[r], c[i % (rows + 1)], c[(i + 1) % (rows + 1)], tanh_c[r], h_rows[i])
    return h_pad[:, 1:, :, p : p + W], win, gates, c, tanh_c


class RowScan(torch.autograd.Function):
    """`row_scan` with backpropagation through the rows written out (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        h, win, gates, c, tanh_c = _scan(pre, kernel, keep=True)
        ctx.save_for_backward(kernel, win, gates, c, tanh_c)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        kernel, win, gates, c, tanh_c = ctx.saved_tensors  # (k h, H, B, W), (H, 4h, B, W), (H+1, h, B, W), (H, h, B, W)
        H, G, B, W = gates.shape
        hid, k = G // 4, kernel.shape[-1]
        p = k // 2
        grad_h = grad_h.contiguous()  # (h, H, B, W)
        w_taps = kernel.permute(2, 1, 0).reshape(k * hid, G)  # row t * h + c is K_ss[:, c, t]
        d_pre = gates.new_empty(G, H, B, W)  # every row is written below
        dh = grad_h[:, H - 1].clone()  # (h, B, W): d h of the current row, all paths
        dc = torch.zeros_like(dh)  # d c of the current row, all paths
        tmp = torch.empty_like(dh)
        z = gates.new_empty(k, hid, B, W)  # z[t] = K_ss[:, :, t]^T d pre of a row
        z_centre = z[p]
        # for column j, tap t read h_{i-1} at column j + t - p: where z[t] is added back into dh
        shifts = [
            (dh[..., : W + t - p], z[t, ..., p - t :]) if t < p else (dh[..., t - p :], z[t, ..., : W + p - t])
            for t in range(k)
            if t != p
        ]
        # per-row views, made once: (h, B, W) blocks of the gates and of d pre, the o, f, i blocks
        # together (3h, B, W), tanh(c_i), c_{i-1}, dL/dh_i from the output, d pre_i as (4h, N)
        o, f, ig, g = (block.unbind(0) for block in gates.split(hid, 1))  # ig: the input gate
        d_o, d_f, d_i, d_g = (block.unbind(1) for block in d_pre.split(hid))
        ofi, d_ofi = gates[:, : 3 * hid].unbind(0), d_pre[: 3 * hid].unbind(1)
        tc, c_old, grad_rows, d_rows = tanh_c.unbind(0), c.unbind(0), grad_h.unbind(1), d_pre.view(G, H, -1).unbind(1)
        for i in reversed(range(H)):
            # h = o . tanh(c)
            torch.mul(dh, tc[i], out=d_o[i])
            torch.ops.aten.tanh_backward.grad_input(dh, tc[i], grad_input=tmp)  # dh . (1 - tanh(c)^2)
            dc.addcmul_(tmp, o[i])
            # c = f . c_prev + i . g
            torch.mul(dc, c_old[i], out=d_f[i])
            torch.mul(dc, g[i], out=d_i[i])
            torch.mul(dc, ig[i], out=d_g[i])
            # through the nonlinearities (autograd's own kernels): sigmoid' = s (1 - s), tanh' = 1 - t^2
            torch.ops.aten.sigmoid_backward.grad_input(d_ofi[i], ofi[i], grad_input=d_ofi[i])
            torch.ops.aten.tanh_backward.grad_input(d_g[i], g[i], grad_input=d_g[i])
            if i > 0:  # to row i - 1: its c through f, its h through K_ss
                dc.mul_(f[i])
                torch.mm(w_taps, d_rows[i], out=z.view(k * hid, -1))
                torch.add(grad_rows[i - 1], z_centre, out=dh)
                for dst, src in shifts:
                    dst.add_(src)
        d_kernel = None
        if ctx.needs_input_grad[1]:
            d_w = d_pre.view(G, -1) @ win.view(k * hid, -1).t()  # (4h, k h), columns as in `_scan`'s w_ss
            d_kernel = d_w.view(G, k, hid).permute(0, 2, 1)
        return d_pre, d_kernel
