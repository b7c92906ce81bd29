"""Suite-wide fixtures and guards.

``prepared``: a tiny deterministic typing corpus, prepared once per session.
``tensorboard_scalars``: the scalars of a TensorBoard log directory, as TensorBoard reads them.

TensorFlow Federated starts a C++ ``worker_binary`` that inherits stdout and
can outlive Python, so a forgotten one hangs ``... | tail`` and CI. Any test
that leaves one running fails the session, and the orphan is killed.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # before gRPC is imported; see fedkeys.cli
# The servers, workers and CLIs the tests start are fresh interpreters. Where the environment forbids bytecode
# (PYTHONDONTWRITEBYTECODE), each of them recompiles every import, tens of seconds on a loaded 2-core machine and
# past a server's health timeout; their bytecode goes to one cache outside the tree instead.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "fedkeys-test-pycache"))

from fedkeys.cli import main
from tff_sim.runtime import running_worker_pids

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _drop_tff_default_context() -> None:
    """Release TFF's default context while the interpreter is still whole.

    Importing TFF installs a context whose service manager would otherwise be
    finalized during interpreter shutdown and print a spurious traceback.
    """
    if "tensorflow_federated" not in sys.modules:
        return
    from tensorflow_federated.python.core.impl.context_stack.set_default_context import set_no_default_context

    set_no_default_context()
    gc.collect()


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _ours_or_orphaned(pid: int) -> bool:
    """A worker this session started (directly or through a CLI subprocess), not another session's."""
    parent = _parent(pid)
    if parent == 1:
        return True  # its driver died without it
    while parent > 1:
        if parent == os.getpid():
            return True
        parent = _parent(parent)
    return False


@pytest.fixture(scope="session", autouse=True)
def no_leftover_tff_workers() -> Iterator[None]:
    before = running_worker_pids()
    yield
    _drop_tff_default_context()
    leftover = sorted(pid for pid in running_worker_pids() - before if _ours_or_orphaned(pid))
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not leftover, f"tests left TFF worker_binary processes running (killed): {leftover}"


_PHRASES = (
    "see you at home tonight",
    "i will call you later",
    "are you coming to the party",
    "thanks for the lovely dinner",
    "running late see you soon",
    "what time is the meeting",
)


def write_corpus(path: Path, users: int = 40) -> Path:
    """Deterministic users typing short, repetitive messages (learnable in seconds)."""
    with path.open("w", encoding="utf-8") as f:
        for u in range(users):
            for m in range(8):
                text = _PHRASES[(u + m) % len(_PHRASES)]
                f.write(json.dumps({"user_id": f"user{u:03d}", "text": text, "timestamp": 1_700_000_000 + m}) + "\n")
    return path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    corpus = write_corpus(root / "logs.jsonl")
    out = root / "prepared"
    assert (
        main(
            [
                "data",
                "prepare",
                "--corpus",
                f"jsonl:{corpus}",
                "--out",
                str(out),
                "--vocab-size",
                "60",
                "--min-words",
                "5",
                "--no-progress",
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="session")
def prepared_with_proxy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same corpus with a third of the users set aside as proxy (public) data for pretraining."""
    root = tmp_path_factory.mktemp("corpus_proxy")
    corpus = write_corpus(root / "logs.jsonl", users=60)
    out = root / "prepared"
    argv = ["data", "prepare", "--corpus", f"jsonl:{corpus}", "--out", str(out), "--vocab-size", "60"]
    assert main([*argv, "--min-words", "5", "--proxy-fraction", "0.3", "--no-progress"]) == 0
    return out


Scalars = dict[str, list[tuple[int, float]]]


@pytest.fixture(scope="session")
def tensorboard_scalars() -> Callable[[Path], Scalars]:
    """Read every scalar of a log directory's one event file: tag -> [(step, value)], checking the format."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    def read(logdir: Path) -> Scalars:
        found: Scalars = {}
        (path,) = logdir.glob("events.out.tfevents.*")
        events = list(EventFileLoader(str(path)).Load())
        assert events[0].file_version == "brain.Event:2"
        for event in events[1:]:
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                found.setdefault(value.tag, []).append((event.step, float(tensor_util.make_ndarray(value.tensor))))
        return found

    return read


class Chromium:
    """Headless Chromium (Debian's ``chromium``) for the page tests: the DOM after scripts ran, or a screenshot."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def _run(self, url: str, *flags: str, script_ms: int = 0) -> str:
        import subprocess
        import tempfile

        # let scripts run that long (not on a page that refreshes itself: it would never settle)
        budget = [f"--virtual-time-budget={script_ms}"] if script_ms else []
        with tempfile.TemporaryDirectory(prefix="fedkeys-chromium-") as profile:
            done = subprocess.run(
                [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 f"--user-data-dir={profile}", *budget, *flags, url],
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
        return done.stdout

    def dump_dom(self, url: str, script_ms: int = 0) -> str:
        return self._run(url, "--dump-dom", script_ms=script_ms)

    def screenshot(self, url: str, path: Path, width: int = 1400, height: int = 1000, script_ms: int = 0) -> Path:
        self._run(
            url, "--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={path}", script_ms=script_ms
        )
        return path


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    """Skips the test when no ``chromium`` is installed (``apt-get install -y chromium``; ``.ci/run`` does)."""
    import shutil

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("headless Chromium is not installed: apt-get install -y chromium")
    return Chromium(binary)
