"""Streaming FedAvg aggregation: a running example-weighted sum, added to in the rotated domain.

McMahan et al. 2017 weight each client's update by its example count; Bonawitz
et al. 2019 (§4) aggregate updates as they arrive so that no update is kept
once it is added.

- :class:`RotatedSum` is what a round adds to as updates arrive. Every device
  of a round rotates with the same orthonormal ``R`` (``wire.codec``: the
  rotation seed is per round), so ``sum_k w_k R^-1 y_k = R^-1 sum_k w_k y_k``
  and the server adds dequantized rotated vectors ``y_k = lo_k + step_k L_k``
  as they are, one compiled pass per update (``sum_kernels``), and unrotates
  once per round (Suresh et al. 2017). The ``lo_k`` terms are constant per
  tensor, so they are summed as one number per tensor, not per coordinate.
  It lives in memory only (``coordinator.partials`` says why and how several
  processes combine theirs). A float64 sum adds updates in pairs (the first
  of two waits in the sum's memory for the second; every read of the sum adds
  a waiting one first): it is then read and written once per two updates,
  about twice as fast per update (``sum_kernels.add_scaled_pair``).
- :class:`WeightedSum` is the unrotated ``sum_i w_i delta_i`` and ``sum_i w_i``
  over the model's tensors that a commit turns into the mean.

Sums are float64 by default: adding thousands of float32 updates then loses
nothing measurable and the order of arrival does not matter to 1e-12
(bench/coordinator_aggregate.py measures float32 too).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np

from coordinator.sum_kernels import add_scaled, add_scaled_pair
from wire.codec import padded_size, unrotate_tensor
from wire.update import UpdateMessage

_DTYPE = np.dtype("<f8")
_ROTATED_HEADER = struct.Struct("<4sQdI")  # magic, count, weight, tensors
_ROTATED_MAGIC = b"FKRS"


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


class RotatedSum:
    """``sum_k w_k y_k`` of a round's updates in the rotated domain, with ``sum_k w_k`` and the count.

    ``rotated`` says whether the round's codec rotates (the quantized codecs):
    then tensor ``i`` occupies ``padded_size(n_i)`` coordinates, else ``n_i``.
    ``lows[i]`` is ``sum_k w_k lo_{k,i}``, the constant part of every coordinate
    of tensor ``i``. Not thread-safe: ``coordinator.partials`` gives each adding
    thread its own stripe.
    """

    def __init__(self, shapes: Sequence[Sequence[int]], *, rotated: bool, dtype: type = np.float64) -> None:
        self.shapes: tuple[tuple[int, ...], ...] = tuple(tuple(int(d) for d in s) for s in shapes)
        self.rotated = rotated
        sizes = [math.prod(s) for s in self.shapes]
        self._sizes = [padded_size(n) if rotated else n for n in sizes]
        self._starts = [sum(self._sizes[:i]) for i in range(len(sizes))]
        self._total: np.ndarray = np.zeros(sum(self._sizes), dtype=dtype)  # (Q,) rotated coordinates
        self.lows: np.ndarray = np.zeros(len(sizes), dtype=np.float64)  # (T,)
        self.weight = 0.0
        self.count = 0
        self._waiting: tuple[UpdateMessage, float] | None = None  # counted, not yet in _total: (msg, coefficient)

    @property
    def total(self) -> np.ndarray:
        """The sum's (Q,) rotated coordinates (adding a waiting update first)."""
        self._add_waiting()
        return self._total

    def add(self, msg: UpdateMessage, weight: float, scale: float = 1.0) -> None:
        """Add ``weight * scale`` times the dequantized rotated ``msg``, and ``weight`` to the total weight.

        ``scale`` is the validation's clip factor (``ValidUpdate.scale``): it shrinks the update, never its
        FedAvg weight. ``msg`` was validated (shapes and codec match). Counted at once; its coordinates go
        in with the next update's (one pass for both) or at the next read of :attr:`total`.
        """
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"weight must be positive and finite, got {weight}")
        if not (math.isfinite(scale) and 0 < scale <= 1):
            raise ValueError(f"clip scale must be in (0, 1], got {scale}")
        coefficient = weight * scale
        if msg.shapes != self.shapes or (msg.rotation_seed is not None) != self.rotated:
            raise ValueError(f"update over {msg.shapes} (rotated: {msg.rotation_seed is not None}) does not fit")
        for i, t in enumerate(msg.tensors):
            if t.bits is not None:
                self.lows[i] += coefficient * t.lo
        self.weight += float(weight)
        self.count += 1
        if self._waiting is None:
            self._waiting = (msg, coefficient)
            if self._total.dtype != np.float64:  # a float32 sum is cheap to pass over: no pairs (slower there)
                self._add_waiting()
            return
        first, first_coefficient = self._waiting
        self._waiting = None
        for i in range(len(msg.tensors)):
            x, a = self._scaled(first, i, first_coefficient)
            y, b = self._scaled(msg, i, coefficient)
            add_scaled_pair(self._view(i), x, a, y, b)

    def _add_waiting(self) -> None:
        if self._waiting is not None:
            msg, coefficient = self._waiting
            self._waiting = None
            for i in range(len(msg.tensors)):
                add_scaled(self._view(i), *self._scaled(msg, i, coefficient))

    def _view(self, index: int) -> np.ndarray:
        return self._total[self._starts[index] : self._starts[index] + self._sizes[index]]  # (q_i,)

    @staticmethod
    def _scaled(msg: UpdateMessage, index: int, coefficient: float) -> tuple[np.ndarray, float]:
        """Tensor ``index``'s payload and the factor it is added with: ``coefficient * step`` for levels."""
        t = msg.tensors[index]
        if t.bits is None:
            return msg.values(index), coefficient
        return msg.levels(index), coefficient * (t.hi - t.lo) / ((1 << t.bits) - 1)

    def merge(self, other: RotatedSum) -> None:
        """Add another partial sum of the same round (another stripe, another process)."""
        if other.shapes != self.shapes or other.rotated != self.rotated or other.total.size != self.total.size:
            raise ValueError("cannot merge partial sums of different layouts")
        np.add(self.total, other.total, out=self._total)
        self.lows += other.lows
        self.weight += other.weight
        self.count += other.count

    def unrotated(self, rotation_seed: int | None) -> WeightedSum:
        """The round's :class:`WeightedSum`: add the constant parts, then one inverse rotation per tensor."""
        parts = []
        for i, n in enumerate(math.prod(s) for s in self.shapes):
            y = self.total[self._starts[i] : self._starts[i] + self._sizes[i]].astype(np.float64) + self.lows[i]
            if self.rotated:
                if rotation_seed is None:
                    raise ValueError("a rotated sum needs the round's rotation seed")
                y = unrotate_tensor(y, rotation_seed, i, n)  # (n_i,)
            parts.append(y)
        total: np.ndarray = np.concatenate(parts) if parts else np.zeros(0)
        acc = WeightedSum(self.shapes, total, self.weight)
        acc.count = self.count
        return acc

    def to_bytes(self) -> bytes:
        """The sum as bytes (to seal for another process; never stored in the clear)."""
        header = _ROTATED_HEADER.pack(_ROTATED_MAGIC, self.count, self.weight, self.lows.size)
        dtype = b"8" if self.total.dtype == np.float64 else b"4"
        return (
            header
            + dtype
            + self.lows.astype("<f8").tobytes()
            + self.total.astype(self.total.dtype.newbyteorder("<")).tobytes()
        )

    @classmethod
    def from_bytes(cls, shapes: Sequence[Sequence[int]], *, rotated: bool, blob: bytes) -> RotatedSum:
        """Inverse of :meth:`to_bytes` (ValueError if the bytes do not fit ``shapes``)."""
        if len(blob) < _ROTATED_HEADER.size + 1:
            raise ValueError(f"partial sum of {len(blob)} bytes is too short")
        magic, count, weight, tensors = _ROTATED_HEADER.unpack_from(blob)
        width = {b"8": 8, b"4": 4}.get(blob[_ROTATED_HEADER.size : _ROTATED_HEADER.size + 1])
        out = cls(shapes, rotated=rotated, dtype=np.float64 if width == 8 else np.float32)
        start = _ROTATED_HEADER.size + 1
        want = start + 8 * len(out.shapes) + out.total.size * (width or 0)
        if magic != _ROTATED_MAGIC or width is None or tensors != len(out.shapes) or len(blob) != want:
            raise ValueError(f"partial sum of {len(blob)} bytes does not fit {len(out.shapes)} tensors")
        out.lows = np.frombuffer(blob, dtype="<f8", count=tensors, offset=start).copy()
        out._total = np.frombuffer(blob, dtype=f"<f{width}", offset=start + 8 * tensors).copy()
        out.weight, out.count = float(weight), int(count)
        return out
