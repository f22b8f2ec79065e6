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
  `torch.autograd.gradcheck` and to the plain version in the tests.

Shapes: H x W image, B batch, D = 2 directions, h hidden units per gate, N = H * W cells.
"""

from __future__ import annotations

import torch

__all__ = ["diagonal_bilstm", "diagonal_bilstm_reference", "SlotLayout"]


def _lstm(a: torch.Tensor, c_side: torch.Tensor, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations `a` `(..., 4h)` ([o | f | i | g]) and the side cell state -> `(h, c)`."""
    o, f, i, g = a[..., :h].sigmoid(), a[..., h:2 * h].sigmoid(), a[..., 2 * h:3 * h].sigmoid(), a[..., 3 * h:].tanh()
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

    Slot order: 2 zero slots, then per diagonal t = 0 .. H+W-2 its cells (rows lo_t .. hi_t - 1,
    row i holding column t - i of direction 0 and column W - 1 - (t - i) of direction 1), then
    one zero slot. `steps` lists per diagonal `(first input cell, count, first slot, first slot
    of the cells above)`; the cells beside start one slot after the cells above.
    """

    def __init__(self, height: int, width: int, device: torch.device | str = "cpu"):
        H, W = height, width
        self.height, self.width, self.cells = H, W, H * W
        self.steps: list[tuple[int, int, int, int]] = []
        cell_of_slot, slot_of = [], {}
        offset, prev_start, prev_lo = 0, 1, 0
        for t in range(H + W - 1):
            lo, hi = max(0, t - W + 1), min(H, t + 1)
            start = offset + t + 2
            self.steps.append((offset, hi - lo, start, prev_start + lo - 1 - prev_lo))
            for i in range(lo, hi):
                cell_of_slot.append((i, t - i))
                slot_of[i, t - i] = start + i - lo
            offset, prev_start, prev_lo = offset + hi - lo, start, lo
        self.slots = offset + H + W + 1
        i = torch.tensor([c[0] for c in cell_of_slot])
        j = torch.tensor([c[1] for c in cell_of_slot])
        # input cell k (in diagonal order) of each direction, as an index into the image's cells
        self.gather = torch.stack([i * W + j, i * W + (W - 1 - j)], 1).to(device)  # (N, 2)
        # slot of each image cell (i, j), per direction (direction 1 mirrored)
        slot = torch.tensor([[slot_of[r, c] for c in range(W)] for r in range(H)])  # (H, W)
        self.scatter = torch.stack([slot, slot.flip(1)], -1).flatten(0, 1).to(device)  # (N, 2)
        above = torch.tensor([a + r for (_, n, _, a) in self.steps for r in range(n)])
        self.above = above.to(device)  # (N,): slot of the cell above each input cell
        used = torch.zeros(self.slots, dtype=torch.bool)
        used[self.scatter[:, 0].cpu()] = True
        self.pads = (~used).nonzero().flatten().to(device)  # the zero slots
        self._rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def rows(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row indices for `batch` images: image rows `(H*W*B*2, .)` -> cell rows `(N*B*2, .)`,
        and slot rows `(slots*B*2, .)` -> image rows; both `(N*B*2,)`."""
        if batch not in self._rows:
            b = torch.arange(batch, device=self.gather.device).view(1, batch, 1)
            d = torch.arange(2, device=self.gather.device).view(1, 1, 2)
            to_cells = (self.gather.unsqueeze(1) * batch + b) * 2 + d
            to_image = (self.scatter.unsqueeze(1) * batch + b) * 2 + d
            self._rows = {batch: (to_cells.flatten(), to_image.flatten())}  # keep one batch size
        return self._rows[batch]


class _DiagonalScan(torch.autograd.Function):
    """`gates` `(H*W*B*2, 4h)` in image order -> hidden states `(H*W*B*2, h)` in image order."""

    @staticmethod
    def forward(ctx, gates: torch.Tensor, w_state: torch.Tensor, layout: SlotLayout, batch: int) -> torch.Tensor:
        G, B, D, N = gates.shape[1], batch, 2, layout.cells
        h = G // 4
        to_cells, to_image = layout.rows(B)
        w_above = torch.block_diag(w_state[0, :h], w_state[1, :h])  # (2h, 8h): both directions at once
        w_side = torch.block_diag(w_state[0, h:], w_state[1, h:])
        gates = gates.index_select(0, to_cells).view(N, B * D * G)  # diagonal order
        hs = gates.new_empty(layout.slots, B * D * h)
        cs = gates.new_empty(layout.slots, B * D * h)  # cell states, laid out like hs
        hs[layout.pads] = 0
        cs[layout.pads] = 0
        tcs = gates.new_empty(N, B * D * h)  # tanh(c), for the backward
        acts = gates  # overwritten in place by o, f, i, g after their nonlinearities
        for first, n, start, above in layout.steps:
            a = acts[first:first + n].view(n * B, D * G)
            a.addmm_(hs[above:above + n].view(n * B, D * h), w_above)
            a.addmm_(hs[above + 1:above + 1 + n].view(n * B, D * h), w_side)
            a = a.view(n * B * D, G)
            a[:, :3 * h].sigmoid_()
            a[:, 3 * h:].tanh_()
            c = cs[start:start + n].view(n * B * D, h)
            torch.mul(a[:, h:2 * h], cs[above + 1:above + 1 + n].view(n * B * D, h), out=c)
            c.addcmul_(a[:, 2 * h:3 * h], a[:, 3 * h:])  # c = f * c_side + i * g
            tc = torch.tanh(c, out=tcs[first:first + n].view(n * B * D, h))
            torch.mul(a[:, :h], tc, out=hs[start:start + n].view(n * B * D, h))
        ctx.layout, ctx.batch = layout, B
        ctx.save_for_backward(w_state, hs, cs, tcs, acts)
        return hs.view(-1, h).index_select(0, to_image)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        w_state, hs, cs, tcs, acts = ctx.saved_tensors
        layout, B, D, N = ctx.layout, ctx.batch, 2, ctx.layout.cells
        G = acts.shape[1] // (B * D)
        h = G // 4
        to_cells, to_image = layout.rows(B)
        w_above_t = torch.block_diag(w_state[0, :h], w_state[1, :h]).t()  # (8h, 2h)
        w_side_t = torch.block_diag(w_state[0, h:], w_state[1, h:]).t()
        dh = hs.new_empty(layout.slots * B * D, h).index_copy_(0, to_image, grad).view(layout.slots, B * D * h)
        dc = torch.zeros_like(cs)  # from the cell on the right (zero for the last cell of a row)
        d_pre = torch.empty_like(acts)  # (N, B*D*4h): d loss / d gates
        for first, n, start, above in reversed(layout.steps):
            a = acts[first:first + n].view(n * B * D, G)
            o, f, i, g = a[:, :h], a[:, h:2 * h], a[:, 2 * h:3 * h], a[:, 3 * h:]
            tc = tcs[first:first + n].view(n * B * D, h)
            dh_t = dh[start:start + n].view(n * B * D, h)
            dc_t = dc[start:start + n].view(n * B * D, h).addcmul_(dh_t * o, 1 - tc * tc)
            dp = d_pre[first:first + n].view(n * B * D, 4, h)
            torch.mul(dh_t, tc, out=dp[:, 0])
            torch.mul(dc_t.unsqueeze(1), torch.stack([cs[above + 1:above + 1 + n].view(n * B * D, h), g, i], 1),
                      out=dp[:, 1:])  # d f, d i, d g
            aa = a * a
            dp = dp.view(n * B * D, G)
            dp[:, :3 * h].mul_(a[:, :3 * h] - aa[:, :3 * h])  # sigmoid' = s (1 - s)
            dp[:, 3 * h:].mul_(1 - aa[:, 3 * h:])  # tanh' = 1 - t^2
            torch.mul(dc_t, f, out=dc[above + 1:above + 1 + n].view(n * B * D, h))  # to the cell beside
            dp = dp.view(n * B, D * G)
            dh[above:above + n].view(n * B, D * h).addmm_(dp, w_above_t)  # to the cells above
            dh[above + 1:above + 1 + n].view(n * B, D * h).addmm_(dp, w_side_t)  # to the cells beside
        d_cells = d_pre.view(N * B, D, G).transpose(0, 1)  # (D, N*B, 4h)
        d_w = []
        for rows in (layout.above, layout.above + 1):  # the above tap, then the side tap
            inp = hs.view(layout.slots, B, D, h).index_select(0, rows).view(N * B, D, h)
            d_w.append(torch.bmm(inp.permute(1, 2, 0), d_cells))  # (D, h, 4h)
        d_gates = d_pre.new_empty(N * B * D, G).index_copy_(0, to_cells, d_pre.view(N * B * D, G))
        return d_gates, torch.cat(d_w, 1), None, None


def diagonal_bilstm(gates: torch.Tensor, w_state: torch.Tensor, layout: SlotLayout | None = None) -> torch.Tensor:
    """`diagonal_bilstm_reference`, fast: `(H, W, B, 2, 4h)`, `(2, 2h, 4h)` -> `(H, W, B, 2, h)`.

    `layout` (a `SlotLayout` for the image size) may be passed to reuse its index tables.
    """
    H, W, B, D, G = gates.shape
    if D != 2 or G % 4 or w_state.shape != (2, G // 2, G):
        raise ValueError(f"expected gates (H, W, B, 2, 4h) and w_state (2, 2h, 4h), "
                         f"got {tuple(gates.shape)} and {tuple(w_state.shape)}")
    layout = layout or SlotLayout(H, W, gates.device)
    hs = _DiagonalScan.apply(gates.reshape(H * W * B * D, G), w_state, layout, B)
    return hs.view(H, W, B, D, G // 4)
