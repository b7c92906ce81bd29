"""The owned TFF runtime: computations run, and no worker_binary survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tff_sim.runtime import (
    RuntimeConfig,
    WorkerDiedError,
    running_worker_pids,
    tff_runtime,
    wait_until_listening,
)

tff = pytest.importorskip("tensorflow_federated")


@pytest.fixture(scope="module")
def client_sum() -> object:
    @tff.federated_computation(tff.FederatedType(np.int32, tff.CLIENTS))
    def total(values: object) -> object:
        return tff.federated_sum(values)

    return total


@pytest.mark.parametrize("workers", [1, 2])
def test_tff_runtime_runs_and_stops_its_workers(client_sum: object, workers: int, tmp_path: Path) -> None:
    before = running_worker_pids()
    with tff_runtime(RuntimeConfig(local_workers=workers, log_dir=tmp_path)):
        assert len(running_worker_pids() - before) == workers
        assert client_sum([1, 2, 3, 4]) == 10  # type: ignore[operator]
    assert running_worker_pids() == before
    assert len(list(tmp_path.glob("tff_worker_*.log"))) == workers


def test_tff_runtime_exception_still_stops_workers(client_sum: object, tmp_path: Path) -> None:
    before = running_worker_pids()
    with pytest.raises(RuntimeError, match="boom"), tff_runtime(RuntimeConfig(log_dir=tmp_path)):
        client_sum([1])  # type: ignore[operator]
        raise RuntimeError("boom")
    assert running_worker_pids() == before


def test_tff_runtime_piped_output_does_not_hang(tmp_path: Path) -> None:
    # The failure this guards against: a worker holding the pipe keeps `... | tail` waiting forever.
    script = textwrap.dedent(
        f"""
        import numpy as np, tensorflow_federated as tff
        from pathlib import Path
        from tff_sim.runtime import RuntimeConfig, tff_runtime
        comp = tff.federated_computation(lambda v: tff.federated_sum(v), tff.FederatedType(np.int32, tff.CLIENTS))
        with tff_runtime(RuntimeConfig(log_dir=Path({str(tmp_path)!r}))):
            print("sum", comp([2, 3]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sum 5" in result.stdout


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"local_workers": 0}, "local_workers"),
        ({"remote": ("nohost",)}, "host:port"),
        ({"remote": ("h:70000",)}, "host:port"),
    ],
)
def test_runtime_config_bad_values_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuntimeConfig(**kwargs)  # type: ignore[arg-type]


def test_wait_until_listening_worker_that_dies_is_named(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("E0000 bind: address already in use\n")
    process = subprocess.Popen(["false"])
    process.wait()
    with pytest.raises(RuntimeError, match=r"exited with status 1: E0000 bind: address already in use"):
        wait_until_listening(process, 1, log)


def test_tff_runtime_worker_killed_mid_run_is_an_error_not_a_hang(client_sum: object, tmp_path: Path) -> None:
    # TFF retries a lost worker forever; the runtime's watchdog turns that into a clear error.
    before = running_worker_pids()
    with (
        pytest.raises(WorkerDiedError, match=r"exited with status -9 in the middle of the run"),
        tff_runtime(RuntimeConfig(log_dir=tmp_path)),
    ):
        assert client_sum([1, 2]) == 3  # type: ignore[operator]
        for pid in running_worker_pids() - before:
            os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            client_sum([1, 2])  # type: ignore[operator]
    assert running_worker_pids() - before == set()
