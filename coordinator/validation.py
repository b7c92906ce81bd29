"""Validation of an uploaded update before it may touch the running sum.

Bonawitz et al. 2019 (§4.3) treat every device as untrusted: an update is
checked against what its task expects (round, base model version, codec, tensor
count, shapes, dtypes, finite values, a bound on its L2 norm, a bound on its
FedAvg weight, and a size bound applied before decoding). Each refusal carries a
reason code (``wire.protocol.UPLOAD_REASONS``) that the server counts.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from coordinator.errors import UpdateRejected
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
    tensors: list[np.ndarray]  # float32 deltas in the task's shapes (clipped if the policy clips)
    weight: float
    norm: float  # global L2 norm before any clipping
    clipped: bool
    nbytes: int


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
    try:
        tensors = msg.decode_tensors()
    except (ValueError, WireError) as err:  # a payload that passed the container checks but will not decode
        raise UpdateRejected("malformed", f"payload does not decode: {err}") from err
    squares = 0.0
    for i, t in enumerate(tensors):
        if t.dtype != np.float32:
            raise UpdateRejected("dtype", f"tensor {i} decodes to {t.dtype}, expected float32")
        if tuple(t.shape) != limits.shapes[i]:
            raise UpdateRejected("shape", f"tensor {i} decodes to shape {tuple(t.shape)}, expected {limits.shapes[i]}")
        if not np.isfinite(t).all():
            raise UpdateRejected("not_finite", f"tensor {i} has NaN or infinite values")
        squares += float(np.dot(t.reshape(-1).astype(np.float64), t.reshape(-1).astype(np.float64)))
    norm = math.sqrt(squares)
    clipped = False
    if limits.norm_bound is not None and norm > limits.norm_bound:
        if limits.norm_policy == "reject":
            raise UpdateRejected("norm_too_large", f"update L2 norm {norm:.6g} exceeds the bound {limits.norm_bound}")
        scale = np.float32(limits.norm_bound / norm)
        tensors = [t * scale for t in tensors]
        clipped = True
    return ValidUpdate(tensors=tensors, weight=msg.weight, norm=norm, clipped=clipped, nbytes=msg.nbytes)
