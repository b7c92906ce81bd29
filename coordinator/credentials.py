"""Device credentials: issued once at enrollment, signed by the coordinator, presented at every check-in.

A stand-in for platform attestation (issue 14 point 5, docs/threat-model.md): a
real deployment issues a credential only to a device whose Play Integrity / App
Attest / Key Attestation verdict it verified; here the enrollment route guards
issuance with an enrollment key or a per-address rate limit. What the
credential buys is the same either way: one credential holds at most one
session a round (a unique key in ``fk_sessions``) and checks in at most once
every ``checkin_min_seconds`` (``coordinator.ratelimit``), so a client fills
as many slots as it holds credentials, not as many as it sends requests.

Format (opaque to the device): ``v1.<base64url payload>.<base64url HMAC-SHA256>``,
payload ``{"id": 32 hex, "pop": population, "exp": unix seconds}``. HMAC, not a
signature scheme: the coordinator is both issuer and verifier, and a MAC check
costs microseconds on the check-in path. The key is a coordinator secret (a
key file, else 32 random bytes generated once into ``fk_secrets``); it is
never logged.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import secrets
from pathlib import Path

import sqlalchemy as sa

from coordinator.db import Database, secrets_table
from coordinator.errors import SessionError

_VERSION = "v1"
_CONTEXT = b"fedkeys-credential-v1|"  # domain separation from any other use of the key
KEY_BYTES = 32
_KEY_NAME = "credential_hmac"


@dataclasses.dataclass(frozen=True)
class Credential:
    """What a verified credential says: which enrolled device (random id), for which population, until when."""

    device_id: str  # 32 hex characters, random at enrollment
    population: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()


def issue(key: bytes, population: str, expires_at: float) -> tuple[str, Credential]:
    """A fresh credential (token, what it says); the device id comes from the OS CSPRNG."""
    cred = Credential(device_id=secrets.token_hex(16), population=population, expires_at=float(int(expires_at)))
    payload = json.dumps({"id": cred.device_id, "pop": population, "exp": int(expires_at)}, sort_keys=True).encode()
    return f"{_VERSION}.{_b64(payload)}.{_b64(_mac(key, payload))}", cred


def verify(key: bytes, token: str | None, population: str, now: float) -> Credential:
    """The credential's claims if ``token`` was issued with ``key`` for ``population`` and is not expired.

    Refusals (:class:`SessionError`): ``missing_credential``, ``bad_credential`` (any bit changed, another
    key, not our format), ``wrong_population``, ``credential_expired``. The MAC is checked before the payload
    is parsed, so nothing a forger wrote is ever interpreted.
    """
    if not token:
        raise SessionError("missing_credential", "check-in needs the credential from POST .../enroll")
    version, _, rest = token.partition(".")
    body, _, tag = rest.partition(".")
    try:
        payload, mac = _unb64(body), _unb64(tag)
    except (binascii.Error, ValueError):
        payload, mac = b"", b""
    if version != _VERSION or not hmac.compare_digest(mac, _mac(key, payload)):
        raise SessionError("bad_credential", "the credential was not issued by this coordinator")
    claims = json.loads(payload)
    cred = Credential(device_id=str(claims["id"]), population=str(claims["pop"]), expires_at=float(claims["exp"]))
    if cred.population != population:
        raise SessionError("wrong_population", f"the credential is for population {cred.population!r}")
    if now >= cred.expires_at:
        raise SessionError("credential_expired", f"the credential expired at {cred.expires_at:.0f}; enroll again")
    return cred


def participant(round_id: int, device_id: str) -> str:
    """The per-round pseudonym stored with a session: unique per (round, device), unlinkable across rounds.

    A database reader sees which sessions of one round share a device (none: the key is unique) but cannot
    link a device's sessions across rounds without its credential.
    """
    return hashlib.sha256(f"{round_id}:{device_id}".encode()).hexdigest()[:32]


def load_key(db: Database, key_file: Path | None) -> bytes:
    """The HMAC key: the key file's bytes if given, else the database's (generated once, race-free)."""
    if key_file is not None:
        key = Path(key_file).read_bytes().strip()
        if len(key) < 16:
            raise ValueError(f"credential key file {key_file} holds fewer than 16 bytes")
        return key
    with db.read() as conn:
        found = conn.execute(sa.select(secrets_table.c.value).where(secrets_table.c.name == _KEY_NAME)).scalar()
    if found is not None:
        return bytes(found)
    try:
        with db.write() as conn:
            conn.execute(sa.insert(secrets_table).values(name=_KEY_NAME, value=secrets.token_bytes(KEY_BYTES)))
    except sa.exc.IntegrityError:
        pass  # another worker generated it first: use theirs
    with db.read() as conn:
        return bytes(
            conn.execute(sa.select(secrets_table.c.value).where(secrets_table.c.name == _KEY_NAME)).scalar_one()
        )
