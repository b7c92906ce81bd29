"""Key agreement: X25519 Diffie–Hellman, then HKDF-SHA256 to a 32-byte seed.

Every pair of neighbouring devices agrees on a secret without the server, which
only relays public keys (Bonawitz et al. 2017, §3: "Diffie–Hellman key
agreement"). The raw X25519 output is not uniform, so it goes through HKDF
(RFC 5869) with a context label; different labels give independent keys from
one agreement (mask seeds vs. share-encryption keys).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from secagg.errors import SecAggError

KEY_BYTES = 32
SEED_BYTES = 32
COMMITMENT_BYTES = 32  # SHA-256 of a self-mask seed (``secagg.client.commit_self_seed``)


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair as raw 32-byte strings (so records stay plain data)."""

    private: bytes = dataclasses.field(repr=False)
    public: bytes

    def __post_init__(self) -> None:
        if len(self.private) != KEY_BYTES or len(self.public) != KEY_BYTES:
            raise ValueError(f"X25519 keys are {KEY_BYTES} bytes, got {len(self.private)} and {len(self.public)}")


def generate_keypair() -> KeyPair:
    """A fresh key pair from the operating system's CSPRNG."""
    key = X25519PrivateKey.generate()
    return keypair_from_private(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


def keypair_from_private(private: bytes) -> KeyPair:
    """The key pair whose private half is ``private`` (used when the server rebuilds a dropped device's key)."""
    if len(private) != KEY_BYTES:
        raise SecAggError("bad_message", f"an X25519 private key is {KEY_BYTES} bytes, got {len(private)}")
    public = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KeyPair(private=private, public=public)


def agree(private: bytes, peer_public: bytes, *, info: bytes) -> bytes:
    """The 32-byte seed both sides derive: ``HKDF(X25519(private, peer_public), info)``.

    Symmetric: ``agree(a.private, b.public) == agree(b.private, a.public)``.
    SecAggError("bad_message") for a malformed or low-order peer key.
    """
    return agree_all(private, [peer_public], info=info)[0]


def agree_all(private: bytes, peer_publics: Sequence[bytes], *, info: bytes) -> list[bytes]:
    """``agree`` with each peer in turn, loading the private key once (the server needs dozens per dropped device)."""
    key = X25519PrivateKey.from_private_bytes(private)
    out = []
    for peer_public in peer_publics:
        if len(peer_public) != KEY_BYTES:
            raise SecAggError("bad_message", f"an X25519 public key is {KEY_BYTES} bytes, got {len(peer_public)}")
        try:
            shared = key.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as exc:  # all-zero output: a low-order point
            raise SecAggError("bad_message", f"key agreement failed: {exc}") from exc
        out.append(HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(shared))
    return out
