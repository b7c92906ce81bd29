"""The device's credential from enrollment, kept in its rows of the device database across restarts.

Enrolled once (``POST /v1/populations/{p}/enroll``) and presented at every
check-in, so the coordinator can give this device at most one session a round
(issue 14 point 5). On a real phone the credential would be bound to a
hardware-backed key and issued against a platform attestation verdict
(docs/threat-model.md); here it is an opaque string the coordinator signed.
"""

from __future__ import annotations

import dataclasses
import json

from device_runtime._sqlite import DeviceDatabase


@dataclasses.dataclass(frozen=True)
class StoredCredential:
    population: str
    credential: str
    expires_unix: float

    def usable(self, population: str, now: float, margin_seconds: float = 60.0) -> bool:
        """For this population and not about to expire (enroll again a minute early)."""
        return self.population == population and now < self.expires_unix - margin_seconds


class CredentialStore:
    """Device ``device``'s ``StoredCredential`` in the ``state`` table of the device database."""

    _KEY = "credential"

    def __init__(self, db: DeviceDatabase, device: int) -> None:
        self._db = db
        self.device = int(device)

    def load(self) -> StoredCredential | None:
        rows = self._db.query("SELECT value FROM state WHERE device = ? AND key = ?", (self.device, self._KEY))
        if not rows:
            return None
        data = json.loads(rows[0][0])
        return StoredCredential(str(data["population"]), str(data["credential"]), float(data["expires_unix"]))

    def save(self, credential: StoredCredential) -> None:
        self._db.execute(
            "INSERT INTO state (device, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT(device, key) DO UPDATE SET value = excluded.value",
            (self.device, self._KEY, json.dumps(dataclasses.asdict(credential))),
        )

    def clear(self) -> None:
        self._db.execute("DELETE FROM state WHERE device = ? AND key = ?", (self.device, self._KEY))
