"""Nearest-neighbour search of unit-norm descriptors by inner product.

    scores, idx = nearest_neighbors(q, db, k=2)                        # q: Q x C, db: N x C -> Q x k, Q x k
    scores, idx = nearest_neighbors(q, db, k=2, coarse=db.bfloat16())  # same result, coarse pass in bf16
    nearest_neighbors(q, db, cancel=stop.is_set)                      # raises Cancelled between blocks

For unit vectors the nearest neighbour in L2 is the one with the largest inner
product (``d^2 = 2 - 2 s``). The Q x N score matrix is never stored. On a CPU the
search runs in two passes, because an arg-max over scores costs more than the
product itself when C is small (32-64):

1. coarse: multiply the database in blocks of ``db_block`` rows by the queries
   into a cache-sized buffer and keep only the maximum of every ``sub_block``
   rows per query (a values-only max over cached scores is cheap);
2. refine: recompute the candidate sub-blocks of each query exactly, in the
   database's own dtype, and take the top-2 there.

In fp32 the candidates are each query's two best sub-blocks: the best match lies in
the best one, the second best is the runner-up inside it or the maximum of the
second-best sub-block. With a bf16 copy of the database (``coarse=``; bf16 products
run about twice as fast on CPUs with avx512_bf16) the coarse maxima are only
approximate, so every sub-block that the rounding bound cannot rule out is refined
(a handful per query; a query with too many goes through the fp32 search). Either
way the results are those of the exact fp32 search.

On CUDA a plain blocked product with top-k is already fast and is used instead.
``cancel`` is checked between blocks, so a search of every pixel stops within a
few milliseconds of being asked to.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

CPU_DB_BLOCK = 512  # rows of the database per coarse block (scores block: 512 x query_block)
CPU_SUB_BLOCK = 64  # rows per recorded maximum: the exact second pass reads only these
CPU_QUERY_BLOCK = 2048  # queries per pass; 512 x 2048 float32 scores = 4 MB, cache-sized
REFINE_CHUNK = 256  # (query, sub-block) pairs refined at once (gathers REFINE_CHUNK x sub_block x C floats)
MAX_CANDIDATE_BLOCKS = 256  # bf16 coarse pass: a query with more candidate blocks goes through the fp32 search
GPU_BLOCK_BYTES = 1 << 30  # score block budget on CUDA
CANCEL_EVERY = 8  # coarse blocks between two cancel checks (~1-5 ms of work)
PROBE_QUERIES = 256  # bf16 coarse pass: queries searched first, to see whether bf16 pays off at all

_BF16_UNIT_ROUNDOFF = 2.0**-8  # bf16 keeps 8 significant bits: relative rounding error <= 2^-8
_FP32_UNIT_ROUNDOFF = 2.0**-24


class Cancelled(Exception):
    """Raised when the caller's cancel check says stop (between stages, layers or search blocks)."""


def descriptor_distance(scores: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between unit vectors from their inner product."""
    return torch.sqrt(torch.clamp(2.0 - 2.0 * scores, min=0.0))


def check_cancel(cancel: Callable[[], bool] | None, where: str) -> None:
    if cancel is not None and cancel():
        raise Cancelled(where)


@torch.no_grad()
def nearest_neighbors(
    queries: torch.Tensor,
    database: torch.Tensor,
    k: int = 1,
    query_block: int | None = None,
    db_block: int | None = None,
    *,
    coarse: torch.Tensor | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (k = 1 or 2) database rows by inner product for every query.

    queries: Q x C, database: N x C, same device and dtype.
    coarse: optional bf16 copy of ``database`` for the CPU's coarse pass (exact results all the same).
    cancel: checked between blocks; raises :class:`Cancelled` when it returns True.
    Returns scores Q x k (descending) and indices Q x k (int64).
    """
    if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
        raise ValueError(f"expected Q x C and N x C, got {tuple(queries.shape)} and {tuple(database.shape)}")
    if k not in (1, 2) or k > database.shape[0]:
        raise ValueError(f"k={k} must be 1 or 2 and at most the database size {database.shape[0]}")
    if coarse is not None and coarse.shape != database.shape:
        raise ValueError(f"coarse copy {tuple(coarse.shape)} differs from the database {tuple(database.shape)}")
    if queries.shape[0] == 0:
        return queries.new_zeros((0, k)), torch.zeros((0, k), dtype=torch.long, device=queries.device)
    if queries.device.type == "cuda":
        return _search_dense(queries, database, k, query_block, cancel)
    db_block = db_block or CPU_DB_BLOCK
    # Sub-blocks must tile a product block exactly, so that table rows map to database rows.
    sub_block = CPU_SUB_BLOCK if db_block % CPU_SUB_BLOCK == 0 else db_block
    parts = []
    start = 0
    low = coarse is not None and coarse.dtype != database.dtype
    if low and len(queries) > PROBE_QUERIES:
        # Where bf16 scores cannot tell the candidates apart (near-constant descriptors: an
        # untrained network, a blank image) every query ends in the fp32 search and the
        # bf16 pass is pure extra cost; a small first block decides for the rest.
        s, i, fell_back = _search_low_precision(queries[:PROBE_QUERIES], database, coarse, k, db_block, sub_block, cancel)
        parts.append((s, i))
        start = PROBE_QUERIES
        low = fell_back <= 0.5
    # bf16 scores take half the bytes: twice the queries fill the same cache-sized block.
    qb = query_block or CPU_QUERY_BLOCK * (2 if low else 1)
    for i in range(start, len(queries), qb):
        q = queries[i : i + qb]
        if low:
            parts.append(_search_low_precision(q, database, coarse, k, db_block, sub_block, cancel)[:2])
        else:
            parts.append(_search_two_pass(q, database, k, db_block, sub_block, cancel))
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _search_dense(
    queries: torch.Tensor, database: torch.Tensor, k: int, query_block: int | None, cancel: Callable[[], bool] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocked product, then the best (and second best) of each row: one large product per query block (GPU).

    The top-2 is two plain maxima with the first one's entry masked in between: on an H100
    that took 3.4 ms for 2,000 x 307,200 scores where ``topk`` (a radix select) took 8.8 ms,
    and the k = 1 backward search of 4,000 queries 4.7 ms instead of 17.
    """
    qb = query_block or max(1, GPU_BLOCK_BYTES // (4 * database.shape[0]))
    scores, idx = [], []
    for i in range(0, len(queries), qb):
        check_cancel(cancel, "search")
        product = queries[i : i + qb] @ database.t()  # the block's own buffer: masking it in place is safe
        s, j = product.max(dim=1, keepdim=True)
        if k == 2:
            product.scatter_(1, j, -float("inf"))
            s2, j2 = product.max(dim=1, keepdim=True)
            s, j = torch.cat((s, s2), 1), torch.cat((j, j2), 1)
        scores.append(s)
        idx.append(j)
    return torch.cat(scores), torch.cat(idx)


def _sub_block_maxima(
    queries: torch.Tensor, database: torch.Tensor, db_block: int, sub_block: int, cancel: Callable[[], bool] | None
) -> torch.Tensor:
    """Maximum score of every ``sub_block`` database rows for every query: sub-blocks x Q.

    Per product block, two operations writing into preallocated memory: the
    product into a cache-sized buffer, then its maxima over ``sub_block`` rows
    into the table. Small sub-blocks keep the exact second pass cheap.
    """
    num_q, num_db = queries.shape[0], database.shape[0]
    maxima = torch.empty((-(-num_db // sub_block), num_q), dtype=queries.dtype, device=queries.device)
    for _, d0, s in _product_blocks(queries, database, db_block, cancel):  # s: n x Q; a max over rows vectorises well
        n = s.shape[0]
        full, r = n // sub_block, d0 // sub_block
        if full:
            torch.amax(s[: full * sub_block].view(full, sub_block, num_q), dim=1, out=maxima[r : r + full])
        if n % sub_block:  # the database's last, short sub-block
            torch.amax(s[full * sub_block :], dim=0, out=maxima[r + full])
    return maxima


def _search_two_pass(
    queries: torch.Tensor, database: torch.Tensor, k: int, db_block: int, sub_block: int, cancel: Callable[[], bool] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    maxima = _sub_block_maxima(queries, database, db_block, sub_block, cancel)
    block_v, block_b = maxima.topk(min(k, len(maxima)), dim=0)
    scores, idx = _top_in_blocks(queries, database, block_b[0], sub_block, k, cancel)
    if k == 2 and len(block_v) == 2:
        # The runner-up is inside the best block or is the second-best block's maximum.
        other = block_v[1] > scores[:, 1]
        if other.any():
            s2, i2 = _top_in_blocks(queries[other], database, block_b[1][other], sub_block, 1, cancel)
            scores[other, 1] = s2[:, 0]
            idx[other, 1] = i2[:, 0]
    return scores, idx


def rounding_margin(queries: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """Per query, a bound on |bf16 product - exact product| over every database row (Q floats).

    Rounding q and d to bf16 moves each term q_i d_i by at most (2u + u^2)|q_i d_i|
    (u = 2^-8), so the sum by at most (2u + u^2) ||q|| ||d|| (Cauchy-Schwarz); the fp32
    accumulation of C terms adds C * 2^-24 of the same, and storing the score in bf16
    one more u of its size. The factor 3u + 2u^2 + C 2^-23 covers all three.
    """
    u = _BF16_UNIT_ROUNDOFF
    c = queries.shape[1]
    factor = 3 * u + 2 * u * u + c * 2 * _FP32_UNIT_ROUNDOFF
    db_norm = database.float().norm(dim=1).max()
    return queries.float().norm(dim=1) * db_norm * factor


def _bf16_block_maxima(
    queries: torch.Tensor, coarse: torch.Tensor, db_block: int, cancel: Callable[[], bool] | None
) -> torch.Tensor:
    """Per block of ``db_block`` rows and query, the bit pattern (int16) of the largest bf16 score.

    The maximum is taken over the bf16 bits read as int16, which vectorises 5x better
    than a bf16 maximum. That order is the float order for scores >= 0, and every
    positive score beats every negative one, so a block with any score >= 0 gets its
    exact maximum; an all-negative block gets some negative value (never used, see below).
    """
    num_q, num_db = queries.shape[0], coarse.shape[0]
    table = torch.empty((-(-num_db // db_block), num_q), dtype=torch.int16, device=queries.device)
    for b, _, s in _product_blocks(queries, coarse, db_block, cancel):
        torch.amax(s.view(torch.int16), dim=0, out=table[b])
    return table


def _product_blocks(
    queries: torch.Tensor, database: torch.Tensor, db_block: int, cancel: Callable[[], bool] | None
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(block number, first row, scores n x Q) for consecutive ``db_block``-row blocks of the database.

    The scores of every block are written into one preallocated, cache-sized buffer in the
    database's dtype, so each yielded block is overwritten by the next; ``cancel`` is checked
    every CANCEL_EVERY blocks.
    """
    num_q, num_db = queries.shape[0], database.shape[0]
    q_t = queries.t()
    buf = torch.empty((min(db_block, num_db), num_q), dtype=database.dtype, device=queries.device)
    for b, d0 in enumerate(range(0, num_db, db_block)):
        if b % CANCEL_EVERY == 0:
            check_cancel(cancel, "search")
        n = min(db_block, num_db - d0)
        torch.mm(database[d0 : d0 + n], q_t, out=buf[:n])
        yield b, d0, buf[:n]


def _bf16_floor_bits(x: torch.Tensor) -> torch.Tensor:
    """int16 bits of the largest bf16 value <= x, for x > 0."""
    bits = x.to(torch.bfloat16)  # round to nearest
    return bits.view(torch.int16) - (bits.float() > x).to(torch.int16)


def _search_low_precision(
    queries: torch.Tensor,
    database: torch.Tensor,
    coarse: torch.Tensor,
    k: int,
    db_block: int,
    sub_block: int,
    cancel: Callable[[], bool] | None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Coarse block maxima in bf16, then every block that may hold one of the exact top-k, in fp32.

    With M_j the j-th largest bf16 block maximum of a query and m its margin
    (:func:`rounding_margin`), at least k rows score >= M_k - m exactly, so every row of
    the exact top-k does too, and its block's bf16 maximum is >= M_k - 2m. Queries whose
    threshold M_k - 2m is not positive (no real match anywhere; the int16 trick needs a
    positive threshold) or that have too many candidate blocks take the fp32 search.
    Returns scores, indices and the fraction of queries that took the fp32 search.
    """
    num_q = queries.shape[0]
    margin = rounding_margin(queries, database)
    table = _bf16_block_maxima(queries.to(coarse.dtype), coarse, db_block, cancel)  # blocks x Q, int16 bits
    kth = table.topk(min(k, len(table)), dim=0).values[-1].view(torch.bfloat16).float()
    threshold = kth - 2 * margin
    fallback = ~(threshold > 0)
    candidate = table >= _bf16_floor_bits(threshold.clamp_min(1e-30))  # blocks x Q
    del table
    candidate[:, fallback] = False
    counts = candidate.sum(0)
    # Past a quarter of all blocks, refining costs more than the fp32 search itself.
    crowded = counts > min(MAX_CANDIDATE_BLOCKS, max(2, len(candidate) // 4))
    if crowded.any():
        candidate[:, crowded] = False
        counts[crowded] = 0
        fallback |= crowded
    scores, idx = _top_in_candidate_blocks(queries, database, candidate, counts, db_block, k, cancel)
    if fallback.any():
        s, i = _search_two_pass(queries[fallback], database, k, db_block, sub_block, cancel)
        scores[fallback], idx[fallback] = s, i
    return scores, idx, float(fallback.float().mean()) if num_q else 0.0


def _top_in_candidate_blocks(
    queries: torch.Tensor,
    database: torch.Tensor,
    candidate: torch.Tensor,
    counts: torch.Tensor,
    db_block: int,
    k: int,
    cancel: Callable[[], bool] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of each query over the union of its candidate blocks (candidate: blocks x Q bool).

    Block by block, the queries that name it are multiplied with its rows in full
    precision (reading the block once, gathering only query rows), and their top-k
    there go to consecutive rows of a (block, query) pair table; each query's pairs are
    then laid side by side (padded with -inf) for a final top-k.
    """
    num_q, num_db = queries.shape[0], database.shape[0]
    device = queries.device
    pairs = candidate.nonzero()  # P x 2 (block, query), sorted by block
    block_of, q_of = pairs[:, 0], pairs[:, 1]
    k_in = min(k, db_block, num_db)
    pair_s = torch.full((len(pairs), k_in), -float("inf"), dtype=queries.dtype, device=device)
    pair_j = torch.zeros((len(pairs), k_in), dtype=torch.long, device=device)
    per_block = torch.bincount(block_of, minlength=len(candidate)).tolist()
    buf = torch.empty((max(per_block, default=0) * db_block,), dtype=queries.dtype, device=device)
    q_buf = torch.empty((max(per_block, default=0), queries.shape[1]), dtype=queries.dtype, device=device)
    p0 = 0
    for b, n in enumerate(per_block):
        if not n:
            continue
        if b % CANCEL_EVERY == 0:
            check_cancel(cancel, "search")
        rows = database[b * db_block : (b + 1) * db_block]
        q = torch.index_select(queries, 0, q_of[p0 : p0 + n], out=q_buf[:n])
        s = torch.mm(q, rows.t(), out=buf[: n * len(rows)].view(n, len(rows)))  # n x rows
        kk = min(k_in, len(rows))
        torch.topk(s, kk, dim=1, out=(pair_s[p0 : p0 + n, :kk], pair_j[p0 : p0 + n, :kk]))
        p0 += n
    pair_j += (block_of * db_block)[:, None]
    # Lay each query's pairs side by side: slot = rank of the pair among its query's pairs.
    order = torch.argsort(q_of, stable=True)
    q_sorted = q_of[order]
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(pairs), device=device) - starts[q_sorted]
    width = max(int(counts.max()) if num_q else 0, 1) * k_in
    table_s = torch.full((num_q, width), -float("inf"), dtype=queries.dtype, device=device)
    table_i = torch.zeros((num_q, width), dtype=torch.long, device=device)
    cols = slot[:, None] * k_in + torch.arange(k_in, device=device)
    table_s[q_sorted[:, None], cols] = pair_s[order]
    table_i[q_sorted[:, None], cols] = pair_j[order]
    top_s, top_j = table_s.topk(min(k, width), dim=1)
    scores = torch.full((num_q, k), -float("inf"), dtype=queries.dtype, device=device)
    idx = torch.zeros((num_q, k), dtype=torch.long, device=device)
    scores[:, : top_s.shape[1]] = top_s
    idx[:, : top_s.shape[1]] = table_i.gather(1, top_j)
    return scores, idx


def _top_in_blocks(
    queries: torch.Tensor, database: torch.Tensor, blocks: torch.Tensor, db_block: int, k: int, cancel: Callable[[], bool] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of each query within its own database block. blocks: Q -> Q x k, Q x k."""
    num_q, num_db = queries.shape[0], database.shape[0]
    k_in = min(k, db_block)
    scores = torch.full((num_q, k), -float("inf"), dtype=queries.dtype, device=queries.device)
    idx = torch.zeros((num_q, k), dtype=torch.long, device=queries.device)
    offsets = torch.arange(db_block, device=queries.device)
    for i in range(0, num_q, REFINE_CHUNK):
        check_cancel(cancel, "search")
        rows = blocks[i : i + REFINE_CHUNK, None] * db_block + offsets  # R x db_block
        valid = rows < num_db  # the last block may be short
        rows = rows.clamp_max(num_db - 1)
        s = torch.bmm(database[rows], queries[i : i + REFINE_CHUNK, :, None])[:, :, 0]
        s = s.masked_fill(~valid, -float("inf"))
        top_s, top_j = s.topk(k_in, dim=1)
        scores[i : i + REFINE_CHUNK, :k_in] = top_s
        idx[i : i + REFINE_CHUNK, :k_in] = rows.gather(1, top_j)
    return scores, idx
