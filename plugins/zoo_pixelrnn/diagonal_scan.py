"""The Diagonal BiLSTM's recurrence, fast and plain (van den Oord et al. 2016a, "Pixel Recurrent
Neural Networks", arXiv:1601.06759, section 3.2).

For each direction the state at pixel (i, j) is an LSTM step from the input-to-state gates
there, the hidden state of the pixel above and the state of the pixel before it in the scan:

    left-to-right:  pre = gates(i, j) + h(i-1, j) @ W_above + h(i, j-1) @ W_side,  c from (i, j-1)
    right-to-left:  pre = gates(i, j) + h(i-1, j) @ W_above + h(i, j+1) @ W_side,  c from (i, j+1)
    o, f, i_, g = sigmoid, sigmoid, sigmoid, tanh of the four h-wide blocks of pre
    c = f * c_side + i_ * g,    h = o * tanh(c)

with zero state outside the image. (The paper writes this as a column-wise 2x1 convolution on
the skewed map, whose columns are the image's diagonals; `W_above` and `W_side` are its taps.)

`diagonal_bilstm_reference` is that recurrence written plainly, pixel by pixel. The model runs
`diagonal_bilstm`, which computes the same numbers faster:

- one diagonal at a time (all pixels of a diagonal depend only on the previous one), both
  directions side by side, in a packed layout that holds only image cells: `slots`, a zero
  slot, then diagonal 0, a zero slot, diagonal 1, ... so that "the cells above" and "the cells
  beside" of a diagonal are two contiguous runs of the previous one (zero slots stand in for
  the image border), and every step is a few plain matrix products on contiguous memory;
- a `torch.autograd.Function` with a hand-written backward (backpropagation through the
  diagonals, then each weight gradient in one matrix product), held to
  `torch.autograd.gradcheck` and to the plain version in the tests;
- where `zoo.native` can build it, the loop over the diagonals runs in a small C kernel,
  `diagonal_cells.c`: per diagonal, the three small matrix products and the LSTM's elementwise
  update in one pass over memory, each direction on its own thread. Elsewhere (no C compiler,
  `ZOO_NATIVE=0`, other devices) the same loop runs in PyTorch, a few matrix products and a dozen
  elementwise operations per diagonal (`_cells_forward`, `_cells_backward`); the tests hold the two
  together.

Shapes: H x W image, B batch, D = 2 directions, h hidden units per gate, N = H * W cells.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from zoo import native
from zoo.nn import fast_tanh, sigmoid_and_tanh_

__all__ = ["diagonal_bilstm", "diagonal_bilstm_reference", "diagonal_scan", "SlotLayout"]

_KERNELS = Path(__file__).with_name("diagonal_cells.c")


@functools.cache
def _c_kernels(dtype: torch.dtype) -> tuple[Any, Any] | None:
    """`diagonal_cells.c`'s whole-scan forward and backward for float32 or float64, or None where it cannot
    be built."""
    lib = native.load(_KERNELS)
    suffix = {torch.float32: "f32", torch.float64: "f64"}.get(dtype)
    if lib is None or suffix is None:
        return None
    forward = getattr(lib, f"diagonal_scan_forward_{suffix}")
    backward = getattr(lib, f"diagonal_scan_backward_{suffix}")
    forward.argtypes = [ctypes.c_void_p] * 9 + [ctypes.c_long] * 8 + [ctypes.c_int] * 2
    backward.argtypes = [ctypes.c_void_p] * 8 + [ctypes.c_long] * 6 + [ctypes.c_int]
    forward.restype = backward.restype = ctypes.c_int
    return _checked(forward), _checked(backward)


def _checked(kernel: Any) -> Any:
    """`kernel` called with exactly its declared arguments (ctypes would pass surplus ones unconverted),
    raising on a non-zero return."""
    count = len(kernel.argtypes)

    def call(*args: int) -> None:
        if len(args) != count:
            raise TypeError(f"{kernel.__name__} takes {count} arguments, got {len(args)}")
        if kernel(*args) != 0:
            raise RuntimeError(f"{kernel.__name__} refused its arguments")

    return call


def _kernels(*tensors: Tensor) -> tuple[Any, Any] | None:
    """The C kernels for these tensors: on the CPU, contiguous, all float32 or all float64; else None."""
    t = tensors[0]
    if t.device.type != "cpu" or not all(x.is_contiguous() and x.dtype == t.dtype for x in tensors):
        return None
    return _c_kernels(t.dtype)


def _lstm(a: torch.Tensor, c_side: torch.Tensor, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations `a` `(..., 4h)` ([o | f | i | g]) and the side cell state -> `(h, c)`."""
    o, f, i, g = (
        a[..., :h].sigmoid(),
        a[..., h : 2 * h].sigmoid(),
        a[..., 2 * h : 3 * h].sigmoid(),
        a[..., 3 * h :].tanh(),
    )
    c = f * c_side + i * g
    return o * torch.tanh(c), c


def diagonal_bilstm_reference(gates: torch.Tensor, w_state: torch.Tensor) -> torch.Tensor:
    """`gates` `(H, W, B, 2, 4h)`, `w_state` `(2, 2h, 4h)` -> hidden states `(H, W, B, 2, h)`.

    `w_state[d]` stacks direction d's taps: rows `:h` act on the pixel above, rows `h:` on the
    pixel beside (left for direction 0, right for direction 1). Pixel by pixel, with autograd.
    """
    H, W, B, D, G = gates.shape
    h = G // 4
    zero = gates.new_zeros(B, h)
    out = []
    for d, columns in ((0, range(W)), (1, range(W - 1, -1, -1))):
        hs = [[zero] * W for _ in range(H)]
        cs = [[zero] * W for _ in range(H)]
        for i in range(H):
            for j in columns:
                side = j - 1 if d == 0 else j + 1
                h_above = hs[i - 1][j] if i > 0 else zero
                h_side, c_side = (hs[i][side], cs[i][side]) if 0 <= side < W else (zero, zero)
                pre = gates[i, j, :, d] + h_above @ w_state[d, :h] + h_side @ w_state[d, h:]
                hs[i][j], cs[i][j] = _lstm(pre, c_side, h)
        out.append(torch.stack([torch.stack(row) for row in hs]))  # (H, W, B, h)
    return torch.stack(out, 3)


class SlotLayout:
    """Where each image cell sits in the packed diagonal layout, for an `H x W` image.

    Per direction, slot order: 2 zero slots, then per diagonal t = 0 .. H+W-2 its cells (rows
    lo_t .. hi_t - 1; row i holds column t - i for direction 0 and column W - 1 - (t - i) for
    direction 1), each diagonal followed by one zero slot. `steps` lists per diagonal
    `(first cell, count, first slot, first slot of the cells above)`; the cells beside start
    one slot after the cells above. Slot 0 is always zero.
    """

    def __init__(self, height: int, width: int, device: torch.device | str = "cpu"):
        H, W = height, width
        self.height, self.width, self.n_cells = H, W, H * W
        self.steps: list[tuple[int, int, int, int]] = []  # (first cell, cells, first slot, slot above the first)
        cell_of, slot_of = [], torch.zeros(H, W, dtype=torch.long)
        offset, prev_start, prev_lo = 0, 1, 0
        for t in range(H + W - 1):
            lo, hi = max(0, t - W + 1), min(H, t + 1)
            start = offset + t + 2
            self.steps.append((offset, hi - lo, start, prev_start + lo - 1 - prev_lo))
            for i in range(lo, hi):
                cell_of.append((i, t - i))
                slot_of[i, t - i] = start + i - lo
            offset, prev_start, prev_lo = offset + hi - lo, start, lo
        self.n_slots = offset + H + W + 1
        rows, cols = torch.tensor(cell_of).unbind(1)
        # the image cell (flat index) at each position of the diagonal order, per direction
        self.cells = torch.stack([rows * W + cols, rows * W + (W - 1 - cols)]).to(device)  # (2, N)
        # the slot of each image cell (flat index), per direction
        self.slots = torch.stack([slot_of.flatten(), slot_of.flip(1).flatten()]).to(device)  # (2, N)
        used = torch.zeros(self.n_slots, dtype=torch.bool)
        used[slot_of.flatten()] = True
        self.pads = (~used).nonzero().flatten().to(device)  # the zero slots
        self.above = torch.tensor([a + r for (_, n, _, a) in self.steps for r in range(n)], device=device)  # (N,)
        self.step_table = torch.tensor(self.steps, dtype=torch.int64)  # (diagonals, 4): the C kernels' steps


@torch.no_grad()
def _scan_forward(
    layout: SlotLayout,
    x: Tensor,
    w_in: Tensor,
    bias: Tensor,
    acts: Tensor,
    hs: Tensor,
    cs: Tensor,
    tcs: Tensor,
    w_state: Tensor,
) -> None:
    """Both directions, diagonal by diagonal. In: `x` `(D, N, B*F)` the cells'
    features, `w_in` `(D, F, 4h)`, `bias` `(D, 4h)`, `w_state` `(D, 2h, 4h)`. Out:
    `acts` `(D, N, B*4h)` o, f, i, g; `hs`, `cs` `(D, slots, B*h)` h and c; `tcs` tanh(c).
    `acts` and `tcs` may instead hold a single diagonal (a workspace, when nothing is kept)."""
    D, h, F = acts.shape[0], w_state.shape[1] // 2, w_in.shape[1]
    B, S, rows = hs.shape[2] // h, hs.shape[1], acts.shape[1]
    keep = rows == x.shape[1]
    kernels = _kernels(x, w_in, bias, w_state, acts, tcs, hs, cs)
    if kernels:
        pointers = [t.data_ptr() for t in (x, w_in, bias, w_state, acts, tcs, hs, cs, layout.step_table)]
        sizes = (len(layout.steps), D, x.shape[1], rows, S, B, h, F)
        kernels[0](*pointers, *sizes, keep, torch.get_num_threads())
        return
    w_above, w_side = w_state[:, :h], w_state[:, h:]
    for first, n, start, above in layout.steps:
        at = first if keep else 0
        a = acts[:, at : at + n].view(D, n * B, 4 * h)
        for d in range(D):  # (a batched product would copy its strided operands)
            torch.addmm(bias[d], x[d, first : first + n].view(n * B, F), w_in[d], out=a[d])
            a[d].addmm_(hs[d, above : above + n].view(n * B, h), w_above[d])
            a[d].addmm_(hs[d, above + 1 : above + 1 + n].view(n * B, h), w_side[d])
        _cells_forward(acts, tcs, hs, cs, h, at, n, start, above)


def _cells_forward(
    acts: Tensor, tcs: Tensor, hs: Tensor, cs: Tensor, h: int, at: int, n: int, start: int, above: int
) -> None:
    """One diagonal's cells (`diagonal_cells.c` does the same): its pre-activations in `acts` (from row `at`)
    become the gates, and the cells' c, tanh(c) (`tcs`, from row `at`) and h are written."""
    D = acts.shape[0]
    a = acts[:, at : at + n].view(D, -1, 4 * h)  # (D, n*B, 4h)
    sigmoid_and_tanh_(a, a[..., 3 * h :])  # o, f, i sigmoid; g tanh
    c = torch.mul(
        a[..., h : 2 * h],
        cs[:, above + 1 : above + 1 + n].view(D, -1, h),
        out=cs[:, start : start + n].view(D, -1, h),
    )
    c.addcmul_(a[..., 2 * h : 3 * h], a[..., 3 * h :])  # c = f * c_side + i * g
    tc = fast_tanh(c, out=tcs[:, at : at + n].view(D, -1, h))
    torch.mul(a[..., :h], tc, out=hs[:, start : start + n].view(D, -1, h))


@torch.no_grad()
def _scan_backward(
    layout: SlotLayout,
    d_pre: Tensor,
    dh: Tensor,
    acts: Tensor,
    hs: Tensor,
    cs: Tensor,
    tcs: Tensor,
    w_state: Tensor,
) -> Tensor:
    """Both directions, diagonals in reverse: fills `d_pre` `(D, N, B*4h)` (d loss / d gates)
    from `dh` `(D, slots, B*h)` (d loss / d h, accumulated in place); returns d loss / d w_state
    `(D, 2h, 4h)`."""
    D, h = acts.shape[0], w_state.shape[1] // 2
    B, S, N = hs.shape[2] // h, hs.shape[1], acts.shape[1]
    dc = torch.zeros_like(cs)  # from the cell beside (zero for the last cell of a row)
    kernels = _kernels(acts, tcs, dh, dc, cs, d_pre, w_state)
    if kernels:
        pointers = [t.data_ptr() for t in (acts, tcs, dh, dc, cs, d_pre, w_state, layout.step_table)]
        kernels[1](*pointers, len(layout.steps), D, N, S, B, h, torch.get_num_threads())
    else:
        w_above, w_side = w_state[:, :h], w_state[:, h:]
        for first, n, start, above in reversed(layout.steps):
            _cells_backward(acts, tcs, dh, dc, cs, d_pre, h, first, n, start, above)
            dp = d_pre[:, first : first + n].view(D, n * B, 4 * h)
            for d in range(D):
                dh[d, above : above + n].view(n * B, h).addmm_(dp[d], w_above[d].t())  # to the cells above
                dh[d, above + 1 : above + 1 + n].view(n * B, h).addmm_(dp[d], w_side[d].t())  # to the cells beside
    d_flat = d_pre.view(D, -1, 4 * h)
    return torch.cat(
        [
            torch.bmm(hs.index_select(1, rows).view(D, -1, h).transpose(1, 2), d_flat)  # (D, h, 4h)
            for rows in (layout.above, layout.above + 1)
        ],
        1,
    )  # the above tap, then the side tap


def _cells_backward(
    acts: Tensor,
    tcs: Tensor,
    dh: Tensor,
    dc: Tensor,
    cs: Tensor,
    d_pre: Tensor,
    h: int,
    first: int,
    n: int,
    start: int,
    above: int,
) -> None:
    """One diagonal's cells backward (`diagonal_cells.c` does the same): d loss / d pre-activations into
    `d_pre`, from the gates `acts`, tanh(c) `tcs`, and dh and dc of the diagonal's slots; dc of the cells
    beside written into theirs (the previous diagonal's)."""
    D = acts.shape[0]
    a = acts[:, first : first + n].view(D, -1, 4 * h)  # (D, n*B, 4h)
    o, f, i, g = a[..., :h], a[..., h : 2 * h], a[..., 2 * h : 3 * h], a[..., 3 * h :]
    tc = tcs[:, first : first + n].view(D, -1, h)
    dh_t = dh[:, start : start + n].view(D, -1, h)
    dc_t = dc[:, start : start + n].view(D, -1, h).addcmul_(dh_t * o, 1 - tc * tc)
    dp = d_pre[:, first : first + n].view(D, -1, 4, h)
    torch.mul(dh_t, tc, out=dp[:, :, 0])  # d o
    c_side = cs[:, above + 1 : above + 1 + n].view(D, -1, h)
    torch.mul(dc_t.unsqueeze(2), torch.stack([c_side, g, i], 2), out=dp[:, :, 1:])  # d f, d i, d g
    dp = dp.view(D, -1, 4 * h)
    aa = a * a
    dp[..., : 3 * h].mul_(a[..., : 3 * h] - aa[..., : 3 * h])  # sigmoid' = s (1 - s)
    dp[..., 3 * h :].mul_(1 - aa[..., 3 * h :])  # tanh' = 1 - t^2
    torch.mul(dc_t, f, out=dc[:, above + 1 : above + 1 + n].view(D, -1, h))  # to the cell beside


class _DiagonalScan(torch.autograd.Function):
    """See `diagonal_scan`."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, w_in: torch.Tensor, bias: torch.Tensor, w_state: torch.Tensor, layout: SlotLayout
    ) -> torch.Tensor:
        D, N, B, F = x.shape
        G = w_in.shape[2]
        h = G // 4
        keep = any(ctx.needs_input_grad)  # else one diagonal's workspace is enough
        rows = N if keep else max(n for _, n, _, _ in layout.steps)
        acts = x.new_empty(D, rows, B * G)  # o, f, i, g after their nonlinearities
        tcs = x.new_empty(D, rows, B * h)  # tanh(c), for the backward
        hs = x.new_empty(D, layout.n_slots, B * h)
        cs = x.new_empty(D, layout.n_slots, B * h)  # cell states, laid out like hs
        hs[:, layout.pads] = 0
        cs[:, layout.pads] = 0
        _scan_forward(
            layout,
            x.detach().reshape(D, N, B * F).contiguous(),
            w_in.detach().contiguous(),
            bias.detach().contiguous(),
            acts,
            hs,
            cs,
            tcs,
            w_state.detach().contiguous(),
        )
        ctx.layout = layout
        ctx.save_for_backward(x, w_in, w_state, hs, cs, tcs, acts)
        return hs.view(D, layout.n_slots, B, h)

    @staticmethod
    def backward(ctx: Any, grad_hs: torch.Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, None]:
        x, w_in, w_state, hs, cs, tcs, acts = ctx.saved_tensors
        layout = ctx.layout
        D, N, B, F = x.shape
        h = w_state.shape[1] // 2
        dh = grad_hs.reshape(hs.shape).clone()  # also gathers the later diagonals' grads
        d_pre = torch.empty_like(acts)
        d_w = _scan_backward(layout, d_pre, dh, acts, hs, cs, tcs, w_state.detach().contiguous())
        d_pre = d_pre.view(D, N * B, 4 * h)
        x = x.reshape(D, N * B, F)
        return ((d_pre @ w_in.transpose(1, 2)).view(D, N, B, F), x.transpose(1, 2) @ d_pre, d_pre.sum(1), d_w, None)


def diagonal_scan(
    x: torch.Tensor, w_in: torch.Tensor, bias: torch.Tensor, w_state: torch.Tensor, layout: SlotLayout
) -> torch.Tensor:
    """The recurrence, with the input-to-state product, on features in diagonal order.

    `x` `(2, N, B, F)`: per direction the features of image cell `layout.cells[d, k]` at `k`;
    the gates are `x[d] @ w_in[d] + bias[d]` (`w_in` `(2, F, 4h)`, `bias` `(2, 4h)`);
    `w_state` `(2, 2h, 4h)`. Returns `hs` `(2, slots, B, h)`: the hidden state of image cell
    `q` is `hs[d, layout.slots[d, q]]`, and `hs[:, 0]` is zero.
    """
    return _DiagonalScan.apply(x, w_in, bias, w_state, layout)


def diagonal_bilstm(gates: torch.Tensor, w_state: torch.Tensor, layout: SlotLayout | None = None) -> torch.Tensor:
    """`diagonal_bilstm_reference`, fast: `(H, W, B, 2, 4h)`, `(2, 2h, 4h)` -> `(H, W, B, 2, h)`."""
    H, W, B, D, G = gates.shape
    if D != 2 or G % 4 or w_state.shape != (2, G // 2, G):
        raise ValueError(
            f"expected gates (H, W, B, 2, 4h) and w_state (2, 2h, 4h), "
            f"got {tuple(gates.shape)} and {tuple(w_state.shape)}"
        )
    layout = layout or SlotLayout(H, W, gates.device)
    cells = torch.stack([gates[:, :, :, d].reshape(H * W, B * G).index_select(0, layout.cells[d]) for d in range(2)])
    identity = torch.eye(G, dtype=gates.dtype, device=gates.device).expand(2, G, G)  # the gates as they are
    hs = diagonal_scan(cells.view(2, H * W, B, G), identity, gates.new_zeros(2, G), w_state, layout)  # (2, slots, B, h)
    return torch.stack([hs[d].index_select(0, layout.slots[d]) for d in range(2)], 2).view(H, W, B, D, G // 4)
