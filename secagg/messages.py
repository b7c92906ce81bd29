"""The round's parameters and the messages of the four phases, as frozen records.

The phases of Bonawitz et al. 2017 (§4, Figure 4), with the neighbour graph of
Bell et al. 2020:

0. advertise keys: each device sends two X25519 public keys (``c`` encrypts its
   shares, ``s`` derives pairwise masks) and a hash committing to its self-mask seed ``b``;
1. share keys: each device Shamir-shares its self-mask seed ``b`` and its mask
   private key ``s`` among its neighbours, each share encrypted to its holder
   (AES-GCM under a key agreed with that holder's ``c`` key; the server relays
   ciphertexts it cannot read);
2. masked input: each device uploads its masked quantized update;
3. unmask: each surviving device reveals, for each neighbour, either the share
   of ``b`` (the neighbour's input arrived) or the share of ``s`` (it did not) —
   never both for one device.

Numeric ids are a device's index in the round (0..n-1); its Shamir point is id + 1.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from secagg.errors import SecAggError
from secagg.graph import neighbour_count, neighbours


@dataclasses.dataclass(frozen=True)
class RoundParams:
    """What every party of one secure round knows in advance (public).

    ``threshold``: the fewest devices whose inputs may be revealed as a sum;
    below it the round is abandoned (Bonawitz et al. 2017's t).
    ``share_threshold``: Shamir threshold inside a neighbourhood (0 = a majority
    of the neighbours, ``k // 2 + 1``, Bell et al. 2020 §4).
    ``degree``: neighbours per device (0 = ``graph.neighbour_count(n)``).
    """

    round: int
    round_seed: int
    n: int
    length: int
    threshold: int
    degree: int = 0
    share_threshold: int = 0

    def __post_init__(self) -> None:
        if self.round < 0 or self.round_seed < 0:
            raise ValueError(f"RoundParams round/round_seed must be non-negative, got {self.round}, {self.round_seed}")
        if self.n < 2:
            raise ValueError(f"RoundParams.n must be at least 2 devices, got {self.n!r}")
        if self.length < 1:
            raise ValueError(f"RoundParams.length must be positive, got {self.length!r}")
        if not 2 <= self.threshold <= self.n:
            raise ValueError(f"RoundParams.threshold must be between 2 and n={self.n}, got {self.threshold!r}")
        if self.degree < 0 or self.degree % 2 or self.degree > self.n:
            raise ValueError(f"RoundParams.degree must be even, in [0, n], got {self.degree!r}")
        k = self.k
        if not 0 <= self.share_threshold <= k:
            raise ValueError(f"RoundParams.share_threshold must be in [0, k={k}], got {self.share_threshold!r}")

    @property
    def k(self) -> int:
        """The neighbour count actually used (n - 1 when the graph is complete)."""
        wanted = self.degree or neighbour_count(self.n)
        wanted += wanted % 2
        return min(wanted, self.n - 1)

    @property
    def t_share(self) -> int:
        """The Shamir threshold in effect."""
        return self.share_threshold or self.k // 2 + 1

    @functools.cached_property
    def graph(self) -> dict[int, frozenset[int]]:
        """Every device's neighbours (derived from the public round seed)."""
        k = self.k if self.k % 2 == 0 or self.k < self.n - 1 else self.k + 1
        return neighbours(range(self.n), k, self.round_seed)

    def check_device(self, device: int) -> None:
        """SecAggError("bad_message") unless ``device`` is an id of this round."""
        if not 0 <= device < self.n:
            raise SecAggError("bad_message", f"device {device} is not in this round (0..{self.n - 1})")

    def aad(self, source: int, target: int) -> bytes:
        """Associated data binding a share ciphertext to its round, sender and receiver."""
        return b"fedkeys-secagg" + self.round.to_bytes(8, "big") + source.to_bytes(4, "big") + target.to_bytes(4, "big")


@dataclasses.dataclass(frozen=True)
class AdvertiseKeys:
    """Phase 0 upload: the device's two public keys and a commitment to its self-mask seed.

    ``b_commitment`` (``secagg.client.commit_self_seed``, SHA-256) binds the seed
    ``b`` before any share of it exists, so the server can tell a correctly
    rebuilt ``b`` from one that a wrong share corrupted; the ``s`` key needs no
    extra commitment: its public half is ``s_public``.
    """

    device: int
    c_public: bytes
    s_public: bytes
    b_commitment: bytes


@dataclasses.dataclass(frozen=True)
class EncryptedShare:
    """Phase 1: one device's shares of ``b`` and ``s`` for one neighbour, AES-GCM ciphertext (nonce first)."""

    source: int
    target: int
    ciphertext: bytes


@dataclasses.dataclass(frozen=True)
class MaskedInput:
    """Phase 2 upload: the masked vector, ``(length,) uint32``."""

    device: int
    y: np.ndarray


@dataclasses.dataclass(frozen=True)
class UnmaskRequest:
    """Phase 3 download: which devices' inputs arrived (survivors) and which did not (dropped)."""

    survivors: frozenset[int]
    dropped: frozenset[int]


@dataclasses.dataclass(frozen=True)
class UnmaskResponse:
    """Phase 3 upload: shares of survivors' self seeds and of dropped devices' mask keys, keyed by owner."""

    device: int
    self_shares: dict[int, int]
    key_shares: dict[int, int]
