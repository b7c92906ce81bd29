"""device_runtime.credential_store: the credential survives a restart, is dropped on demand, and expires early."""

from __future__ import annotations

from pathlib import Path

from device_runtime._sqlite import DeviceDatabase
from device_runtime.credential_store import CredentialStore, StoredCredential


def test_credential_store_round_trip_and_clear(tmp_path: Path) -> None:
    store = CredentialStore(DeviceDatabase(tmp_path / "d.sqlite"), 0)
    assert store.load() is None
    store.save(StoredCredential("pop", "v1.a.b", 1000.0))
    assert CredentialStore(DeviceDatabase(tmp_path / "d.sqlite"), 0).load() == StoredCredential("pop", "v1.a.b", 1000.0)
    store.clear()
    assert store.load() is None


def test_stored_credential_usable_for_its_population_until_a_minute_before_expiry() -> None:
    cred = StoredCredential("pop", "v1.a.b", 1000.0)
    assert cred.usable("pop", 939.0)
    assert not cred.usable("pop", 940.0)
    assert not cred.usable("other", 0.0)
