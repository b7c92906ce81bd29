"""Network namespaces standing in for hosts, for tests of several coordinators or simulation workers.

Each :class:`NetnsHost` is a Linux network namespace joined to the root
namespace (where the test runs) by a veth pair on a private /24 of its own
(``10.213.K.0/24``: ``.1`` on the root side, ``.2`` inside), so the test
reaches a process in a host at ``host.address`` and the host reaches the root
namespace at ``host.gateway``. Nothing else is routed: a host sees only the
root namespace's side of its link. PostgreSQL listens on 127.0.0.1 only, so
:func:`tcp_forward` (socat) relays a port of a gateway address to it.

Everything is removed when the context ends (deleting a namespace deletes its
veth pair). Needs root and ``ip``; :func:`netns_unavailable` says why not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class NetnsHost:
    """One namespace: its name, its address, and the root namespace's address on its link."""

    name: str
    address: str
    gateway: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host (``ip netns exec`` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", self.name, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"fkprobe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as err:
        detail = err.stderr.decode(errors="replace").strip() if isinstance(err, subprocess.CalledProcessError) else err
        return f"`ip netns add` failed: {detail}"
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", probe)
    return None


def _used_subnets() -> set[int]:
    out = subprocess.run(["ip", "-o", "-4", "addr"], check=True, capture_output=True, text=True).stdout
    return {int(word.split(".")[2]) for word in out.split() if word.startswith("10.213.")}


@contextlib.contextmanager
def netns_hosts(count: int) -> Iterator[list[NetnsHost]]:
    """``count`` hosts, each linked to the root namespace; all removed at exit, whatever happens."""
    tag = secrets.token_hex(3)
    free = sorted(set(range(1, 255)) - _used_subnets())
    made: list[str] = []
    try:
        hosts = []
        for i in range(count):
            name, k = f"fk{tag}h{i}", free[(int(tag, 16) + 37 * i) % len(free)]
            outside, inside = f"fk{tag}r{i}", f"fk{tag}n{i}"
            _ip("netns", "add", name)
            made.append(name)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", name)
            _ip("addr", "add", f"10.213.{k}.1/24", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", name, "addr", "add", f"10.213.{k}.2/24", "dev", inside)
            _ip("-n", name, "link", "set", inside, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            hosts.append(NetnsHost(name, f"10.213.{k}.2", f"10.213.{k}.1"))
        yield hosts
    finally:
        for name in made:  # the veth pair goes with its namespace
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", name)


def wait_listening(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def tcp_forward(listen: Sequence[tuple[str, int]], target: tuple[str, int]) -> Iterator[None]:
    """Relay each ``(address, port)`` of ``listen`` (root namespace) to ``target`` with socat, until exit."""
    if shutil.which("socat") is None:
        raise RuntimeError("socat is not installed (apt-get install socat)")
    procs = [
        subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind={address},fork,reuseaddr", f"TCP:{target[0]}:{target[1]}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for address, port in listen
    ]
    try:
        for address, port in listen:
            wait_listening(address, port, timeout=10.0)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
