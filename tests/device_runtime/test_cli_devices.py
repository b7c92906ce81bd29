"""``fedkeys devices emulate``: bad flags are one-line errors; no coordinator, or a failing one, exits 2 in one line."""

from __future__ import annotations

import http.server
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_tools import load_prepared
from fedkeys.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _args(prepared: Path, tmp_path: Path, *extra: str, url: str | None = None) -> list[str]:
    url = url or f"http://127.0.0.1:{_closed_port()}"
    return ["devices", "emulate", "--coordinator", url, "--population", "keyboard",
            "--data", str(prepared), "--state-dir", str(tmp_path / "devices"), "--no-progress", *extra]  # fmt: skip


class _Failing(http.server.BaseHTTPRequestHandler):
    """A coordinator that is up (``/healthz`` 200) but fails every device request (503)."""

    def _answer(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def failing_coordinator() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--devices", "100000"], "devices must be between 1 and the"),
        (["--devices", "2", "--dropout", "2"], "argument --dropout: must be between 0 and 1, got 2"),
        (["--devices", "2", "--speedup", "0"], "argument --speedup: must be a positive number, got 0"),
        (["--devices", "2", "--rounds", "3"], "--rounds needs the admin key"),
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


def test_cli_devices_emulate_no_coordinator_fails_fast(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(prepared, tmp_path, "--devices", "3", "--duration", "60")
    assert main(args) == 2
    err = capsys.readouterr().err
    url = args[args.index("--coordinator") + 1]
    assert err.startswith(f"fedkeys: error: no coordinator answers at {url} (ConnectError") and err.count("\n") == 1
    assert not (tmp_path / "devices").exists()  # refused before any phone was set up


def test_cli_devices_emulate_failing_coordinator_exits_2_and_restarts_cleanly(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], failing_coordinator: str
) -> None:
    args = _args(prepared, tmp_path, "--devices", "3", "--duration", "3", "--speedup", "100", url=failing_coordinator)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "uploads 0" in captured.out and "errors 0 " not in captured.out, captured.out
    assert captured.err.startswith("fedkeys: error: no phone uploaded and ") and captured.err.count("\n") == 1
    assert f"is the coordinator at {failing_coordinator} still running?" in captured.err
    # carries on after a restart: the same devices, their examples not added twice
    # (1 s at 1x: every phone is still backing off, so nothing failed and the exit is 0)
    assert main(_args(prepared, tmp_path, "--devices", "3", "--duration", "1", url=failing_coordinator)) == 0
    train = load_prepared(prepared).train
    with sqlite3.connect(tmp_path / "devices" / "devices.sqlite") as conn:  # every phone's rows in one file
        users = [d for (d,) in conn.execute("SELECT DISTINCT device FROM examples ORDER BY device")]
        assert len(users) == 3
        for user in users:
            stored = conn.execute("SELECT COUNT(*) FROM examples WHERE device = ?", (user,)).fetchone()[0]
            errors = conn.execute("SELECT COUNT(*) FROM events WHERE device = ? AND kind = 'error'", (user,)).fetchone()
            assert stored == len(train.client_examples(user))
            assert errors[0] >= 1
