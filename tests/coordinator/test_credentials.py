"""coordinator.credentials: issued credentials verify; any change, another key, population or time refuses."""

from __future__ import annotations

import pytest

from coordinator.credentials import issue, participant, verify
from coordinator.errors import SessionError

KEY = b"k" * 32


def _why(token: str | None, population: str = "pop", now: float = 100.0, key: bytes = KEY) -> str:
    with pytest.raises(SessionError) as err:
        verify(key, token, population, now)
    return err.value.reason


def test_issue_then_verify_round_trips() -> None:
    token, cred = issue(KEY, "pop", 1000.0)
    assert verify(KEY, token, "pop", 999.0) == cred
    assert len(cred.device_id) == 32 and cred.expires_at == 1000.0
    assert issue(KEY, "pop", 1000.0)[1].device_id != cred.device_id  # random device ids


def test_verify_refuses_each_bad_credential_with_its_reason() -> None:
    token, _ = issue(KEY, "pop", 1000.0)
    version, payload, mac = token.split(".")
    assert _why(None) == "missing_credential"
    assert _why("") == "missing_credential"
    assert _why(token, key=b"j" * 32) == "bad_credential"
    assert _why(f"v2.{payload}.{mac}") == "bad_credential"
    assert _why(f"{version}.{payload}x.{mac}") == "bad_credential"
    assert _why(f"{version}.{payload}") == "bad_credential"
    assert _why("garbage") == "bad_credential"
    assert _why(token, population="other") == "wrong_population"
    assert _why(token, now=1000.0) == "credential_expired"


def test_participant_is_per_round() -> None:
    assert participant(1, "a" * 32) == participant(1, "a" * 32)
    assert participant(1, "a" * 32) != participant(2, "a" * 32)
    assert len(participant(1, "a" * 32)) == 32
