"""CoordinatorSettings: the uvicorn stack ``fedkeys serve`` passes explicitly."""

from __future__ import annotations

import pydantic
import pytest

from coordinator import CoordinatorSettings


def test_settings_server_stack_defaults_to_uvloop_and_httptools() -> None:
    s = CoordinatorSettings()
    assert (s.loop, s.http) == ("uvloop", "httptools")


def test_settings_server_stack_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDKEYS_LOOP", "asyncio")
    monkeypatch.setenv("FEDKEYS_HTTP", "h11")
    s = CoordinatorSettings()
    assert (s.loop, s.http) == ("asyncio", "h11")


@pytest.mark.parametrize("field", ["loop", "http"])
def test_settings_server_stack_unknown_value_refused(field: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        CoordinatorSettings(**{field: "tornado"})
