"""Per-image features kept in memory across the pairs of a batch run, within a size budget.

    cache = FeatureCache(budget_bytes, pairs, size_of=lambda f: f.nbytes)
    f0 = cache.get("a.jpg", compute)         # compute("a.jpg") runs only on a miss
    f1 = cache.get("b.jpg", compute)
    cache.next_pair()                        # the pair is done (or skipped)

The whole sequence of pairs is known before the run starts, so when the budget is full the
entry evicted is the one needed again furthest in the future (or never): Belady's rule, the
fewest recomputations any cache of that size can achieve. An LRU cache thrashes on an
exhaustive list as soon as the images do not all fit.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

NEVER = float("inf")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0  # computations
    evictions: int = 0


class FeatureCache(Generic[T]):
    """``pairs``: the (name0, name1) pairs in the order they will be served.

    ``size_of(value)`` gives an entry's bytes; an entry larger than the whole budget is
    returned but not kept.
    """

    def __init__(self, budget_bytes: int, pairs: Sequence[tuple[str, str]], size_of: Callable[[T], int]):
        self.budget = int(budget_bytes)
        self.size_of = size_of
        self._uses: dict[str, deque[int]] = {}
        for index, pair in enumerate(pairs):
            for name in pair:
                self._uses.setdefault(name, deque()).append(index)
        self._pair = 0  # index of the pair being served
        self._entries: dict[str, tuple[T, int]] = {}
        self.stats = CacheStats()

    @property
    def used_bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def _remaining(self, name: str) -> deque[int]:
        """The pairs from the current one on that need ``name``."""
        uses = self._uses.get(name, deque())
        while uses and uses[0] < self._pair:
            uses.popleft()
        return uses

    def _next_use(self, name: str) -> float:
        """The first pair after the current one that needs ``name``."""
        uses = self._remaining(name)
        later = uses[0] if uses and uses[0] > self._pair else (uses[1] if len(uses) > 1 else None)
        return NEVER if later is None else later

    def next_pair(self) -> None:
        """The current pair is done (or skipped); entries no later pair needs are freed."""
        self._pair += 1
        for name in [k for k in self._entries if not self._remaining(k)]:
            del self._entries[name]

    def get(self, name: str, compute: Callable[[str], T]) -> T:
        """The cached value for ``name``, or ``compute(name)`` (kept while the budget allows)."""
        if name in self._entries:
            self.stats.hits += 1
            return self._entries[name][0]
        self.stats.misses += 1
        value = compute(name)
        self._insert(name, value, int(self.size_of(value)))
        return value

    def _insert(self, name: str, value: T, size: int) -> None:
        mine = self._next_use(name)
        if size > self.budget or mine == NEVER:
            return
        while self.used_bytes + size > self.budget:
            victim = max(self._entries, key=self._next_use)
            if self._next_use(victim) <= mine:
                return  # everything cached is needed again sooner than this one: do not keep it
            del self._entries[victim]
            self.stats.evictions += 1
        self._entries[name] = (value, size)
