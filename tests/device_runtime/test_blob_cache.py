"""device_runtime.blob_cache: verified on the way in and out."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from device_runtime.blob_cache import BlobCache, HashMismatchError

DATA = b"plan bytes"
SHA = hashlib.sha256(DATA).hexdigest()


def test_blob_cache_fetch_downloads_once(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    calls = []

    def download() -> bytes:
        calls.append(1)
        return DATA

    assert cache.fetch(SHA, download, "plan") == (DATA, True)
    assert cache.fetch(SHA, download, "plan") == (DATA, False)
    assert len(calls) == 1


def test_blob_cache_refuses_mismatch_and_stores_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    with pytest.raises(HashMismatchError, match="plan: sha256"):
        cache.fetch(SHA, lambda: b"other", "plan")
    assert list(tmp_path.iterdir()) == []


def test_blob_cache_drops_a_file_damaged_on_disk(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.put(SHA, DATA)
    (tmp_path / SHA).write_bytes(b"bit rot")
    assert cache.get(SHA) is None
    assert not (tmp_path / SHA).exists()


def test_blob_cache_rejects_a_bad_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sha256"):
        BlobCache(tmp_path).get("../../etc/passwd")
