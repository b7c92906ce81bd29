"""TFF's C++ runtime, owned: workers that never outlive fedkeys.

TFF runs computations in a C++ executor service, ``worker_binary``. Its
default context starts one lazily, lets it inherit stdout and stops it only in
a finalizer, so it can outlive Python and make ``fedkeys ... | tail`` hang.
Here fedkeys starts the workers itself, with their output in log files and a
parent-death signal (Linux ``PR_SET_PDEATHSIG``) so that even ``kill -9`` of
fedkeys takes them down, and stops them when the ``with`` block ends.

One worker runs a whole round; with several, TFF's mergeable-computation
context splits each round's clients across them. The same code drives
workers on other hosts (``fedkeys sim worker --port P`` there, their
``host:port`` here): TFF's own distributed runtime, not a home-made one.

This uses TFF 0.87 internals (execution contexts, the remote executor); the
project pins ``tensorflow-federated==0.87.0``.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fedkeys_errors import FedkeysError

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_GRPC_OPTIONS = [
    ("grpc.max_message_length", 2_000_000_000),
    ("grpc.max_receive_message_length", 2_000_000_000),
    ("grpc.max_send_message_length", 2_000_000_000),
    # gRPC's default reconnect backoff grows to minutes; a worker that is slow to start
    # (a loaded machine) must not leave the channel waiting long after it listens.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
_READY_TIMEOUT_S = 180.0
_REMOTE_MISSES = 3  # polls (0.5 s apart, 1 s timeout each) a remote worker that had answered may miss


class WorkerDiedError(FedkeysError, RuntimeError):
    """A worker died mid-run: a local worker_binary exited (killed, out of memory, crashed), or a remote one
    stopped accepting connections after it had."""


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where TFF computations run: ``remote`` ``host:port`` workers when given, else ``local_workers`` spawned here."""

    local_workers: int = 1
    remote: tuple[str, ...] = ()
    log_dir: Path | None = None  # the workers' logs; None: a fresh temporary folder (named in the start log line)

    def __post_init__(self) -> None:
        if not self.remote and self.local_workers < 1:
            raise ValueError(f"local_workers must be >= 1, got {self.local_workers}")
        for address in self.remote:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"worker address must be host:port, got {address!r}")


def worker_binary() -> Path:
    """The C++ executor service shipped inside the tensorflow-federated wheel.

    Found without importing TFF (tens of seconds), so ``fedkeys sim worker`` starts at once.
    """
    import importlib.util

    spec = importlib.util.find_spec("tensorflow_federated")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("tensorflow-federated is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "worker_binary"
    if not path.is_file():
        raise RuntimeError(f"tensorflow-federated ships no worker_binary at {path}")
    return path


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_worker(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start one ``worker_binary`` on ``port``, its output in ``log_path``; it dies with this process."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(worker_binary()), f"--port={port}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # safe: workers start before any gRPC thread exists
            close_fds=True,
        )
    logger.info("started TFF worker_binary pid %d on port %d (log %s)", process.pid, port, log_path)
    return process


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    """Block until the local worker accepts connections; a clear error if it dies or never listens."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"TFF worker_binary on port {port} exited with status {process.returncode}: {_tail(log_path)}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("localhost", port), timeout=1.0):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"TFF worker_binary on port {port} did not listen within {_READY_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def _tail(log_path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(empty log)"
    except OSError:
        return f"(no log at {log_path})"


class _Watchdog:
    """Interrupts the driver when a worker dies.

    TFF treats a lost worker as a retryable gRPC error and retries forever, so
    without this a killed or out-of-memory worker hangs the run silently. The
    watchdog polls the local workers' processes, and the remote workers'
    ports (a worker on another host is gone when its port, which accepted
    connections before, refuses or times out ``_REMOTE_MISSES`` times in a
    row), and signals the main thread (which opened the runtime) with SIGUSR1,
    whose handler, installed for the runtime's lifetime, raises
    :class:`WorkerDiedError` naming the worker and its log. Not SIGINT:
    background jobs (``cmd &``, CI runners) start with SIGINT ignored, and the
    interruption would never arrive.
    """

    def __init__(
        self, processes: Sequence[subprocess.Popen[bytes]], logs: Sequence[Path], remote: Sequence[str] = ()
    ) -> None:
        self._processes = list(zip(processes, logs, strict=True))
        self._remote = {address: -1 for address in remote}  # misses in a row; -1: not seen answering yet
        self._stop = threading.Event()
        self._target = threading.get_ident()
        self.death: str | None = None
        self._thread = threading.Thread(target=self._run, name="tff-worker-watchdog", daemon=True)
        self._previous: Any = None
        if (self._processes or self._remote) and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGUSR1, self._raise)
            self._thread.start()

    def _raise(self, signum: int, frame: Any) -> None:
        del signum, frame
        raise WorkerDiedError(self.death or "a TFF worker_binary died")

    def _dead(self) -> str | None:
        for process, log in self._processes:
            if process.poll() is not None:
                return (
                    f"TFF worker_binary pid {process.pid} exited with status {process.returncode} "
                    f"in the middle of the run (log {log}: {_tail(log)})"
                )
        for address, misses in self._remote.items():
            host, _, port = address.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                    self._remote[address] = 0
            except OSError as err:
                if misses >= 0:
                    self._remote[address] = misses + 1
                if self._remote[address] >= _REMOTE_MISSES:
                    return (
                        f"TFF worker at {address} stopped accepting connections in the middle of the run "
                        f"({err}); is `fedkeys sim worker` still running on that host?"
                    )
        return None

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            death = self._dead()
            if death is not None:
                self.death = death
                logger.error("%s", death)
                signal.pthread_kill(self._target, signal.SIGUSR1)
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._previous is not None:
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None


def running_worker_pids() -> set[int]:
    """Pids of every live ``worker_binary`` on this machine (Linux /proc), for leak checks."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")[0]
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if command.endswith(b"worker_binary") and state != "Z":
            pids.add(int(proc.name))
    return pids


def stop_workers(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL whatever is still there after 5 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _executor_factory(address: str, default_num_clients: int, channel: Any) -> Any:
    import tensorflow_federated as tff
    from tensorflow_federated.python.core.impl.executor_stacks import python_executor_stacks
    from tensorflow_federated.python.core.impl.executors import remote_executor, remote_executor_grpc_stub

    stub = remote_executor_grpc_stub.RemoteExecutorGrpcStub(channel)
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not stub.is_ready:
        if time.monotonic() > deadline:
            raise RuntimeError(f"TFF worker at {address} did not answer within {_READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)

    def stack_fn(cardinalities: dict[Any, int]) -> Any:
        if cardinalities.get(tff.CLIENTS) is None:
            cardinalities[tff.CLIENTS] = default_num_clients
        executor = remote_executor.RemoteExecutor(stub)
        executor.set_cardinalities(cardinalities)
        return executor

    return python_executor_stacks.ResourceManagingExecutorFactory(executor_stack_fn=stack_fn)


def _context(addresses: Sequence[str], default_num_clients: int, channels: Sequence[Any]) -> Any:
    import tensorflow_federated as tff
    from tensorflow_federated.python.core.backends.native import compiler
    from tensorflow_federated.python.core.environments.tensorflow_frontend import tensorflow_computation
    from tensorflow_federated.python.core.impl.execution_contexts import (
        async_execution_context,
        sync_execution_context,
    )

    options: dict[str, Any] = {
        "compiler_fn": compiler.desugar_and_transform_to_native,
        "transform_args": tensorflow_computation.transform_args,
        "transform_result": tensorflow_computation.transform_result,
    }
    if len(addresses) == 1:
        return sync_execution_context.SyncExecutionContext(
            _executor_factory(addresses[0], default_num_clients, channels[0]), **options
        )
    contexts = [
        async_execution_context.AsyncExecutionContext(
            executor_fn=_executor_factory(address, default_num_clients, channel), **options
        )
        for address, channel in zip(addresses, channels, strict=True)
    ]
    return tff.backends.native.create_mergeable_comp_execution_context(contexts)


@contextlib.contextmanager
def tff_runtime(config: RuntimeConfig, default_num_clients: int = 0) -> Iterator[None]:
    """Run every TFF computation called inside the block on owned workers.

    Building TFF processes outside the block is fine; calling them
    (``initialize``, ``next``, evaluation) must happen inside it. Local workers
    are stopped on exit, on an exception and on Ctrl-C.
    """
    import grpc
    import portpicker
    from tensorflow_federated.python.core.impl.context_stack import context_stack_impl

    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    channels: list[Any] = []
    watchdog: _Watchdog | None = None
    try:
        if config.remote:
            addresses = list(config.remote)
        else:
            ports = [portpicker.pick_unused_port() for _ in range(config.local_workers)]
            # All workers start before any gRPC channel exists (fork with gRPC threads is unsafe).
            log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="fedkeys-tff-"))
            logs = [log_dir / f"tff_worker_{i}.log" for i in range(len(ports))]
            processes = [start_worker(port, log) for port, log in zip(ports, logs, strict=True)]
            for process, port, log in zip(processes, ports, logs, strict=True):
                wait_until_listening(process, port, log)
            addresses = [f"localhost:{port}" for port in ports]
        channels = [grpc.insecure_channel(address, _GRPC_OPTIONS) for address in addresses]
        watchdog = _Watchdog(processes, logs, config.remote)
        with context_stack_impl.context_stack.install(_context(addresses, default_num_clients, channels)):
            yield
    finally:
        if watchdog is not None:
            watchdog.stop()
        # Closing the channels ends their gRPC polling threads, so a later runtime in this
        # process forks its workers while no gRPC thread is running.
        for channel in channels:
            channel.close()
        stop_workers(processes)


def serve_worker(port: int, log_path: Path | None = None) -> int:
    """Run one worker in the foreground until it exits or Ctrl-C (``fedkeys sim worker``)."""
    if log_path is None:
        process = subprocess.Popen([str(worker_binary()), f"--port={port}"], stdin=subprocess.DEVNULL)
    else:
        process = start_worker(port, log_path)
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop_workers([process])
        return 130
