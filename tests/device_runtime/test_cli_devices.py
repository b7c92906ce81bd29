"""``fedkeys devices emulate``: bad flags are one-line errors; an unreachable coordinator never crashes it."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from data_tools import load_prepared
from fedkeys.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _args(prepared: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["devices", "emulate", "--coordinator", f"http://127.0.0.1:{_closed_port()}", "--population", "keyboard",
            "--data", str(prepared), "--state-dir", str(tmp_path / "devices"), "--no-progress", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--devices", "100000"], "--devices must be between 1 and the"),
        (["--devices", "2", "--dropout", "2"], "dropout must be in [0, 1]"),
        (["--devices", "2", "--speedup", "0"], "speedup must be a positive number"),
        (["--devices", "2", "--rounds", "3"], "--rounds needs --api-key"),
    ],
)
def test_cli_devices_emulate_bad_flags(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(_args(prepared, tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedkeys: error: ") and message in err and err.count("\n") == 1, err


def test_cli_devices_emulate_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(tmp_path / "nowhere", tmp_path, "--devices", "2")) == 2
    assert capsys.readouterr().err.startswith("fedkeys: error: ")


def test_cli_devices_emulate_survives_an_unreachable_coordinator(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(prepared, tmp_path, "--devices", "3", "--duration", "3", "--speedup", "100")) == 0
    out = capsys.readouterr().out
    assert "uploads 0" in out and "errors 0 " not in out, out
    # carries on after a restart: the same devices, their examples not added twice
    assert main(_args(prepared, tmp_path, "--devices", "3", "--duration", "1")) == 0
    train = load_prepared(prepared).train
    with sqlite3.connect(tmp_path / "devices" / "devices.sqlite") as conn:  # every phone's rows in one file
        users = [d for (d,) in conn.execute("SELECT DISTINCT device FROM examples ORDER BY device")]
        assert len(users) == 3
        for user in users:
            stored = conn.execute("SELECT COUNT(*) FROM examples WHERE device = ?", (user,)).fetchone()[0]
            errors = conn.execute("SELECT COUNT(*) FROM events WHERE device = ? AND kind = 'error'", (user,)).fetchone()
            assert stored == len(train.client_examples(user))
            assert errors[0] >= 1
