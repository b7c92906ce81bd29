"""Shamir secret sharing (Shamir 1979) of 32-byte key material over GF(2^521 - 1).

A device splits its self-mask seed and its mask private key into shares for its
neighbours, so the server can rebuild either one from any ``threshold`` of
them when the device (or its input) goes missing, while ``threshold - 1``
shares are uniformly distributed whatever the secret is (Bonawitz et al. 2017,
§3 "Secret Sharing"). The field is the Mersenne prime 2^521 - 1, large enough
for any 256-bit secret. Written by hand: ~40 lines of Lagrange interpolation,
and the ``cryptography`` package offers no secret sharing.

A share is ``(x, y)`` with ``x`` the holder's point (device id + 1, never 0).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping

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
    """The ``length``-byte secret from at least ``threshold`` shares (Lagrange interpolation at 0).

    Uses exactly ``threshold`` of them (the lowest points). SecAggError("unrecoverable")
    with fewer: too few shares determine nothing, so there is nothing to return.
    """
    if threshold < 1:
        raise SecAggError("bad_config", f"threshold must be positive, got {threshold}")
    if len(shares) < threshold:
        raise SecAggError("unrecoverable", f"need {threshold} shares to reconstruct, got {len(shares)}")
    points = sorted(shares)[:threshold]
    secret = 0
    for i in points:
        numerator, denominator = 1, 1
        for j in points:
            if j != i:
                numerator = numerator * (-j) % PRIME
                denominator = denominator * (i - j) % PRIME
        secret = (secret + shares[i] * numerator * pow(denominator, -1, PRIME)) % PRIME
    if secret >= 1 << (8 * length):
        raise SecAggError("unrecoverable", "shares are inconsistent: the interpolated secret is out of range")
    return secret.to_bytes(length, "big")


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
