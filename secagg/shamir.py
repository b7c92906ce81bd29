"""Shamir secret sharing (Shamir 1979) of 32-byte key material over GF(2^521 - 1).

A device splits its self-mask seed and its mask private key into shares for its
neighbours, so the server can rebuild either one from any ``threshold`` of
them when the device (or its input) goes missing, while ``threshold - 1``
shares are uniformly distributed whatever the secret is (Bonawitz et al. 2017,
§3 "Secret Sharing"). The field is the Mersenne prime 2^521 - 1, large enough
for any 256-bit secret. Written by hand: ~70 lines of Lagrange interpolation,
and the ``cryptography`` package offers no secret sharing.

A share is ``(x, y)`` with ``x`` the holder's point (device id + 1, never 0).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence

from secagg.errors import SecAggError

PRIME = (1 << 521) - 1
SHARE_BYTES = 66  # 521 bits


def split(secret: bytes, points: Iterable[int], threshold: int) -> dict[int, int]:
    """Shares ``{x: f(x)}`` of ``secret`` for each point, any ``threshold`` of which rebuild it.

    ``f`` is a random polynomial of degree ``threshold - 1`` with ``f(0) = secret``;
    coefficients come from the OS CSPRNG (``secrets``), never from a seeded generator.
    """
    xs = sorted(set(points))
    if len(secret) > 64:
        raise SecAggError("bad_config", f"secrets are at most 64 bytes, got {len(secret)}")
    if not 1 <= threshold <= len(xs):
        raise SecAggError("bad_config", f"threshold must be between 1 and {len(xs)} points, got {threshold}")
    if xs[0] <= 0 or xs[-1] >= PRIME:
        raise SecAggError("bad_config", f"share points must lie in [1, p), got {xs[0]}..{xs[-1]}")
    coefficients = [int.from_bytes(secret, "big")] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = {}
    for x in xs:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y
    return shares


def reconstruct(shares: Mapping[int, int], threshold: int, *, length: int = 32) -> bytes:
    """The ``length``-byte secret from at least ``threshold`` shares, refusing shares that disagree.

    Interpolates the degree ``threshold - 1`` polynomial through the ``threshold``
    lowest points and evaluates it at 0 (the secret) and at every other point: each
    extra share must lie on the same polynomial, else SecAggError("bad_shares").
    Without that check one holder's share off by one would rebuild a wrong secret
    and, silently, a garbage sum (issue 14); with ``s > threshold`` shares it catches
    any wrong share among them as long as ``threshold`` of them are right (the
    Reed–Solomon view of Shamir sharing, McEliece and Sarwate 1981). With exactly
    ``threshold`` shares nothing can be checked here: callers also compare the
    secret with a commitment (``secagg.server``). SecAggError("unrecoverable")
    with fewer than ``threshold``: too few shares determine nothing.
    """
    if threshold < 1:
        raise SecAggError("bad_config", f"threshold must be positive, got {threshold}")
    if len(shares) < threshold:
        raise SecAggError("unrecoverable", f"need {threshold} shares to reconstruct, got {len(shares)}")
    ordered = sorted(shares)
    base, extra = ordered[:threshold], ordered[threshold:]
    weights = _inverse_all([_denominator(x, base) for x in base])  # 1 / prod_{j != i} (x_i - x_j)
    scaled = [shares[x] * w % PRIME for x, w in zip(base, weights, strict=True)]  # y_i / prod_{j != i} (x_i - x_j)
    secret = _evaluate(0, base, scaled)
    for x in extra:
        if _evaluate(x, base, scaled) != shares[x]:
            raise SecAggError("bad_shares", f"the share at point {x} does not lie on the polynomial of the others")
    if secret >= 1 << (8 * length):
        raise SecAggError("bad_shares", "shares are inconsistent: the interpolated secret is out of range")
    return secret.to_bytes(length, "big")


def _denominator(xi: int, points: Sequence[int]) -> int:
    """``prod_{j != i} (x_i - x_j) mod p``; the points are small, so the product is exact until the one reduction."""
    out = 1
    for xj in points:
        if xj != xi:
            out *= xi - xj
    return out % PRIME


def _inverse_all(values: Sequence[int]) -> list[int]:
    """Every value's inverse mod p with one modular exponentiation (Montgomery's batch inversion)."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    inverse = pow(prefix[-1], -1, PRIME)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inverse * prefix[i] % PRIME
        inverse = inverse * values[i] % PRIME
    return out


def _evaluate(x: int, points: Sequence[int], scaled: Sequence[int]) -> int:
    """The interpolating polynomial at ``x``: ``sum_i scaled_i prod_{j != i} (x - x_j) mod p`` (Lagrange form).

    The products are of small integers (prefix and suffix products, exact), so a
    point costs ``t`` multiplications by a field element and one reduction.
    """
    t = len(points)
    prefix = [1] * (t + 1)
    suffix = [1] * (t + 1)
    for i in range(t):
        prefix[i + 1] = prefix[i] * (x - points[i])
        suffix[t - 1 - i] = suffix[t - i] * (x - points[t - 1 - i])
    return sum(y * (p * q) for y, p, q in zip(scaled, prefix, suffix[1:], strict=False)) % PRIME  # small ints first


def share_to_bytes(value: int) -> bytes:
    """A share's y value as ``SHARE_BYTES`` big-endian bytes."""
    return value.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    """Inverse of ``share_to_bytes`` (SecAggError for a wrong size or a value outside the field)."""
    if len(data) != SHARE_BYTES:
        raise SecAggError("bad_message", f"a share is {SHARE_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise SecAggError("bad_message", "a share lies outside the field")
    return value
