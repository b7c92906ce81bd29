"""Sealing a partial sum to the process that will commit the round: HPKE (RFC 9180) from ``cryptography``.

A coordinator process that added some of a round's updates must hand its
partial sum to the process that commits the round, through the only thing they
share, the database. Written in the clear, a partial of fewer than ``k`` updates
(one, in the worst case) would sit in the WAL, in dead tuples and in backups.
So it is sealed to an ephemeral X25519 public key whose private half exists only
in the committing process's memory (``coordinator.partials``): HPKE base mode,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305. Each seal uses a
fresh ephemeral sender key, so two seals of the same bytes differ, and the
``context`` (round and sender) is bound as HPKE ``info``: a sealed partial
moved to another round or sender does not open.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from coordinator.errors import CoordinatorRefusal

_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
_INFO = b"fedkeys partial sum v1|"


class SealError(CoordinatorRefusal):
    """A sealed partial that does not open (wrong key, wrong context or altered bytes)."""


def new_private_key() -> X25519PrivateKey:
    """A fresh X25519 key from the OS CSPRNG; never serialized."""
    return X25519PrivateKey.generate()


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The 32 raw bytes of ``key``'s public half (what goes into the database)."""
    return key.public_key().public_bytes_raw()


def seal(public_key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt ``plaintext`` to the raw X25519 ``public_key``, bound to ``context``."""
    if len(public_key) != 32:
        raise SealError("bad_key", f"an X25519 public key has 32 bytes, got {len(public_key)}")
    return bytes(_SUITE.encrypt(plaintext, X25519PublicKey.from_public_bytes(public_key), info=_INFO + context))


def open_sealed(key: X25519PrivateKey, sealed: bytes, context: bytes) -> bytes:
    """Decrypt what :func:`seal` made for ``key`` under the same ``context`` (SealError otherwise)."""
    try:
        return bytes(_SUITE.decrypt(sealed, key, info=_INFO + context))
    except (InvalidTag, ValueError) as err:
        raise SealError("does_not_open", f"sealed partial sum of {len(sealed)} bytes does not open: {err!r}") from err
