"""The per-update inner loops of plain aggregation, compiled (numba) so they run at memory speed.

A round of a thousand small-model updates is a thousand passes over 1.27M
coordinates; numpy would make each pass several (cast uint8 levels to float,
scale, add, square, sum) and reach about a quarter of ``np.add``'s bandwidth.
Each function here makes one pass, holds no Python state and releases the GIL
(``nogil``), so upload threads add in parallel. Every function has an exact
numpy twin in tests/coordinator/test_sum_kernels.py.

Compiling them takes seconds, and every coordinator process needs them (``warm_up``
at its start), so they go through numba's on-disk cache: a process whose kernels
were compiled before loads them in well under a second. numba keeps the cache in
``$NUMBA_CACHE_DIR`` if set, else in ``__pycache__`` beside this file, else in the
user's cache directory (``~/.cache/numba``). Where none of those is writable (a
read-only install run by a user without a home), ``cache=True`` would make this
module fail to import; the kernels are then compiled uncached, in every process,
with one warning that names ``NUMBA_CACHE_DIR``. There is deliberately no fallback
to a shared temporary directory: numba's cache files are pickles, loaded as code.
"""

from __future__ import annotations

import logging

import numba
import numpy as np

logger = logging.getLogger(__name__)


def _cache_probe() -> None:
    """Never called: numba is asked where it would cache a function of this file."""


def _cache_directory_found() -> bool:
    """Whether numba finds a writable cache directory for this file (it looks when a cached function is made)."""
    try:
        numba.njit(cache=True)(_cache_probe)
    except RuntimeError as err:
        if "no locator available" not in str(err):
            raise
        logger.warning(
            "numba finds no writable cache directory for %s, so the aggregation kernels are compiled in every "
            "coordinator process (seconds at its start); set NUMBA_CACHE_DIR to a directory only this user can "
            "write to keep them",
            __file__,
        )
        return False
    return True


CACHED = _cache_directory_found()
_kernel = numba.njit(nogil=True, cache=CACHED)


@_kernel
def level_moments(levels: np.ndarray) -> tuple[np.int64, np.int64]:
    """(sum of levels, sum of squared levels) of a (m,) uint8 vector, exact in int64.

    With them the L2 norm of the dequantized vector ``lo + step * levels`` is
    ``m lo^2 + 2 lo step S1 + step^2 S2`` without materializing a float vector.
    """
    s1 = np.int64(0)
    s2 = np.int64(0)
    for i in range(levels.size):
        v = np.int64(levels[i])
        s1 += v
        s2 += v * v
    return s1, s2


@_kernel
def finite_sum_of_squares(values: np.ndarray) -> tuple[np.float64, bool]:
    """(sum of squares accumulated in float64, whether every value is finite) of a (n,) float vector."""
    total = np.float64(0.0)
    finite = True
    for i in range(values.size):
        v = np.float64(values[i])
        if not np.isfinite(v):
            finite = False
        total += v * v
    return total, finite


@_kernel
def add_scaled(acc: np.ndarray, x: np.ndarray, a: float) -> None:
    """``acc += a * x`` in place, for (n,) ``acc`` (float32/float64) and ``x`` (uint8 levels or float32)."""
    scale = acc.dtype.type(a)
    for i in range(x.size):
        acc[i] += scale * x[i]


@_kernel
def add_scaled_pair(acc: np.ndarray, x: np.ndarray, a: float, y: np.ndarray, b: float) -> None:
    """``acc += a * x + b * y`` in place: two updates in one pass, so the sum is read and written once for both.

    The float64 sum costs 16 bytes of memory traffic a coordinate per pass against the 1 of a uint8 level;
    adding updates two at a time halves it. ``a * x + b * y`` is formed in float64 first.
    """
    for i in range(x.size):
        acc[i] += np.float64(a) * x[i] + np.float64(b) * y[i]


def warm_up() -> None:
    """Load from numba's on-disk cache (or compile) every kernel for the types uploads use.

    Called when a coordinator starts, so the first upload does not pay seconds of JIT compilation. Payload
    views are read-only (``np.frombuffer`` of bytes), which numba types apart from writable arrays.
    """
    for dtype in (np.float64, np.float32):
        acc = np.zeros(2, dtype=dtype)
        for x in (np.zeros(2, dtype=np.uint8), np.zeros(2, dtype=np.float32)):
            readonly = np.frombuffer(x.tobytes(), dtype=x.dtype)
            add_scaled(acc, x, 1.0)
            add_scaled(acc, readonly, 1.0)
            if dtype is np.float64:  # only float64 sums add in pairs (coordinator.aggregation)
                add_scaled_pair(acc, readonly, 1.0, readonly, 1.0)
    levels = np.frombuffer(b"\0\0", dtype=np.uint8)
    level_moments(levels)
    level_moments(levels.copy())
    values = np.frombuffer(np.zeros(2, dtype=np.float32).tobytes(), dtype=np.float32)
    finite_sum_of_squares(values)
    finite_sum_of_squares(values.copy())
