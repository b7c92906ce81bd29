"""The binary messages devices upload (updates) and download (checkpoints).

One self-describing container for both, so the two sides cannot disagree on a
byte (Bonawitz et al. 2019 keep the device and server format in one place too):

    magic (4 bytes) | u16 format version | u32 header length | JSON header | payloads | XXH3-64 (8 bytes)

integers little-endian; the checksum (``checksum``) covers everything before it. It is there to catch
corruption only (a truncated or damaged file or body), not tampering: a device computes it over whatever
it sends, so a keyed or cryptographic hash would prove nothing more, and every byte is validated anyway.
Format 2 ended in a sha256, whose 0.6 ms per 1.27 MB update was three times the cost of adding the
update into the round's sum (issue 15); XXH3 (Collet, xxHash) reads the same body in ~0.03 ms.
The prefix never changes between formats, so a body of another format is refused by its version
(``unsupported_version``) before anything else of it is read. The JSON header
names every tensor's shape, dtype, codec parameters (bits, lo, hi, padded
length) and the offset/length of its payload, so a message decodes without
knowing the model. An update (magic ``FKUP``) carries a device's clipped,
rotated and stochastically quantized delta (``wire.codec``, after Suresh et al.
2017): tensor ``i`` is rotated in the power-of-two blocks of
``wire.codec.rotation_blocks`` with the round's ``rotation_seed`` (shared by
every device of the round, so the server sums in the rotated domain), then
quantized as one vector with its own [lo, hi] and rounding randomness from the
session's ``seed`` (``wire.codec.encode_tensor``; signs and draws from
``wire.counter_rng``, which TensorFlow reproduces: ``tff_sim.tf_codec``); the
header carries both, so a message decodes on its own. A checkpoint (magic ``FKWT``) carries exact float32 weights.

``decode_update`` checks the container only: size limit, magic, version,
checksum and that the header is self-consistent. Whether the shapes fit the
task, the values are finite and the norm is bounded is the coordinator's call
(it knows the task). Every bad blob raises ``WireError`` with a ``reason``;
nothing else escapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np
import xxhash

from fedkeys_errors import FedkeysError
from wire.codec import (
    CODECS,
    CodecSpec,
    clip_by_global_norm,
    dequantize,
    encode_tensor,
    pack_bits,
    packed_size,
    padded_size,
    unpack_levels,
    unrotate_tensor,
)

FORMAT_VERSION: int = 3  # 3: an XXH3-64 trailer (was sha256); 2: the rotation seed apart from the rounding seed
UPDATE_MAGIC = b"FKUP"
WEIGHTS_MAGIC = b"FKWT"
MAX_HEADER_BYTES = 1 << 20
MAX_TENSORS = 4096
MAX_RANK = 8
_PREFIX = struct.Struct("<4sHI")  # magic, format version, header length
CHECKSUM_BYTES = 8
_REASONS = ("truncated", "bad_magic", "unsupported_version", "checksum", "malformed", "too_large")


class WireError(FedkeysError, ValueError):
    """A blob that is not a valid message; ``reason`` is one of the fixed reasons below.

    Reasons: truncated, bad_magic, unsupported_version, checksum, malformed, too_large.
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in _REASONS:
            raise ValueError(f"unknown wire error reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class TensorEncoding:
    """How one tensor sits in a message: shape, codec parameters and its payload's slice."""

    shape: tuple[int, ...]
    bits: int | None  # None: raw little-endian float32
    lo: float
    hi: float
    padded: int  # coordinates in the payload (power of two when rotated)
    offset: int  # into the payload region
    length: int  # bytes

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class UpdateMessage:
    """A decoded (container-checked) update; ``decode_tensors`` gives the float32 deltas back."""

    round: int
    base_version: int
    weight: float
    codec: str
    seed: int  # the session's rounding seed
    rotation_seed: int | None  # the round's rotation seed (None for float32, which is not rotated)
    clip_norm: float | None
    shapes: tuple[tuple[int, ...], ...]
    tensors: tuple[TensorEncoding, ...]
    payload: bytes | memoryview = dataclasses.field(repr=False)  # a view into the uploaded blob: no copy
    encoded_size: int

    @property
    def nbytes(self) -> int:
        """Size of the encoded message in bytes."""
        return self.encoded_size

    def levels(self, index: int) -> np.ndarray:
        """Tensor ``index``'s quantization levels, (padded,) uint8 (a view of the payload for 8 bits)."""
        t = self.tensors[index]
        if t.bits is None:
            raise ValueError(f"tensor {index} is float32, it has no levels")
        return unpack_levels(memoryview(self.payload)[t.offset : t.offset + t.length], t.bits, t.padded)

    def values(self, index: int) -> np.ndarray:
        """Tensor ``index``'s float32 payload, (n,) (a read-only view; float32 codec only)."""
        t = self.tensors[index]
        if t.bits is not None:
            raise ValueError(f"tensor {index} is quantized, it has no float32 payload")
        return np.frombuffer(self.payload, dtype="<f4", count=t.size, offset=t.offset)

    def decode_tensors(self) -> list[np.ndarray]:
        """The float32 deltas in their original shapes (dequantized and unrotated), one update at a time."""
        out = []
        for i, t in enumerate(self.tensors):
            if t.bits is None:
                values = self.values(i).astype(np.float32)
            else:
                assert self.rotation_seed is not None  # decode_update refuses a quantized message without one
                rotated = dequantize(self.levels(i), t.bits, t.lo, t.hi)  # (padded,)
                values = unrotate_tensor(rotated, self.rotation_seed, i, t.size).astype(np.float32)
            out.append(values.reshape(t.shape))
        return out


def raw_nbytes(shapes: Sequence[Sequence[int]]) -> int:
    """Bytes of the tensors as plain float32 (the "before" of an encoding)."""
    return 4 * sum(math.prod(s) for s in shapes)


def checksum(body: bytes | memoryview) -> bytes:
    """The container's trailer: XXH3-64 of ``body`` (everything before the trailer), ``CHECKSUM_BYTES`` bytes."""
    return xxhash.xxh3_64_digest(body)


def _pack(magic: bytes, header: dict[str, Any], payloads: Sequence[bytes]) -> bytes:
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    body = b"".join([_PREFIX.pack(magic, FORMAT_VERSION, len(header_bytes)), header_bytes, *payloads])
    return body + checksum(body)


def _lay_out(entries: list[dict[str, Any]], payloads: Sequence[bytes]) -> None:
    offset = 0
    for entry, payload in zip(entries, payloads, strict=True):
        entry["offset"], entry["length"] = offset, len(payload)
        offset += len(payload)


def encode_update(
    deltas: Sequence[np.ndarray],
    *,
    codec: str,
    round: int,
    base_version: int,
    weight: float,
    seed: int,
    rotation_seed: int | None = None,
    clip_norm: float | None = None,
) -> bytes:
    """Clip (if ``clip_norm``), rotate + quantize (unless float32), pack and checksum a device's delta.

    ``seed`` is the session's rounding seed, ``rotation_seed`` the round's
    (``Assignment.rotation_seed``; required by the quantized codecs, ignored by float32).
    """
    spec = CodecSpec.parse(codec)
    if round < 0 or base_version < 0 or seed < 0:
        raise ValueError(f"round, base_version and seed must be non-negative, got {round}, {base_version}, {seed}")
    if spec.bits is not None and (rotation_seed is None or rotation_seed < 0):
        raise ValueError(f"codec {spec.name} needs a non-negative rotation_seed, got {rotation_seed!r}")
    rotation = None if spec.bits is None else rotation_seed
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"weight must be a non-negative finite number, got {weight!r}")
    tensors = [np.asarray(d, dtype=np.float32) for d in deltas]
    for i, t in enumerate(tensors):
        if not np.all(np.isfinite(t)):
            raise ValueError(f"delta tensor {i} has non-finite values")
    if clip_norm is not None:
        tensors, _ = clip_by_global_norm(tensors, clip_norm)
    entries: list[dict[str, Any]] = []
    payloads: list[bytes] = []
    for i, t in enumerate(tensors):
        entry: dict[str, Any] = {"shape": list(t.shape), "dtype": "float32", "bits": spec.bits}
        if spec.bits is None:
            entry.update(lo=0.0, hi=0.0, padded=t.size)
            payloads.append(t.astype("<f4").tobytes())
        else:
            assert rotation is not None
            levels, lo, hi = encode_tensor(t.ravel(), spec.bits, rotation_seed=rotation, rounding_seed=seed, index=i)
            entry.update(lo=lo, hi=hi, padded=levels.size)
            payloads.append(pack_bits(levels, spec.bits))
        entries.append(entry)
    _lay_out(entries, payloads)
    header = {
        "round": int(round),
        "base_version": int(base_version),
        "weight": float(weight),
        "codec": spec.name,
        "seed": int(seed),
        "rotation_seed": rotation,
        "clip_norm": None if clip_norm is None else float(clip_norm),
        "tensors": entries,
    }
    return _pack(UPDATE_MAGIC, header, payloads)


def encode_weights(weights: Sequence[np.ndarray]) -> bytes:
    """Exact float32 weights (a checkpoint download) in the same checksummed container."""
    tensors = [np.asarray(w, dtype=np.float32) for w in weights]
    entries: list[dict[str, Any]] = [{"shape": list(t.shape), "dtype": "float32"} for t in tensors]
    payloads = [t.astype("<f4").tobytes() for t in tensors]
    _lay_out(entries, payloads)
    return _pack(WEIGHTS_MAGIC, {"tensors": entries}, payloads)


# ---------------------------------------------------------------------------------------------------------------
# Decoding: every check raises WireError(reason), never anything else.


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} in header")


def _open(blob: bytes, magic: bytes, max_bytes: int | None) -> tuple[dict[str, Any], memoryview]:
    """Check the container and return (header, payload region)."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise WireError("malformed", f"expected bytes, got {type(blob).__name__}")
    data = memoryview(bytes(blob))
    if max_bytes is not None and len(data) > max_bytes:
        raise WireError("too_large", f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    if bytes(data[: len(magic)]) != magic[: len(data)]:
        raise WireError("bad_magic", f"expected magic {magic!r}, got {bytes(data[: len(magic)])!r}")
    if len(data) < _PREFIX.size:
        raise WireError("truncated", f"{len(data)} bytes is shorter than the {_PREFIX.size}-byte prefix")
    _, version, header_len = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise WireError(
            "unsupported_version",
            f"container format {version}, this build reads only format {FORMAT_VERSION}"
            + (" (format 2 ended in a sha256; encode it again with this build)" if version == 2 else ""),
        )
    if _PREFIX.size + header_len + CHECKSUM_BYTES > len(data):
        raise WireError("truncated", f"header of {header_len} bytes does not fit in {len(data)} bytes")
    if header_len > MAX_HEADER_BYTES:
        raise WireError("too_large", f"header of {header_len} bytes exceeds {MAX_HEADER_BYTES}")
    header_end = _PREFIX.size + header_len
    header = _parse_header(data[_PREFIX.size : header_end])
    declared = _declared_payload(header)
    if declared is not None and header_end + declared + CHECKSUM_BYTES > len(data):
        raise WireError("truncated", f"header declares {declared} payload bytes, message has {len(data)} in all")
    body, digest = data[:-CHECKSUM_BYTES], data[-CHECKSUM_BYTES:]
    if checksum(body) != bytes(digest):
        raise WireError("checksum", "XXH3-64 of the message does not match its trailer (damaged in transit or storage)")
    if header is None:
        raise WireError("malformed", "header is not a JSON object")
    return header, data[header_end:-CHECKSUM_BYTES]


def _parse_header(raw: memoryview) -> dict[str, Any] | None:
    try:
        header = json.loads(bytes(raw).decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def _declared_payload(header: dict[str, Any] | None) -> int | None:
    """Total payload bytes the header claims, or None if it does not say clearly."""
    if header is None or not isinstance(header.get("tensors"), list):
        return None
    total = 0
    for entry in header["tensors"]:
        length = entry.get("length") if isinstance(entry, dict) else None
        if not (_is_int(length) and length >= 0):
            return None
        total += length
    return total


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


def _field(header: dict[str, Any], key: str, check: Any, what: str) -> Any:
    value = header.get(key)
    if not check(value):
        raise WireError("malformed", f"header field {key!r} must be {what}, got {value!r}")
    return value


def _tensors(header: dict[str, Any], payload_len: int, *, quantized_ok: bool) -> tuple[TensorEncoding, ...]:
    entries = _field(header, "tensors", lambda v: isinstance(v, list) and len(v) <= MAX_TENSORS, "a list")
    out = []
    offset = 0
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise WireError("malformed", f"tensor {i} is not an object")
        shape = entry.get("shape")
        if not (
            isinstance(shape, list) and len(shape) <= MAX_RANK and all(_is_int(d) and 0 <= d < 2**31 for d in shape)
        ):
            raise WireError("malformed", f"tensor {i} has a bad shape {shape!r}")
        if entry.get("dtype") != "float32":
            raise WireError("malformed", f"tensor {i} has unsupported dtype {entry.get('dtype')!r}")
        bits = entry.get("bits") if quantized_ok else None
        n = math.prod(shape)
        lo: Any
        hi: Any
        if bits is None:
            expected_padded, lo, hi = n, 0.0, 0.0
            expected_length = 4 * n
        else:
            if not (_is_int(bits) and 1 <= bits <= 8):
                raise WireError("malformed", f"tensor {i} has bad bits {bits!r}")
            lo, hi = entry.get("lo"), entry.get("hi")
            if not (_is_number(lo) and _is_number(hi) and lo <= hi):
                raise WireError("malformed", f"tensor {i} has a bad range lo={lo!r} hi={hi!r}")
            expected_padded = padded_size(n)
            expected_length = packed_size(expected_padded, bits)
        padded = entry.get("padded", expected_padded) if quantized_ok else n
        length, start = entry.get("length"), entry.get("offset")
        if padded != expected_padded or length != expected_length or start != offset:
            raise WireError(
                "malformed",
                f"tensor {i} of shape {shape} declares padded={padded!r} offset={start!r} length={length!r}, "
                f"expected {expected_padded}, {offset}, {expected_length}",
            )
        out.append(TensorEncoding(tuple(shape), bits, float(lo), float(hi), expected_padded, offset, expected_length))
        offset += expected_length
    if offset != payload_len:
        raise WireError("malformed", f"tensors declare {offset} payload bytes, message carries {payload_len}")
    return tuple(out)


def decode_update(blob: bytes, *, max_bytes: int | None = None) -> UpdateMessage:
    """Check an uploaded update's container (size, magic, version, checksum, header); WireError if bad."""
    header, payload = _open(blob, UPDATE_MAGIC, max_bytes)
    nonneg = lambda v: _is_int(v) and v >= 0  # noqa: E731
    round_num = _field(header, "round", nonneg, "a non-negative integer")
    base_version = _field(header, "base_version", nonneg, "a non-negative integer")
    seed = _field(header, "seed", lambda v: nonneg(v) and v < 2**64, "a non-negative 64-bit integer")
    rotation_seed = _field(
        header, "rotation_seed", lambda v: v is None or (nonneg(v) and v < 2**64), "null or a non-negative integer"
    )
    weight = _field(header, "weight", lambda v: _is_number(v) and v >= 0, "a non-negative number")
    codec = _field(header, "codec", lambda v: isinstance(v, str) and v in _CODEC_BITS, "a known codec")
    clip_norm = _field(header, "clip_norm", lambda v: v is None or (_is_number(v) and v > 0), "null or positive")
    tensors = _tensors(header, len(payload), quantized_ok=True)
    if (rotation_seed is None) != (_CODEC_BITS[codec] is None):
        raise WireError("malformed", f"codec {codec} with rotation_seed {rotation_seed!r}")
    for i, t in enumerate(tensors):
        if t.bits != _CODEC_BITS[codec]:
            raise WireError("malformed", f"tensor {i} has {t.bits} bits but the codec is {codec}")
    return UpdateMessage(
        round=round_num,
        base_version=base_version,
        weight=float(weight),
        codec=codec,
        seed=seed,
        rotation_seed=rotation_seed,
        clip_norm=None if clip_norm is None else float(clip_norm),
        shapes=tuple(t.shape for t in tensors),
        tensors=tensors,
        payload=payload,
        encoded_size=len(blob),
    )


def decode_weights(blob: bytes, *, max_bytes: int | None = None) -> list[np.ndarray]:
    """The float32 weights of a checkpoint blob (WireError if the blob is bad)."""
    header, payload = _open(blob, WEIGHTS_MAGIC, max_bytes)
    tensors = _tensors(header, len(payload), quantized_ok=False)
    return [
        np.frombuffer(payload[t.offset : t.offset + t.length], dtype="<f4").astype(np.float32).reshape(t.shape)
        for t in tensors
    ]


_CODEC_BITS: dict[str, int | None] = {name: CodecSpec(name).bits for name in CODECS}
