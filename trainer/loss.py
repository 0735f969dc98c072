"""Hardest-contrastive loss (FCGF, ICCV'19) for dense 2D descriptors, as open-ucn trains with it.

    out = hardest_contrastive_loss(F0, F1, pairs, generator=g)   # F: C x H x W, pairs: P x 4
    out.loss.backward()

Mining runs without gradient and in chunks, so memory is O(chunk x candidates),
never positives x candidates x channels; the gradient then flows only through the
selected positive and hardest-negative distances.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

# Elements of one (queries x candidates) block during mining: 4M floats = 16 MB.
MINING_CHUNK_ELEMENTS = 1 << 22


@dataclass
class LossParams:
    """The seed's margins, on SQUARED descriptor distances."""

    pos_thresh: float = 0.1
    neg_thresh: float = 1.4
    neg_weight: float = 1.0
    num_pos: int = 1024
    num_candidates: int = 40000
    # Candidates within this many pixels of the true match are not negatives.
    inlier_threshold_pixel: float = 4.0
    # dtype of the mining products (the search for each hardest negative). bf16 is 2-3x
    # faster where the CPU runs it natively; the distances the loss uses are always fp32.
    mining_dtype: torch.dtype = torch.float32


@dataclass
class LossOutput:
    """Loss of one image pair (or the mean over a batch) and what was selected, for tests and logs."""

    loss: torch.Tensor
    pos_loss: torch.Tensor
    neg_loss: torch.Tensor
    num_pos: int = 0
    mining_seconds: float = 0.0
    # Flat pixel indices (y * W + x) of what the gradient can reach, per pair.
    selected0: list[torch.Tensor] = field(default_factory=list)
    selected1: list[torch.Tensor] = field(default_factory=list)


class _PixelIndex:
    """Candidates bucketed by integer pixel in a dense table over their bounding box (padded by
    ``pad``), to find those near a point without a P x N distance matrix."""

    def __init__(self, candidate_xy: torch.Tensor, pad: int) -> None:
        xy = candidate_xy.round().long()
        self.pad = pad
        self.lo = xy.min(0).values - pad  # shift so every looked-up pixel has a non-negative key
        self.width = int((xy[:, 0] - self.lo[0]).max()) + pad + 2
        self.height = int((xy[:, 1] - self.lo[1]).max()) + pad + 2
        key = self._key(xy[:, 0], xy[:, 1])
        n = len(key)
        # pixel -> its candidate (-1: none). The loss draws candidates without replacement, so
        # each pixel holds at most one and no sorting is needed; otherwise bucket by sorting.
        self.table = torch.full((self.width * self.height,), -1, dtype=torch.long, device=xy.device)
        self.table[key] = torch.arange(n, device=xy.device)
        self.unique = bool((self.table[key] == torch.arange(n, device=xy.device)).all())
        if not self.unique:
            self.order = torch.argsort(key, stable=True)  # candidates grouped by pixel
            self.count = torch.bincount(key, minlength=self.width * self.height)
            self.start = torch.cumsum(self.count, 0) - self.count  # each pixel's first place in ``order``

    def _key(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y - self.lo[1]) * self.width + (x - self.lo[0])

    def near(self, centres: torch.Tensor, radius: float, num_candidates: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every candidate j within ``radius`` of centres[i], as flat indices i * N + j grouped by
        row i in increasing order, and how many each row has (P long).

        centres: P x 2 float (x, y). Done once for all P rows: done per chunk, the ~20 small
        tensor ops cost more than the scatter itself.
        """
        R = self.pad
        off = torch.arange(-R, R + 2, device=centres.device)
        oy, ox = torch.meshgrid(off, off, indexing="ij")
        base = centres.floor().long()
        px = base[:, :1] + ox.reshape(1, -1)  # P x K pixels around each centre
        py = base[:, 1:] + oy.reshape(1, -1)
        within = (px - centres[:, :1]) ** 2 + (py - centres[:, 1:]) ** 2 <= radius**2
        gx, gy = px - self.lo[0], py - self.lo[1]
        inside = (gx >= 0) & (gy >= 0) & (gx < self.width) & (gy < self.height)
        keys = torch.where(inside, self._key(px, py), 0)
        rows = torch.arange(centres.shape[0], device=centres.device)[:, None].expand_as(keys)
        if self.unique:
            j = self.table[keys]
            hit = within & inside & (j >= 0)
            return rows[hit] * num_candidates + j[hit], hit.sum(1)  # boolean selection keeps row order
        first, n = self.start[keys], torch.where(within & inside, self.count[keys], 0)
        flat = [rows[n > t] * num_candidates + self.order[first[n > t] + t] for t in range(int(n.max()))]
        if not flat:  # no candidate near any centre
            return torch.zeros(0, dtype=torch.long, device=centres.device), n.sum(1)
        return torch.cat(flat).sort().values, n.sum(1)


@torch.no_grad()
def mine_hardest_negatives(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    match_xy: torch.Tensor,
    candidate_xy: torch.Tensor,
    exclusion_radius: float,
    chunk_elements: int = MINING_CHUNK_ELEMENTS,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query, the candidate with the smallest squared distance that is not near its true match.

    queries:      P x C descriptors
    candidates:   N x C descriptors
    match_xy:     P x 2 float (x, y) true match of each query, in the candidates' image
    candidate_xy: N x 2 integer pixel (x, y) of each candidate
    dtype:        of the distance products; bf16 finds the hardest negative up to bf16 rounding
                  (about 0.01 in squared distance), which is all mining needs
    Returns (index P long into candidates, valid P bool); valid is False when every
    candidate lies within ``exclusion_radius`` of the true match.
    """
    P, N = queries.shape[0], candidates.shape[0]
    device = queries.device
    best = torch.zeros(P, dtype=torch.long, device=device)
    valid = torch.zeros(P, dtype=torch.bool, device=device)
    if P == 0 or N == 0:
        return best, valid
    # argmin |q - c|^2 = argmin |c|^2 - 2 q.c per row: one product of [q, 1] with [-2c, |c|^2 + k],
    # no P x N x C difference tensor and no separate add. k, the largest |q|^2, keeps each row's
    # argmin and makes every value >= 0 (a squared distance plus k - |q|^2), which _bf16_argmin needs.
    # Built along candidates.t() (C x N): candidates usually arrive as the transpose of a C x N
    # gather from the feature map, so this reads memory in order and needs no transposing copy.
    c = candidates.t().float()  # C x N
    k = queries.float().pow(2).sum(1).max()
    q = torch.cat((queries.float(), torch.ones_like(queries[:, :1], dtype=torch.float32)), 1).to(dtype)  # P x (C+1)
    c_t = torch.cat((-2.0 * c, c.pow(2).sum(0, keepdim=True) + k), 0).to(dtype)  # (C+1) x N
    mxy = match_xy.to(device=device, dtype=torch.float32)
    cxy = candidate_xy.to(device=device, dtype=torch.float32)
    pad = int(math.ceil(exclusion_radius))
    # Look up the few candidates near each match by pixel, unless the disc holds more pixels than there are candidates.
    buckets = _PixelIndex(cxy, pad) if (2 * pad + 3) ** 2 < N else None
    r2 = float(exclusion_radius) ** 2
    step = max(1, chunk_elements // N)
    if buckets is not None:
        near_flat, per_row = buckets.near(mxy, exclusion_radius, N)  # grouped by row: a chunk's entries are one slice
        ends = torch.cumsum(per_row, 0).tolist()
        bounds = [0] + [ends[min(s + step, P) - 1] for s in range(0, P, step)]
    # One block reused by every chunk: a fresh 8 MB block per chunk made the products 1.5x slower
    # on the CPU (its pages are faulted in anew each time).
    block = torch.empty(min(step, P), N, dtype=dtype, device=device)
    for chunk, s in enumerate(range(0, P, step)):
        d2 = torch.mm(q[s : s + step], c_t, out=block[: min(step, P - s)])
        m = mxy[s : s + step]
        if buckets is not None:
            d2.view(-1).index_fill_(0, near_flat[bounds[chunk] : bounds[chunk + 1]] - s * N, float("inf"))
        else:
            near = (m[:, :1] - cxy[None, :, 0]) ** 2 + (m[:, 1:] - cxy[None, :, 1]) ** 2 <= r2
            d2.masked_fill_(near, float("inf"))
        if d2.dtype == torch.bfloat16:
            idx, found = _bf16_argmin(d2)
        else:
            dmin, idx = d2.min(1)
            found = torch.isfinite(dmin)
        best[s : s + step] = idx
        valid[s : s + step] = found
    return best, valid


_BF16_INF_BITS = int(torch.tensor(float("inf"), dtype=torch.bfloat16).view(torch.int16))
# Columns per group in _bf16_argmin: wide enough that the group minima are few, narrow enough
# that re-reading the winning group is nothing.
_ARGMIN_GROUP = 128


def _bf16_argmin(d2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise argmin of bf16 squared distances, and whether the row had a finite one (rows x N -> rows, rows).

    d2 must be >= 0 up to rounding (see mine_hardest_negatives). The minimum is taken over the
    bits read as int16: for values >= 0 the two orders agree, and +inf (an excluded candidate)
    has the largest bits of all. A distance that rounding made slightly negative sorts below
    every positive one, as it should; among several such the order is reversed, but they are
    all within bf16 rounding of 0, the same hardest negative.

    Two steps, because a plain minimum is about 10x faster on CPUs than one that also keeps
    its index: the minimum of each group of 128 columns, then the arg-min over those minima
    and within the one winning group. Ties go to the first column, as with ``min``.
    """
    bits = d2.view(torch.int16)
    rows, n = bits.shape
    G = _ARGMIN_GROUP
    whole = n // G * G
    if whole == 0:
        v, idx = bits.min(1)
    else:
        group = bits[:, :whole].view(rows, whole // G, G).amin(2).min(1).indices  # rows
        cols = group[:, None] * G + torch.arange(G, device=d2.device)  # rows x G
        v, j = bits.gather(1, cols).min(1)
        idx = cols.gather(1, j[:, None]).squeeze(1)
        if whole < n:  # the last, partial group
            tv, tj = bits[:, whole:].min(1)
            later = tv < v
            v, idx = torch.where(later, tv, v), torch.where(later, tj + whole, idx)
    return idx, v < _BF16_INF_BITS


def _pixel_index(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """P x 2 float (x, y) -> P flat indices y * W + x of the nearest pixel.

    Rounds rather than floors (the seed floors): OpenCV keypoints and our homography
    grid both put pixel centres at integer coordinates.
    """
    x = xy[:, 0].round().long().clamp_(0, width - 1)
    y = xy[:, 1].round().long().clamp_(0, height - 1)
    return y * width + x


def _flat_xy(index: torch.Tensor, width: int) -> torch.Tensor:
    """Flat indices -> K x 2 float (x, y)."""
    return torch.stack((index % width, torch.div(index, width, rounding_mode="floor")), 1).float()


def pair_loss(
    F0: torch.Tensor,
    F1: torch.Tensor,
    pairs: torch.Tensor,
    params: LossParams,
    size0: tuple[int, int] | None = None,
    size1: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> LossOutput:
    """Hardest-contrastive loss of one image pair.

    F0: C x H0 x W0, F1: C x H1 x W1 descriptors (padded maps allowed).
    pairs: P x 4 float (x0, y0, x1, y1) ground-truth correspondences in pixels.
    size0 / size1: (h, w) of the valid (unpadded) region; candidates come only from it.
    """
    C, H0, W0 = F0.shape
    _, H1, W1 = F1.shape
    h0, w0 = size0 or (H0, W0)
    h1, w1 = size1 or (H1, W1)
    zero = F0.sum() * 0.0 + F1.sum() * 0.0  # keeps the graph (and DDP) whole when a pair has no positives
    if len(pairs) == 0:
        return LossOutput(loss=zero, pos_loss=zero, neg_loss=zero)

    pairs = pairs.float().cpu()
    num_pos = min(params.num_pos, len(pairs))
    sel = torch.randperm(len(pairs), generator=generator)[:num_pos]
    xy0, xy1 = pairs[sel, :2], pairs[sel, 2:]
    pos0 = _pixel_index(xy0, H0, W0)
    pos1 = _pixel_index(xy1, H1, W1)

    # Candidates: random pixels of each image's valid region, drawn without replacement.
    n0 = min(params.num_candidates, h0 * w0)
    n1 = min(params.num_candidates, h1 * w1)
    cand0 = torch.randperm(h0 * w0, generator=generator)[:n0]
    cand1 = torch.randperm(h1 * w1, generator=generator)[:n1]
    cxy0, cxy1 = _flat_xy(cand0, w0), _flat_xy(cand1, w1)
    cand0 = (cxy0[:, 1].long() * W0 + cxy0[:, 0].long())  # into the padded map
    cand1 = (cxy1[:, 1].long() * W1 + cxy1[:, 0].long())

    dev = F0.device
    pos0, pos1, cand0, cand1 = pos0.to(dev), pos1.to(dev), cand0.to(dev), cand1.to(dev)
    flat0, flat1 = F0.reshape(C, -1), F1.reshape(C, -1)
    # index_select rather than flat[:, idx]: the same columns, 2x faster on the CPU for 40,000 of them.
    q0, q1 = flat0.index_select(1, pos0).t(), flat1.index_select(1, pos1).t()  # P x C, with gradient

    t = time.perf_counter()
    mine = dict(exclusion_radius=params.inlier_threshold_pixel, dtype=params.mining_dtype)
    hn1, ok01 = mine_hardest_negatives(q0.detach(), flat1.detach().index_select(1, cand1).t(), xy1, cxy1, **mine)
    hn0, ok10 = mine_hardest_negatives(q1.detach(), flat0.detach().index_select(1, cand0).t(), xy0, cxy0, **mine)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    mining = time.perf_counter() - t

    neg1 = cand1[hn1[ok01]]  # flat pixel of each hardest negative in image 1
    neg0 = cand0[hn0[ok10]]
    d_pos = (q0 - q1).pow(2).sum(1)
    d01 = (q0[ok01] - flat1.index_select(1, neg1).t()).pow(2).sum(1)
    d10 = (q1[ok10] - flat0.index_select(1, neg0).t()).pow(2).sum(1)

    pos_loss = F.relu(d_pos - params.pos_thresh).mean()
    neg_terms = [F.relu(params.neg_thresh - d).pow(2).mean() for d in (d01, d10) if d.numel() > 0]
    neg_loss = torch.stack(neg_terms).mean() if neg_terms else zero
    loss = pos_loss + params.neg_weight * neg_loss
    return LossOutput(
        loss=loss,
        pos_loss=pos_loss,
        neg_loss=neg_loss,
        num_pos=num_pos,
        mining_seconds=mining,
        selected0=[torch.cat((pos0, neg0)).cpu()],
        selected1=[torch.cat((pos1, neg1)).cpu()],
    )


def hardest_contrastive_loss(
    F0: torch.Tensor,
    F1: torch.Tensor,
    pairs: list[torch.Tensor],
    params: LossParams,
    sizes0: list[tuple[int, int]] | None = None,
    sizes1: list[tuple[int, int]] | None = None,
    generator: torch.Generator | None = None,
) -> LossOutput:
    """Mean of :func:`pair_loss` over a batch.

    F0: B x C x H0 x W0, F1: B x C x H1 x W1; pairs: B tensors of P_b x 4 (x0, y0, x1, y1).
    """
    outs = [
        pair_loss(
            F0[b],
            F1[b],
            pairs[b],
            params,
            sizes0[b] if sizes0 else None,
            sizes1[b] if sizes1 else None,
            generator,
        )
        for b in range(F0.shape[0])
    ]
    B = len(outs)
    return LossOutput(
        loss=sum(o.loss for o in outs) / B,
        pos_loss=sum(o.pos_loss for o in outs) / B,
        neg_loss=sum(o.neg_loss for o in outs) / B,
        num_pos=sum(o.num_pos for o in outs),
        mining_seconds=sum(o.mining_seconds for o in outs),
        selected0=[s for o in outs for s in o.selected0],
        selected1=[s for o in outs for s in o.selected1],
    )
