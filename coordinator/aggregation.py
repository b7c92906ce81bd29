"""Streaming FedAvg aggregation: a running example-weighted float64 sum.

McMahan et al. 2017 weight each client's update by its example count; Bonawitz
et al. 2019 (§4) aggregate updates as they arrive so that no update is kept
once it is added. The sum lives as one flat float64 vector (float64 so that
adding thousands of float32 updates loses nothing measurable, and the order of
arrival does not matter to 1e-12) that serializes to bytes for the database row
that several processes update in turn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_DTYPE = np.dtype("<f8")


class WeightedSum:
    """``sum_i w_i * delta_i`` and ``sum_i w_i`` over the tensors of a fixed list of shapes."""

    def __init__(self, shapes: Sequence[Sequence[int]], total: np.ndarray | None = None, weight: float = 0.0) -> None:
        self.shapes: tuple[tuple[int, ...], ...] = tuple(tuple(int(d) for d in s) for s in shapes)
        self._sizes = [math.prod(s) for s in self.shapes]
        size = sum(self._sizes)
        if total is None:
            total = np.zeros(size, dtype=np.float64)
        if total.shape != (size,):
            raise ValueError(f"running sum has shape {total.shape}, expected ({size},)")
        self.total = total  # (P,) float64
        self.weight = float(weight)
        self.count = 0

    @classmethod
    def from_bytes(cls, shapes: Sequence[Sequence[int]], blob: bytes | None, weight: float) -> WeightedSum:
        """Restore a sum stored with :meth:`to_bytes` (``None``: an empty sum)."""
        if blob is None:
            return cls(shapes, weight=weight)
        size = sum(math.prod(s) for s in shapes)
        if len(blob) != size * _DTYPE.itemsize:
            raise ValueError(f"stored running sum has {len(blob)} bytes, expected {size * _DTYPE.itemsize}")
        return cls(shapes, np.frombuffer(blob, dtype=_DTYPE).copy(), weight)

    def to_bytes(self) -> bytes:
        return self.total.astype(_DTYPE, copy=False).tobytes()

    def add(self, tensors: Sequence[np.ndarray], weight: float) -> None:
        """Add ``weight * tensors`` in place (shapes must match; validation happened before)."""
        if len(tensors) != len(self.shapes):
            raise ValueError(f"got {len(tensors)} tensors, expected {len(self.shapes)}")
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"weight must be positive and finite, got {weight}")
        offset = 0
        for t, shape, n in zip(tensors, self.shapes, self._sizes, strict=True):
            if tuple(t.shape) != shape:
                raise ValueError(f"tensor of shape {tuple(t.shape)} where {shape} was expected")
            view = self.total[offset : offset + n]  # (n,) float64
            view += weight * np.asarray(t, dtype=np.float64).reshape(-1)
            offset += n
        self.weight += float(weight)
        self.count += 1

    def merge(self, other: WeightedSum) -> None:
        """Add another partial sum over the same shapes (the shards of a round's sum)."""
        if other.shapes != self.shapes:
            raise ValueError(f"cannot merge sums over shapes {other.shapes} and {self.shapes}")
        self.total += other.total
        self.weight += other.weight
        self.count += other.count

    def mean(self) -> list[np.ndarray]:
        """The weighted mean per tensor, float64 in the original shapes."""
        if self.weight <= 0:
            raise ValueError("the mean of an empty sum is undefined")
        return self.split(self.total / self.weight)

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """A flat (P,) vector cut into this sum's shapes."""
        out = []
        offset = 0
        for shape, n in zip(self.shapes, self._sizes, strict=True):
            out.append(flat[offset : offset + n].reshape(shape))
            offset += n
        return out
