"""device_runtime.emulator: which users become phones, and the settings an emulated fleet refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_runtime.client import CoordinatorError
from device_runtime.emulator import EmulatorConfig, EmulatorError, choose_users, probe
from fedkeys_errors import FedkeysError


def test_choose_users_is_seeded_sorted_and_stable() -> None:
    # The same users as `devices emulate` chose before this module existed, so old --state-dir folders still match.
    assert choose_users(10, 3, seed=0) == [0, 2, 9]
    assert choose_users(10, 3, seed=1) == [2, 3, 7]
    assert choose_users(5, 5, seed=0) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("devices", [0, 11])
def test_choose_users_out_of_range_names_the_population(devices: int) -> None:
    with pytest.raises(EmulatorError, match=f"devices must be between 1 and the 10 training users, got {devices}"):
        choose_users(10, devices, seed=0)


def test_emulator_config_refuses_no_devices(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="devices must be at least 1, got 0"):
        EmulatorConfig(population="p", state_dir=tmp_path, devices=0)
    with pytest.raises(EmulatorError, match="retention must be positive, got 0.0 s"):
        EmulatorConfig(population="p", state_dir=tmp_path, devices=1, retention_seconds=0.0)
    assert issubclass(EmulatorError, FedkeysError)


def test_probe_names_the_url_nobody_answers() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(CoordinatorError, match=f"no coordinator answers at {url} \\(ConnectError") as info:
        probe(url)
    assert info.value.transient is True
