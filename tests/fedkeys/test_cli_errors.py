"""Issue 17.1: every failure the newcomer met is one ``fedkeys: error: ...`` line and exit 2.

Most cases run ``.venv/bin/fedkeys`` in a subprocess: they fail before any heavy import, so each
takes about a second, and the subprocess shows exactly what a user sees on the terminal.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fresh_interpreter import run_fresh

from data_tools import load_prepared
from fedkeys.cli import main
from fedkeys_errors import FedkeysError

FEDKEYS = Path(sys.executable).parent / "fedkeys"


def _fedkeys(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str]:
    """Exit status and stderr of ``fedkeys ARGS`` (without FEDKEYS_* from the test's environment)."""
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEYS_")}
    result = subprocess.run(
        [str(FEDKEYS), *args], capture_output=True, text=True, timeout=120, env=base | (env or {}), cwd=cwd
    )
    return result.returncode, result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_serve_missing_sqlite_dir_is_one_line() -> None:
    code, err = _fedkeys("serve", "--db", "sqlite:////no/such/dir/x.db", "--port", str(_closed_port()))
    assert code == 2
    assert (
        err
        == "fedkeys: error: --db sqlite:////no/such/dir/x.db: cannot open the database: unable to open database file\n"
    )


def test_cli_serve_unknown_postgres_role_is_one_line() -> None:
    url = "postgresql://no_such_role_fk@127.0.0.1:5432/test"
    code, err = _fedkeys("serve", "--db", url, "--port", str(_closed_port()))
    assert code == 2
    assert err.startswith(f"fedkeys: error: --db {url}: cannot open the database: ") and err.count("\n") == 1
    if "Connection refused" not in err:  # PostgreSQL is running: it names the role
        assert err.endswith('FATAL:  role "no_such_role_fk" does not exist\n')


def test_cli_serve_negative_port_is_one_line() -> None:
    code, err = _fedkeys("serve", "--port", "-1")
    assert code == 2
    assert err == (
        "fedkeys: error: fedkeys serve: argument --port: must be a TCP port between 0 and 65535, got -1 "
        "(see fedkeys serve --help)\n"
    )


def test_cli_serve_busy_port_fails_before_startup_and_before_the_db(busy_port: int, tmp_path: Path) -> None:
    db = tmp_path / "coordinator.db"
    code, err = _fedkeys("serve", "--db", f"sqlite:///{db}", "--port", str(busy_port), "--api-key-file", "/dev/null")
    assert (code, err) == (2, "fedkeys: error: --api-key-file /dev/null: the file is empty\n")
    (tmp_path / "key").write_text("k")
    code, err = _fedkeys(
        "serve", "--db", f"sqlite:///{db}", "--port", str(busy_port), "--api-key-file", str(tmp_path / "key")
    )
    assert code == 2
    assert err == f"fedkeys: error: --port {busy_port}: 127.0.0.1:{busy_port} is already in use\n"
    assert "Application startup complete" not in err
    assert not db.exists()


def test_cli_sim_run_zero_rounds_names_the_flag() -> None:
    code, err = _fedkeys("sim", "run", "--data", "nowhere", "--out", "nowhere", "--rounds", "0")
    assert code == 2
    assert err == (
        "fedkeys: error: fedkeys sim run: argument --rounds: must be at least 1, got 0 (see fedkeys sim run --help)\n"
    )


def test_cli_central_train_zero_epochs_names_the_flag() -> None:
    code, err = _fedkeys("central", "train", "--data", "nowhere", "--out", "nowhere", "--epochs", "0")
    assert code == 2
    assert err == (
        "fedkeys: error: fedkeys central train: argument --epochs: must be at least 1, got 0 "
        "(see fedkeys central train --help)\n"
    )


def test_cli_flags_are_checked_before_tensorflow_is_imported() -> None:
    """The check runs in the parser: TensorFlow is not even loaded when the error is printed."""
    code = (
        "from fedkeys.cli import main\n"
        "print(main(['central', 'train', '--data', 'x', '--out', 'y', '--epochs', '0']))\n"
    )
    run = run_fresh(code)
    assert [run.stdout, run.imported] == ["2\n", []]


def test_cli_create_task_goal_zero_is_refused_before_any_upload(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"  # nothing listens: an upload would be a connection error
    args = ("admin", "create-task", "--coordinator", url, "--population", "kb", "--plan", str(tmp_path),
            "--checkpoint", str(tmp_path))  # fmt: skip
    code, err = _fedkeys(*args, "--goal", "0", env={"FEDKEYS_API_KEY": "k"})
    assert code == 2
    assert err == (
        "fedkeys: error: fedkeys admin create-task: argument --goal: must be at least 1, got 0 "
        "(see fedkeys admin create-task --help)\n"
    )


def test_cli_create_task_incoherent_settings_are_refused_before_any_upload(tmp_path: Path) -> None:
    """Settings only TaskCreate can judge together (min reports above the goal) are checked before the upload."""
    url = f"http://127.0.0.1:{_closed_port()}"
    args = ("admin", "create-task", "--coordinator", url, "--population", "kb", "--plan", str(tmp_path),
            "--checkpoint", str(tmp_path), "--goal", "3", "--min-reports", "5")  # fmt: skip
    code, err = _fedkeys(*args, env={"FEDKEYS_API_KEY": "k"})
    assert code == 2
    assert err == "fedkeys: error: task settings: Value error, min_reports 5 > goal_count 3\n"


def test_cli_admin_missing_api_key_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-key"
    code, err = _fedkeys("admin", "status", "--api-key-file", str(missing))
    assert code == 2
    assert err == f"fedkeys: error: --api-key-file {missing}: cannot read it (No such file or directory)\n"


def test_cli_admin_connection_error_names_the_url() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, err = _fedkeys("admin", "status", "--coordinator", url, env={"FEDKEYS_API_KEY": "k"})
    assert code == 2
    assert err.startswith(f"fedkeys: error: cannot reach the coordinator at {url} (GET {url}/v1/admin/populations: ")
    assert err.count("\n") == 1


def test_cli_devices_emulate_without_coordinator_fails_fast(prepared: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, err = _fedkeys("devices", "emulate", "--coordinator", url, "--population", "kb", "--data", str(prepared),
                         "--devices", "2", "--duration", "600", "--no-progress", cwd=tmp_path)  # fmt: skip
    assert code == 2
    assert err.startswith(f"fedkeys: error: no coordinator answers at {url} (ConnectError: ") and err.count("\n") == 1


def test_cli_sim_run_more_clients_than_users_is_refused(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = load_prepared(prepared).train.num_clients
    args = ["sim", "run", "--data", str(prepared), "--out", str(tmp_path / "s"), "--clients-per-round", "100000"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"fedkeys: error: --clients-per-round 100000 is more than the {users} training users of {prepared}\n"
    )
    assert not (tmp_path / "s").exists()


def test_cli_internal_error_shows_traceback_and_exits_1() -> None:
    """A bug (here a ValueError, as from numpy) is not dressed up as the user's mistake."""
    code = (
        "import sys\n"
        "import fedkeys._cli_suggest as area\n"
        "def broken(_args):\n"
        "    raise ValueError('an internal numpy bug')\n"
        "area._cmd_suggest = broken\n"
        "from fedkeys.cli import main\n"
        "sys.exit(main(['suggest', '--model', 'x', 'hello']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith("ValueError: an internal numpy bug\n")
    assert "fedkeys: error" not in result.stderr


def test_cli_domain_errors_share_one_root() -> None:
    from coordinator.commit_checks import CommitRefused
    from coordinator.errors import CoordinatorRefusal
    from data_tools import CorpusError
    from device_runtime import CoordinatorError, HashMismatchError, LiteRTModelError
    from device_runtime._sqlite import DeviceDatabaseError
    from device_runtime.emulator import EmulatorError
    from fedkeys.admin_client import AdminError
    from fedkeys.demo_coordinator import CoordinatorProcessError
    from fedkeys.parity import ParityError
    from fedkeys.report_html import ReportError
    from fedkeys.run_dir import RunDirError
    from model import CheckpointError, ConversionError
    from secagg.errors import SecAggError
    from tff_sim.runtime import WorkerDiedError
    from tff_sim.schedules import ScheduleError
    from tff_sim.simulation import SimulationError
    from wire.manifest import ManifestError
    from wire.update import WireError

    errors = [CoordinatorRefusal, CommitRefused, ScheduleError, CorpusError, CoordinatorError, HashMismatchError,
              LiteRTModelError, EmulatorError, AdminError, CoordinatorProcessError, ParityError, RunDirError,
              CheckpointError, ConversionError, SecAggError, WorkerDiedError, SimulationError, ManifestError,
              WireError, DeviceDatabaseError, ReportError]  # fmt: skip
    assert [e.__name__ for e in errors if not issubclass(e, FedkeysError)] == []
    assert len({e.__name__ for e in errors}) == len(errors)  # one name per class
