"""Content-addressed download cache on the device: plans and checkpoints by sha256.

Plans rarely change between rounds and checkpoints are shared by every device
of a round, so a device keeps what it downloaded under its hash and never
fetches it twice (Bonawitz et al. 2019 §4 serve them from a CDN the same way).
Bytes are verified on the way in and again on the way out: a file damaged on
disk is dropped and fetched anew, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from fedkeys_errors import FedkeysError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class HashMismatchError(FedkeysError, ValueError):
    """Downloaded bytes whose sha256 is not the one they were asked for."""

    def __init__(self, expected: str, actual: str, what: str) -> None:
        super().__init__(f"{what}: sha256 {actual} does not match the expected {expected}")
        self.expected = expected
        self.actual = actual


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobCache:
    """Files named by their sha256 in ``directory`` (atomic writes: safe to share between devices)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a hex sha256: {sha256!r}")
        return self.directory / sha256

    def get(self, sha256: str) -> bytes | None:
        """The cached bytes, or None if absent or damaged (a damaged file is removed)."""
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if sha256_hex(data) != sha256:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        return data

    def put(self, sha256: str, data: bytes) -> None:
        """Store verified bytes (HashMismatchError if they are not ``sha256``'s)."""
        actual = sha256_hex(data)
        if actual != sha256:
            raise HashMismatchError(sha256, actual, "blob")
        path = self._path(sha256)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha256}.{os.getpid()}.{id(data)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def fetch(self, sha256: str, download: Callable[[], bytes], what: str) -> tuple[bytes, bool]:
        """(bytes, whether downloaded): from the cache, else ``download()`` verified against ``sha256``."""
        cached = self.get(sha256)
        if cached is not None:
            return cached, False
        data = download()
        actual = sha256_hex(data)
        if actual != sha256:
            raise HashMismatchError(sha256, actual, what)
        self.put(sha256, data)
        return data, True
