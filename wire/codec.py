"""The update codec's pure numpy pieces: clip, rotate, quantize, pack.

A device's model delta is large (a few million float32s for the small model) and
uplinks are slow and metered, so updates are compressed before upload. The
scheme is Suresh et al. 2017 ("Distributed Mean Estimation with Limited
Communication"), as used for Gboard (Hard et al. 2018) and described for the
production system by Bonawitz et al. 2019:

1. clip the whole update to an L2 bound (bounds any one device's influence);
2. rotate each tensor with a randomized Hadamard transform ``H D / sqrt(m)``
   (``D`` random signs seeded from the ROUND's rotation seed, ``H`` the Walsh–Hadamard
   matrix, ``m`` the length padded to a power of two; large tensors rotate in
   power-of-two blocks, ``rotation_blocks``, to avoid padding). The rotation is
   orthonormal, so it keeps norms and inverts exactly, and it spreads the mass
   of a vector evenly over its coordinates, which shrinks ``max - min`` and with
   it the quantization error (Suresh et al. 2017, Theorem 3);
3. quantize every coordinate stochastically to one of ``2**bits`` evenly spaced
   levels between the tensor's min and max, rounding up with probability equal
   to the fractional position, so ``E[dequantize(quantize(x))] = x`` and the
   server's average of many updates is unbiased;
4. pack the levels densely, ``bits`` bits each.

Two seeds, two jobs (Suresh et al. 2017 §4: the rotation is shared, the
rounding is private):

- **rotation seed, one per round** (``round_rotation_seed(task_seed, round)``,
  sent to every device of the round as ``Assignment.rotation_seed``): tensor
  ``i``'s block ``b`` (``rotation_blocks``) is rotated with the signs of
  ``block_rotation_seed(rotation_seed, i, b)``. Every device of a round rotates
  with the same orthonormal matrix ``R``, so the server can add the dequantized
  rotated vectors as they arrive and apply ``R^-1`` once per round, to the sum:
  ``sum_k w_k R^-1 y_k = R^-1 sum_k w_k y_k`` (the rotation is linear).
- **rounding seed, one per session** (``Assignment.seed``): tensor ``i``'s
  stochastic rounding draws from ``rounding_draws(rounding_seed, i, n)``. Devices
  round independently, so their quantization errors are independent, zero-mean
  and average out in the round's mean; the codec stays unbiased for any fixed
  rotation (``E[dequantize(quantize(y))] = y`` conditional on ``R``, hence
  ``E[R^-1 dequantize(quantize(R x))] = x``).

``encode_tensor`` / ``rotate_tensor`` / ``unrotate_tensor`` are the per-tensor
steps; everything here is pure and deterministic given its seeds. The random
signs and rounding draws come from ``wire.counter_rng``, a keyed hash that
TensorFlow reproduces bit for bit (``tff_sim.tf_codec``), so the simulation
compresses exactly as phones do. The binary message around it is ``wire.update``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np

from wire.counter_rng import derive_key, random_signs, uniforms

CODECS: tuple[str, ...] = ("float32", "quant8", "quant4", "quant2")
_BITS: dict[str, int | None] = {"float32": None, "quant8": 8, "quant4": 4, "quant2": 2}
ROTATION_SALT = 0x0907A7E  # the signs D of one rotation block
BLOCK_SALT = 0x207A7E  # (rotation seed, tensor, block) -> that block's sign key
ROUNDING_SALT = 0x5170C4  # (rounding seed, tensor) -> that tensor's rounding draws
_ROUND_ROTATION_SALT = 0x0707A7E5  # (task seed, round) -> the round's rotation seed


@dataclasses.dataclass(frozen=True)
class CodecSpec:
    """One of ``CODECS``: plain float32, or rotated stochastic quantization to 8, 4 or 2 bits."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in _BITS:
            raise ValueError(f"unknown codec {self.name!r}; expected one of {', '.join(CODECS)}")

    @property
    def bits(self) -> int | None:
        """Bits per coordinate, ``None`` for float32 (no rotation, no quantization)."""
        return _BITS[self.name]

    @classmethod
    def parse(cls, name: str) -> CodecSpec:
        """The codec called ``name`` (ValueError naming it if unknown)."""
        return cls(name)


def global_l2_norm(tensors: Sequence[np.ndarray]) -> float:
    """The L2 norm of all tensors taken together as one vector (accumulated in float64)."""
    total = 0.0
    for t in tensors:
        flat = np.asarray(t, dtype=np.float64).ravel()
        total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_by_global_norm(tensors: Sequence[np.ndarray], bound: float) -> tuple[list[np.ndarray], float]:
    """Scale all tensors together so their global L2 norm is at most ``bound``.

    Returns (clipped tensors, norm before clipping). Tensors already within the
    bound come back unchanged (as float32 copies), as in
    ``tf.clip_by_global_norm``.
    """
    if not math.isfinite(bound) or bound <= 0:
        raise ValueError(f"clip bound must be a positive finite number, got {bound!r}")
    norm = global_l2_norm(tensors)
    if not math.isfinite(norm):
        raise ValueError(f"cannot clip tensors whose norm is not finite ({norm})")
    scale = 1.0 if norm <= bound else bound / norm
    return [(np.asarray(t, dtype=np.float64) * scale).astype(np.float32) for t in tensors], norm


def padded_length(n: int) -> int:
    """The power of two a vector of ``n`` coordinates is padded to before rotation (1 for n <= 1)."""
    if n < 0:
        raise ValueError(f"length must be non-negative, got {n}")
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def rotation_blocks(n: int, min_block: int = 1024) -> list[tuple[int, int]]:
    """Split ``n`` coordinates into (length, padded length) blocks that each rotate on their own.

    Padding a whole tensor to the next power of two can nearly double it (a
    96 x 768 kernel has 73,728 coordinates and would pad to 131,072), and every
    padded coordinate is uploaded. Taking the blocks from the binary expansion
    of ``n`` (73,728 = 65,536 + 8,192) needs no padding at all; the tail below
    ``min_block`` is one block padded to a power of two, so tiny blocks, which
    would spread little, never occur. Overhead: fewer than ``min_block``
    coordinates per tensor.
    """
    if n < 0 or min_block < 1:
        raise ValueError(f"need n >= 0 and min_block >= 1, got n={n}, min_block={min_block}")
    blocks = []
    rest = n
    while rest >= min_block:
        size = 1 << (rest.bit_length() - 1)
        blocks.append((size, size))
        rest -= size
    if rest or not blocks:
        blocks.append((rest, padded_length(rest)))
    return blocks


def _signs(seed: int, m: int) -> np.ndarray:
    """The random diagonal ``D`` of the rotation: m signs of +-1, float64, (m,).

    Counter-based (``wire.counter_rng``), so TensorFlow draws the same signs (``tff_sim.tf_codec``).
    """
    if seed < 0:
        raise ValueError(f"rotation seed must be non-negative, got {seed}")
    return random_signs(derive_key(seed, ROTATION_SALT), m)


def fwht(x: np.ndarray) -> np.ndarray:
    """The orthonormal fast Walsh–Hadamard transform ``H x / sqrt(m)`` of a power-of-two-length vector.

    O(m log m): log2(m) butterfly stages, each one vectorized over the whole
    vector. The transform is its own inverse.
    """
    y = np.array(x, dtype=np.float64).ravel()  # (m,)
    m = y.size
    if m == 0 or m & (m - 1):
        raise ValueError(f"fwht needs a power-of-two length, got {m}")
    h = 1
    while h < m:
        pairs = y.reshape(-1, 2, h)  # (m / 2h, 2, h): blocks of two halves
        a, b = pairs[:, 0, :], pairs[:, 1, :]
        y = np.stack((a + b, a - b), axis=1).reshape(m)
        h *= 2
    return y / math.sqrt(m)


def hadamard_rotate(x: np.ndarray, seed: int) -> np.ndarray:
    """(n,) -> (m,) with m = ``padded_length(n)``: zero-pad, random signs, then the orthonormal FWHT.

    float64 output; orthonormal, so ``||rotate(x)|| == ||x||``.
    """
    flat = np.asarray(x, dtype=np.float64).ravel()  # (n,)
    m = padded_length(flat.size)
    padded = np.zeros(m, dtype=np.float64)
    padded[: flat.size] = flat
    return fwht(padded * _signs(seed, m))


def hadamard_unrotate(y: np.ndarray, seed: int, n: int) -> np.ndarray:
    """Invert ``hadamard_rotate``: (m,) -> (n,) float64 (``D H / sqrt(m)``, then drop the padding)."""
    flat = np.asarray(y, dtype=np.float64).ravel()  # (m,)
    if flat.size != padded_length(n):
        raise ValueError(f"rotated vector has {flat.size} coordinates, expected {padded_length(n)} for n={n}")
    return (fwht(flat) * _signs(seed, flat.size))[:n]


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be between 1 and 8, got {bits}")


def stochastic_quantize(x: np.ndarray, bits: int, draws: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Unbiased stochastic quantization to ``2**bits`` levels spanning [min(x), max(x)].

    Returns (levels uint8 of x's flattened shape, lo, hi). A coordinate at
    fractional position ``p`` between two levels rounds up when its uniform
    draw in [0, 1) (``draws``, one per coordinate, e.g. ``counter_rng.uniforms``)
    is below ``p``, so ``E[dequantize(levels)] = x`` exactly (Suresh et al. 2017, §3).
    """
    _check_bits(bits)
    flat = np.asarray(x, dtype=np.float64).ravel()  # (n,)
    u = np.asarray(draws, dtype=np.float64).ravel()  # (n,)
    if u.size != flat.size:
        raise ValueError(f"need one uniform draw per coordinate: {flat.size} coordinates, {u.size} draws")
    if flat.size == 0:
        return np.zeros(0, dtype=np.uint8), 0.0, 0.0
    if not np.all(np.isfinite(flat)):
        raise ValueError("cannot quantize a vector with non-finite values")
    lo, hi = float(flat.min()), float(flat.max())
    if hi == lo:
        return np.zeros(flat.size, dtype=np.uint8), lo, hi
    top = (1 << bits) - 1
    scaled = (flat - lo) / (hi - lo) * top  # (n,) in [0, top]; divide first: top / (hi - lo) overflows for tiny ranges
    scaled = np.clip(scaled, 0.0, float(top))
    floor = np.floor(scaled)
    up = u < (scaled - floor)
    levels = np.minimum(floor + up, top).astype(np.uint8)
    return levels, lo, hi


def dequantize(levels: np.ndarray, bits: int, lo: float, hi: float) -> np.ndarray:
    """Levels back to values: ``lo + level * (hi - lo) / (2**bits - 1)``, float64."""
    _check_bits(bits)
    top = (1 << bits) - 1
    return lo + np.asarray(levels, dtype=np.float64) * ((hi - lo) / top)


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` values of ``bits`` bits occupy when packed."""
    _check_bits(bits)
    return (count * bits + 7) // 8


def pack_bits(levels: np.ndarray, bits: int) -> bytes:
    """Pack levels (each < 2**bits) densely, ``bits`` bits each, least significant bit first."""
    _check_bits(bits)
    flat = np.asarray(levels).ravel()  # (count,)
    if flat.size and (flat.min() < 0 or flat.max() >= (1 << bits)):
        raise ValueError(f"levels must lie in [0, {(1 << bits) - 1}] for {bits} bits")
    as_bits = np.unpackbits(flat.astype(np.uint8)[:, None], axis=1, bitorder="little")[:, :bits]  # (count, bits)
    return np.packbits(as_bits.ravel(), bitorder="little").tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of ``pack_bits``: ``count`` levels, uint8 (ValueError if ``data`` has the wrong size)."""
    _check_bits(bits)
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    expected = packed_size(count, bits)
    if len(data) != expected:
        raise ValueError(f"{count} values of {bits} bits need {expected} bytes, got {len(data)}")
    raw = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[: count * bits]
    as_bits = raw.reshape(count, bits).astype(np.uint16)  # (count, bits)
    weights = 1 << np.arange(bits, dtype=np.uint16)  # (bits,)
    return (as_bits @ weights).astype(np.uint8)


def unpack_levels(data: bytes | memoryview, bits: int, count: int) -> np.ndarray:
    """``unpack_bits`` without the bit matrix: a view for 8 bits, shifts and masks for 1, 2 and 4.

    Same result as ``unpack_bits``; the server decodes thousands of updates per
    round, so the common widths avoid the (count, bits) intermediate. (count,) uint8.
    """
    _check_bits(bits)
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    expected = packed_size(count, bits)
    if len(data) != expected:
        raise ValueError(f"{count} values of {bits} bits need {expected} bytes, got {len(data)}")
    raw = np.frombuffer(data, dtype=np.uint8)  # (expected,)
    if bits == 8:
        return raw
    if 8 % bits:
        return unpack_bits(bytes(data), bits, count)
    shifts = np.arange(0, 8, bits, dtype=np.uint8)  # (8 // bits,): least significant first, as pack_bits
    out = (raw[:, None] >> shifts) & np.uint8((1 << bits) - 1)  # (expected, 8 // bits)
    return out.reshape(-1)[:count]


@functools.lru_cache(maxsize=1024)
def round_rotation_seed(task_seed: int, round_number: int) -> int:
    """The rotation seed every device of round ``round_number`` uses (< 2**32): reproducible from (seed, round).

    Not a secret: the rotation only spreads a vector's mass (Suresh et al. 2017);
    the privacy of an update never rested on it.
    """
    if task_seed < 0 or round_number < 0:
        raise ValueError(f"task seed and round must be non-negative, got {task_seed}, {round_number}")
    seq = np.random.SeedSequence([task_seed, _ROUND_ROTATION_SALT, round_number])
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def block_rotation_seed(rotation_seed: int, index: int, block: int) -> int:
    """The sign seed of block ``block`` of tensor ``index`` under a round's rotation seed (a 32-bit key)."""
    if rotation_seed < 0:
        raise ValueError(f"rotation seed must be non-negative, got {rotation_seed}")
    return derive_key(rotation_seed, BLOCK_SALT, index, block)


def rounding_draws(rounding_seed: int, index: int, n: int) -> np.ndarray:
    """The n stochastic-rounding uniforms (float64, [0, 1)) of tensor ``index`` under a session's rounding seed."""
    if rounding_seed < 0:
        raise ValueError(f"rounding seed must be non-negative, got {rounding_seed}")
    return uniforms(derive_key(rounding_seed, ROUNDING_SALT, index), n)


def padded_size(n: int) -> int:
    """Coordinates a tensor of ``n`` coordinates occupies after block rotation (``rotation_blocks``)."""
    return sum(padded for _, padded in rotation_blocks(n))


def rotate_tensor(flat: np.ndarray, rotation_seed: int, index: int) -> np.ndarray:
    """Tensor ``index``'s coordinates (n,) -> rotated (padded_size(n),) float64, block by block."""
    x = np.asarray(flat, dtype=np.float64).ravel()  # (n,)
    parts, start = [], 0
    for b, (length, _) in enumerate(rotation_blocks(x.size)):
        parts.append(hadamard_rotate(x[start : start + length], block_rotation_seed(rotation_seed, index, b)))
        start += length
    return np.concatenate(parts)


def unrotate_tensor(rotated: np.ndarray, rotation_seed: int, index: int, n: int) -> np.ndarray:
    """Inverse of ``rotate_tensor``: (padded_size(n),) -> (n,) float64 (padding coordinates dropped)."""
    y = np.asarray(rotated).ravel()  # (padded,)
    if y.size != padded_size(n):
        raise ValueError(f"rotated tensor has {y.size} coordinates, expected {padded_size(n)} for n={n}")
    parts, start = [], 0
    for b, (length, padded) in enumerate(rotation_blocks(n)):
        seed = block_rotation_seed(rotation_seed, index, b)
        parts.append(hadamard_unrotate(y[start : start + padded], seed, length))
        start += padded
    return np.concatenate(parts)


def encode_tensor(
    flat: np.ndarray, bits: int, *, rotation_seed: int, rounding_seed: int, index: int
) -> tuple[np.ndarray, float, float]:
    """Rotate tensor ``index`` with the round's rotation, then quantize it with the session's rounding.

    Returns (levels uint8 (padded_size(n),), lo, hi); ``dequantize`` then
    ``unrotate_tensor`` with the same rotation seed decodes it.
    """
    rotated = rotate_tensor(flat, rotation_seed, index)  # (padded,)
    return stochastic_quantize(rotated, bits, rounding_draws(rounding_seed, index, rotated.size))
