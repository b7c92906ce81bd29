"""Validation of an uploaded update before it may touch the running sum.

Bonawitz et al. 2019 (§4.3) treat every device as untrusted: an update is
checked against what its task expects (round, base model version, codec and the
round's rotation, tensor count, shapes, finite values, a bound on its L2 norm, a
bound on its FedAvg weight, and a size bound applied before decoding). Each
refusal carries a reason code (``wire.protocol.UPLOAD_REASONS``) that the server
counts.

Nothing is unrotated here: the round sums updates in the rotated domain and
unrotates once at commit (Suresh et al. 2017; ``coordinator.aggregation``), so
the norm and finiteness are checked on the rotated vector, from the levels'
first two moments, in one pass over the payload.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from coordinator.errors import UpdateRejected
from coordinator.sum_kernels import finite_sum_of_squares, level_moments
from wire.update import UpdateMessage, WireError, decode_update


@dataclasses.dataclass(frozen=True)
class UpdateLimits:
    """What a round accepts."""

    round: int
    base_version: int
    codec: str
    shapes: tuple[tuple[int, ...], ...]
    max_weight: float  # e.g. max_rows * seq_len * local_epochs target tokens
    max_bytes: int
    norm_bound: float | None = None
    norm_policy: Literal["clip", "reject"] = "clip"
    rotation_seed: int | None = None  # the round's (wire.codec.round_rotation_seed); None: any (float32 is not rotated)

    def __post_init__(self) -> None:
        if self.norm_policy not in ("clip", "reject"):
            raise ValueError(f"norm_policy must be 'clip' or 'reject', got {self.norm_policy!r}")
        if self.norm_bound is not None and not self.norm_bound > 0:
            raise ValueError(f"norm_bound must be > 0, got {self.norm_bound}")
        if not self.max_weight > 0:
            raise ValueError(f"max_weight must be > 0, got {self.max_weight}")


@dataclasses.dataclass(frozen=True)
class ValidUpdate:
    """A checked update, still in the rotated domain: the round's sum adds ``scale * weight`` times it.

    ``norm`` is the L2 norm of the dequantized rotated vector. The rotation is
    orthonormal (``wire.codec``), so this is the norm of the decoded update plus
    the quantization noise that lands in padding coordinates, which decoding
    drops: it is never below the decoded update's norm, and equal to it when a
    tensor needs no padding. A bound checked here therefore bounds the update.
    """

    message: UpdateMessage
    weight: float
    norm: float  # global L2 norm before any clipping (rotated domain)
    scale: float  # 1.0, or norm_bound / norm when the policy clipped
    clipped: bool
    nbytes: int

    def tensors(self) -> list[np.ndarray]:
        """The decoded (unrotated, clipped) float32 deltas: one update at a time, for tests and tools only."""
        return [(t * np.float32(self.scale)).astype(np.float32) for t in self.message.decode_tensors()]


def decode_and_validate(blob: bytes, limits: UpdateLimits) -> ValidUpdate:
    """Decode ``blob`` and check it against ``limits``; :class:`UpdateRejected` (with a reason) if bad."""
    if len(blob) > limits.max_bytes:
        raise UpdateRejected("too_large", f"update of {len(blob)} bytes exceeds the bound of {limits.max_bytes}")
    try:
        msg = decode_update(blob, max_bytes=limits.max_bytes)
    except WireError as err:
        raise UpdateRejected(err.reason, str(err)) from err
    return validate_message(msg, limits)


def validate_message(msg: UpdateMessage, limits: UpdateLimits) -> ValidUpdate:
    """The checks that need the task (the container was checked by ``decode_update``)."""
    _check_header(msg, limits)
    squares = 0.0
    for i in range(len(msg.tensors)):
        try:
            squares += _tensor_squares(msg, i)
        except UpdateRejected:
            raise
        except (ValueError, WireError) as err:  # a payload that passed the container checks but will not decode
            raise UpdateRejected("malformed", f"payload does not decode: {err}") from err
    norm = math.sqrt(squares)
    if not math.isfinite(norm):
        raise UpdateRejected("not_finite", f"update L2 norm {norm} is not finite")
    scale = 1.0
    if limits.norm_bound is not None and norm > limits.norm_bound:
        if limits.norm_policy == "reject":
            raise UpdateRejected("norm_too_large", f"update L2 norm {norm:.6g} exceeds the bound {limits.norm_bound}")
        scale = limits.norm_bound / norm
    return ValidUpdate(msg, weight=msg.weight, norm=norm, scale=scale, clipped=scale < 1.0, nbytes=msg.nbytes)


def _check_header(msg: UpdateMessage, limits: UpdateLimits) -> None:
    if msg.round != limits.round:
        raise UpdateRejected("wrong_round", f"update is for round {msg.round}, the session is in round {limits.round}")
    if msg.base_version != limits.base_version:
        raise UpdateRejected(
            "stale_base_version", f"update trained on version {msg.base_version}, the round's is {limits.base_version}"
        )
    if msg.codec != limits.codec:
        raise UpdateRejected("codec", f"update encoded with {msg.codec!r}, the assignment asked for {limits.codec!r}")
    if limits.rotation_seed is not None and msg.rotation_seed not in (None, limits.rotation_seed):
        raise UpdateRejected(
            "codec", f"update rotated with seed {msg.rotation_seed}, the round rotates with {limits.rotation_seed}"
        )
    if not (math.isfinite(msg.weight) and 0 < msg.weight <= limits.max_weight):
        raise UpdateRejected("bad_weight", f"weight {msg.weight} outside (0, {limits.max_weight}]")
    if len(msg.shapes) != len(limits.shapes):
        raise UpdateRejected("tensor_count", f"update has {len(msg.shapes)} tensors, the model {len(limits.shapes)}")
    for i, (got, want) in enumerate(zip(msg.shapes, limits.shapes, strict=True)):
        if tuple(got) != want:
            raise UpdateRejected("shape", f"tensor {i} has shape {tuple(got)}, expected {want}")


def _tensor_squares(msg: UpdateMessage, index: int) -> float:
    """Tensor ``index``'s sum of squares in the rotated domain; ``not_finite`` if a value is not a finite float32.

    Quantized: every value is ``lo + step * level`` with ``level`` in [0, 2**bits - 1], so it is finite and a
    float32 exactly when ``lo`` and ``hi`` are (the header check made them finite numbers).
    """
    t = msg.tensors[index]
    if t.bits is None:
        squares, finite = finite_sum_of_squares(msg.values(index))
        if not finite:
            raise UpdateRejected("not_finite", f"tensor {index} has NaN or infinite values")
        return float(squares)
    if max(abs(t.lo), abs(t.hi)) > _FLOAT32_MAX or not math.isfinite(t.hi - t.lo):
        raise UpdateRejected("not_finite", f"tensor {index} range [{t.lo}, {t.hi}] is not finite in float32")
    step = (t.hi - t.lo) / ((1 << t.bits) - 1)
    s1, s2 = level_moments(msg.levels(index))
    moments = float(t.padded * t.lo * t.lo + 2.0 * t.lo * step * float(s1) + step * step * float(s2))
    return max(0.0, moments)  # rounding can take an all-zero vector a hair below zero


_FLOAT32_MAX = float(np.finfo(np.float32).max)
