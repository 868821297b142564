"""Row-wise work split over a few threads, with the same result as one thread.

The exemplar filler's hot loops (gathering patch windows, patch distances) compute one output
row per target patch from that patch's inputs alone, in numpy calls that release the GIL
(fancy indexing, ``einsum``). Cutting the rows into contiguous ranges, computing each range on
its own thread and joining the ranges in order therefore gives bit for bit the array one
call gives, for any number of threads: each row is the same arithmetic on the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: fewer rows than this a thread are done on the calling thread: below ~2,000 patch rows a
#: call takes well under a millisecond and handing it to a thread costs about as much
MIN_ROWS = 2048
#: at most this many rows a call: the gathers of one call are then ~5 MB (161 float32 a patch
#: row) instead of tens of MB, which the allocator kept per thread (outpainting to 576x240
#: peaked 50-100 MiB higher with whole halves on 2 threads; `benchmarks/outpaint.py --memory`)
MAX_ROWS = 8192


class RowThreads:
    """``rows(fn, n)`` -> ``fn(0, n)``, computed as ``fn(a, b)`` on row ranges (at most
    :data:`MAX_ROWS` rows each) on ``threads`` threads.

    ``fn(a, b)`` returns an array whose first axis holds rows ``a..b-1``. Use as a context
    manager: the threads exist from ``__enter__`` to ``__exit__`` only (none with one thread).
    """

    def __init__(self, threads: int = 1, min_rows: int | None = None) -> None:
        self.threads = max(1, int(threads))
        self.min_rows = max(1, int(MIN_ROWS if min_rows is None else min_rows))
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> RowThreads:
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="tsam-rows")
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __call__(self, fn: Callable[[int, int], np.ndarray], n: int) -> np.ndarray:
        parts = self._run(fn, n, self.min_rows, MAX_ROWS)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def each(self, fn: Callable[[int, int], object], n: int, min_rows: int = 1) -> None:
        """``fn(a, b)`` for row ranges covering ``0..n-1`` (at least ``min_rows`` each), for its
        side effects: each call must write only rows ``a..b-1`` of whatever it fills."""
        self._run(fn, n, min_rows)

    def _run(self, fn: Callable[[int, int], object], n: int, min_rows: int, max_rows: int | None = None) -> list:
        parts = max(1, min(self.threads if self._pool is not None else 1, n // min_rows))
        if max_rows:
            parts = max(parts, -(-n // max_rows))
        if parts < 2:
            return [fn(0, n)]
        bounds = np.linspace(0, n, parts + 1).astype(int)
        ranges = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        if self._pool is None:
            return [fn(a, b) for a, b in ranges]
        return list(self._pool.map(lambda ab: fn(*ab), ranges))
