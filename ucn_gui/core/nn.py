"""Nearest-neighbour search of unit-norm descriptors by inner product.

    scores, idx = nearest_neighbors(q, db, k=2)   # q: Q x C, db: N x C -> Q x k, Q x k

For unit vectors the nearest neighbour in L2 is the one with the largest inner
product (``d^2 = 2 - 2 s``). The Q x N score matrix is never stored. On a CPU the
search runs in two passes, because an arg-max over scores costs more than the
product itself when C is small (32-64):

1. coarse: multiply the database in blocks of ``db_block`` rows by the queries
   into a cache-sized buffer and keep only the maximum of every ``sub_block``
   rows per query (a values-only max over cached scores is cheap); then take
   each query's two best sub-blocks;
2. refine: recompute the winning sub-block of each query and take its top-2 there.

The best match lies in the best sub-block; the second best is either the
runner-up inside it or the maximum of the second-best sub-block. Results are exact.
On CUDA a plain blocked product with top-k is already fast and is used instead.
"""
from __future__ import annotations

import torch

CPU_DB_BLOCK = 512  # rows of the database per coarse block (scores block: 512 x query_block)
CPU_SUB_BLOCK = 64  # rows per recorded maximum: the exact second pass reads only these
CPU_QUERY_BLOCK = 2048  # queries per pass; 512 x 2048 float32 scores = 4 MB, cache-sized
REFINE_CHUNK = 256  # queries refined at once (gathers REFINE_CHUNK x sub_block x C floats)
GPU_BLOCK_BYTES = 1 << 30  # score block budget on CUDA


def descriptor_distance(scores: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between unit vectors from their inner product."""
    return torch.sqrt(torch.clamp(2.0 - 2.0 * scores, min=0.0))


@torch.no_grad()
def nearest_neighbors(
    queries: torch.Tensor,
    database: torch.Tensor,
    k: int = 1,
    query_block: int | None = None,
    db_block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (k = 1 or 2) database rows by inner product for every query.

    queries: Q x C, database: N x C, same device and dtype.
    Returns scores Q x k (descending) and indices Q x k (int64).
    """
    if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
        raise ValueError(f"expected Q x C and N x C, got {tuple(queries.shape)} and {tuple(database.shape)}")
    if k not in (1, 2) or k > database.shape[0]:
        raise ValueError(f"k={k} must be 1 or 2 and at most the database size {database.shape[0]}")
    if queries.shape[0] == 0:
        return queries.new_zeros((0, k)), torch.zeros((0, k), dtype=torch.long, device=queries.device)
    if queries.device.type == "cuda":
        return _search_dense(queries, database, k, query_block)
    qb = query_block or CPU_QUERY_BLOCK
    db_block = db_block or CPU_DB_BLOCK
    # Sub-blocks must tile a product block exactly, so that table rows map to database rows.
    sub_block = CPU_SUB_BLOCK if db_block % CPU_SUB_BLOCK == 0 else db_block
    parts = [_search_two_pass(queries[i : i + qb], database, k, db_block, sub_block) for i in range(0, len(queries), qb)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _search_dense(queries: torch.Tensor, database: torch.Tensor, k: int, query_block: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocked product + topk: one large product per query block (GPU)."""
    qb = query_block or max(1, GPU_BLOCK_BYTES // (4 * database.shape[0]))
    scores, idx = [], []
    for i in range(0, len(queries), qb):
        s, j = (queries[i : i + qb] @ database.t()).topk(k, dim=1)
        scores.append(s)
        idx.append(j)
    return torch.cat(scores), torch.cat(idx)


def _block_maxima(
    queries: torch.Tensor, database: torch.Tensor, k: int, db_block: int, sub_block: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest sub-block maxima per query: values k x Q and sub-block numbers k x Q.

    Per product block, two operations writing into preallocated memory: the
    product into a cache-sized buffer, then its maxima over ``sub_block`` rows
    into a sub-blocks x Q table. Small sub-blocks keep the exact second pass cheap.
    """
    num_q, num_db = queries.shape[0], database.shape[0]
    q_t = queries.t()
    maxima = torch.empty((-(-num_db // sub_block), num_q), dtype=queries.dtype, device=queries.device)
    buf = torch.empty((min(db_block, num_db), num_q), dtype=queries.dtype, device=queries.device)
    for d0 in range(0, num_db, db_block):
        n = min(db_block, num_db - d0)
        s = buf[:n]
        torch.mm(database[d0 : d0 + n], q_t, out=s)  # n x Q; a max over rows vectorises well
        full, r = n // sub_block, d0 // sub_block
        if full:
            torch.amax(s[: full * sub_block].view(full, sub_block, num_q), dim=1, out=maxima[r : r + full])
        if n % sub_block:  # the database's last, short sub-block
            torch.amax(s[full * sub_block :], dim=0, out=maxima[r + full])
    return maxima.topk(min(k, len(maxima)), dim=0)


def _search_two_pass(
    queries: torch.Tensor, database: torch.Tensor, k: int, db_block: int, sub_block: int
) -> tuple[torch.Tensor, torch.Tensor]:
    block_v, block_b = _block_maxima(queries, database, k, db_block, sub_block)
    scores, idx = _top_in_blocks(queries, database, block_b[0], sub_block, k)
    if k == 2 and len(block_v) == 2:
        # The runner-up is inside the best block or is the second-best block's maximum.
        other = block_v[1] > scores[:, 1]
        if other.any():
            s2, i2 = _top_in_blocks(queries[other], database, block_b[1][other], sub_block, 1)
            scores[other, 1] = s2[:, 0]
            idx[other, 1] = i2[:, 0]
    return scores, idx


def _top_in_blocks(
    queries: torch.Tensor, database: torch.Tensor, blocks: torch.Tensor, db_block: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of each query within its own database block. blocks: Q -> Q x k, Q x k."""
    num_q, num_db = queries.shape[0], database.shape[0]
    k_in = min(k, db_block)
    scores = torch.full((num_q, k), -float("inf"), dtype=queries.dtype, device=queries.device)
    idx = torch.zeros((num_q, k), dtype=torch.long, device=queries.device)
    offsets = torch.arange(db_block, device=queries.device)
    for i in range(0, num_q, REFINE_CHUNK):
        rows = blocks[i : i + REFINE_CHUNK, None] * db_block + offsets  # R x db_block
        valid = rows < num_db  # the last block may be short
        rows = rows.clamp_max(num_db - 1)
        s = torch.bmm(database[rows], queries[i : i + REFINE_CHUNK, :, None])[:, :, 0]
        s = s.masked_fill(~valid, -float("inf"))
        top_s, top_j = s.topk(k_in, dim=1)
        scores[i : i + REFINE_CHUNK, :k_in] = top_s
        idx[i : i + REFINE_CHUNK, :k_in] = rows.gather(1, top_j)
    return scores, idx
