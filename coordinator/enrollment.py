"""Enrollment and the check-in's credential gate: who gets a credential, and how often a credential checks in.

The enrollment guard is the part a real deployment replaces (docs/threat-model.md):
here either an enrollment key shared with the app build (``X-Enroll-Key``;
configured with ``enroll_key_file``) or, without one, open enrollment limited
per client address by a token bucket. A deployment verifies a platform
attestation verdict instead (Play Integrity on Android, App Attest on iOS,
Android Key Attestation of a hardware-backed key) and issues one credential per
attested device install.
"""

from __future__ import annotations

import dataclasses
import hmac

from coordinator import credentials
from coordinator.credentials import Credential
from coordinator.errors import SessionError
from coordinator.ratelimit import MinInterval, TokenBucket, Verdict


@dataclasses.dataclass(frozen=True)
class EnrollmentConfig:
    """Defaults live in ``coordinator.settings``."""

    enroll_key: bytes | None  # None: open enrollment, rate-limited per address
    enroll_burst: int
    enroll_per_minute: float
    credential_ttl_seconds: float
    checkin_min_seconds: float

    def __post_init__(self) -> None:
        if not self.credential_ttl_seconds > 0 or self.checkin_min_seconds < 0:
            raise ValueError(
                f"need credential_ttl_seconds > 0 and checkin_min_seconds >= 0, got "
                f"{self.credential_ttl_seconds}, {self.checkin_min_seconds}"
            )


class Enrollment:
    """Issues credentials behind the guard, verifies them at check-in and rate-limits each one (in memory)."""

    def __init__(self, key: bytes, config: EnrollmentConfig) -> None:
        self._key = key
        self.config = config
        self._per_address = TokenBucket(config.enroll_burst, config.enroll_per_minute)
        self._checkins = MinInterval(config.checkin_min_seconds)

    def admit_enrollment(self, presented_key: str | None, address: str, now: float) -> None:
        """The guard: the enrollment key if one is configured, else the per-address limit (SessionError)."""
        expected = self.config.enroll_key
        if expected is not None:
            if presented_key is None or not hmac.compare_digest(presented_key.encode(), expected):
                raise SessionError("bad_enroll_key", "enrollment needs a valid X-Enroll-Key header")
            return
        verdict = self._per_address.attempt(address, now)
        if not verdict.allowed:
            raise SessionError(
                "enroll_rate", f"too many enrollments from this address; retry in {verdict.retry_after:.0f} s"
            )

    def issue(self, population: str, now: float) -> tuple[str, Credential]:
        return credentials.issue(self._key, population, now + self.config.credential_ttl_seconds)

    def check(self, token: str | None, population: str, now: float) -> tuple[Credential, Verdict]:
        """The credential (SessionError if invalid) and whether it may check in now (no database access)."""
        cred = credentials.verify(self._key, token, population, now)
        return cred, self._checkins.attempt(cred.device_id, now)
