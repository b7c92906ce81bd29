"""The simulation beyond one machine: ``fedkeys sim worker`` on two hosts (network namespaces), the driver here.

Issue 15 point 6. Each worker runs in a namespace of its own, reached over its
veth link; ``fedkeys sim run --workers A:P,B:P`` runs in the root namespace.
The model is the one a local run with the same seed ends at, and a worker
killed on its host ends the run with :class:`WorkerDiedError`, not a hang.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from netns_hosts import NetnsHost, netns_hosts, netns_unavailable, wait_listening

from fedkeys.cli import main
from tff_sim.runtime import RuntimeConfig, WorkerDiedError
from tff_sim.simulation import run_simulation

pytest.importorskip("tensorflow_federated")
_NETNS = netns_unavailable()
pytestmark = pytest.mark.skipif(_NETNS is not None, reason=f"no network namespaces to stand in for hosts: {_NETNS}")

PORT = 8765
_Workers = tuple[list[NetnsHost], list[subprocess.Popen[bytes]]]
_FLAGS = ["--rounds", "2", "--clients-per-round", "4", "--local-epochs", "1", "--client-lr", "1.0",
          "--batch-size", "8", "--model", "tiny", "--seed", "5", "--eval-every", "100", "--checkpoint-every", "1",
          "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[NetnsHost], list[subprocess.Popen[bytes]]]]:
    """A ``fedkeys sim worker`` on each of two hosts, listening on ``host.address:PORT`` (shared by this module's
    tests; the last one kills the first host's worker)."""
    tmp_path = tmp_path_factory.mktemp("workers")
    with netns_hosts(2) as hosts:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for host in hosts:
                cmd = [sys.executable, "-m", "fedkeys.cli", "sim", "worker", "--port", str(PORT),
                       "--log", str(tmp_path / f"{host.name}.log")]  # fmt: skip
                procs.append(subprocess.Popen(host.command(cmd), start_new_session=True))
            for host in hosts:
                wait_listening(host.address, PORT, timeout=120)
            yield hosts, procs
        finally:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the worker and its worker_binary
                proc.wait(timeout=30)


def _weights(run: Path) -> list[np.ndarray]:
    with np.load(run / "checkpoint" / "weights.npz") as data:
        return [data[k] for k in sorted(data.files) if k.startswith("w")]


def test_sim_run_on_two_worker_hosts_ends_at_the_local_model(workers: _Workers, prepared: Path, tmp_path: Path) -> None:
    hosts, _ = workers
    remote = ",".join(f"{h.address}:{PORT}" for h in hosts)
    assert main(["sim", "run", "--data", str(prepared), "--out", str(tmp_path / "hosts"), "--workers", remote,
                 *_FLAGS]) == 0  # fmt: skip
    assert main(["sim", "run", "--data", str(prepared), "--out", str(tmp_path / "local"), *_FLAGS]) == 0
    for a, b in zip(_weights(tmp_path / "hosts"), _weights(tmp_path / "local"), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_sim_run_worker_killed_on_its_host_is_an_error_not_a_hang(
    workers: _Workers, prepared: Path, tmp_path: Path
) -> None:
    hosts, procs = workers
    from tff_sim.config import SimConfig

    config = SimConfig(rounds=200, clients_per_round=4, batch_size=8, preset="tiny", seed=5, eval_every=1000,
                       checkpoint_every=1)  # fmt: skip
    out = tmp_path / "run"

    def kill_after_the_first_round() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # a round's row under the header: the run is in full swing
            with contextlib.suppress(OSError):
                if len((out / "metrics.csv").read_text().splitlines()) >= 2:
                    break
            time.sleep(0.2)
        os.killpg(procs[0].pid, signal.SIGKILL)  # `fedkeys sim worker` and its worker_binary, on host A

    killer = threading.Thread(target=kill_after_the_first_round, daemon=True)
    killer.start()
    runtime = RuntimeConfig(remote=tuple(f"{h.address}:{PORT}" for h in hosts), log_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(WorkerDiedError, match=rf"TFF worker at {hosts[0].address}:{PORT} stopped accepting"):
        run_simulation(prepared, out, config, runtime, progress=False)
    killer.join()
    assert time.monotonic() - started < 300
