from pathlib import Path

import pytest

from data_tools.errors import CorpusError
from data_tools.prepared_corpus import load_prepared


def test_load_prepared_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such directory"):
        load_prepared(tmp_path / "absent")


def test_load_prepared_not_a_prepared_dir_names_missing_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.model").write_bytes(b"")
    with pytest.raises(CorpusError) as info:
        load_prepared(tmp_path)
    assert "is not a prepared corpus" in str(info.value)
    assert "missing stats.json" in str(info.value)


def test_load_prepared_bad_tokenizer_reported(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.model").write_bytes(b"not a model")
    (tmp_path / "stats.json").write_text("{}", encoding="utf-8")
    (tmp_path / "prepare.json").write_text("{}", encoding="utf-8")
    for split in ("train", "validation", "test"):
        (tmp_path / split).mkdir()
        for name in ("client_ids.json", "tokens.npy", "example_offsets.npy"):
            (tmp_path / split / name).write_bytes(b"")
    with pytest.raises(CorpusError, match="client_offsets.npy"):
        load_prepared(tmp_path)
    for split in ("train", "validation", "test"):
        for name in ("client_offsets.npy", "timestamps.npy"):
            (tmp_path / split / name).write_bytes(b"")
    with pytest.raises(CorpusError, match="tokenizer.model"):
        load_prepared(tmp_path)
