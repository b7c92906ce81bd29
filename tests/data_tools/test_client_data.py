import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from data_tools.client_data import (
    ClientData,
    build_client_data,
    load_client_data,
    save_client_data,
)
from data_tools.errors import CorpusError


def _arr(*ids: int) -> npt.NDArray[np.int32]:
    return np.asarray(ids, dtype=np.int32)


def _sample() -> ClientData:
    return build_client_data(
        "train",
        ["u0", "u1", "u2"],
        [[_arr(5, 6, 7), _arr(8)], [_arr(9, 9)], [_arr(4), _arr(), _arr(10, 11)]],
        [[1.0, None], [3.0], [None, 5.0, 6.0]],
    )


def test_build_client_data_counts_and_views() -> None:
    data = _sample()
    assert (data.num_clients, data.num_examples, data.num_tokens) == (3, 6, 9)
    assert [e.tolist() for e in data.client_examples(0)] == [[5, 6, 7], [8]]
    assert [data.client_tokens(i) for i in range(3)] == [4, 2, 3]
    assert [e.tolist() for e in data.all_examples()][-2:] == [[], [10, 11]]
    assert np.isnan(data.timestamps[1]) and data.client_timestamps(1).tolist() == [3.0]
    assert data.tokens.dtype == np.int32 and data.example_offsets.dtype == np.int64


def test_client_data_select_subset_in_order() -> None:
    data = _sample().select([2, 0])
    assert data.client_ids == ("u2", "u0")
    assert [[e.tolist() for e in data.client_examples(i)] for i in range(2)] == [
        [[4], [], [10, 11]],
        [[5, 6, 7], [8]],
    ]
    expected = [np.nan, 5.0, 6.0, 1.0, np.nan]
    assert np.array_equal(data.timestamps, expected, equal_nan=True)


def test_client_data_select_empty() -> None:
    data = _sample().select([])
    assert (data.num_clients, data.num_examples, data.num_tokens) == (0, 0, 0)


def test_client_data_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        _sample().client_examples(3)


@pytest.mark.parametrize("mmap", [False, True])
def test_client_data_save_load_round_trip(tmp_path: Path, mmap: bool) -> None:
    original = _sample()
    save_client_data(original, tmp_path / "train")
    loaded = load_client_data(tmp_path / "train", mmap=mmap)
    assert loaded.name == "train"
    assert loaded.client_ids == original.client_ids
    for field in ("tokens", "example_offsets", "client_offsets"):
        assert np.array_equal(getattr(loaded, field), getattr(original, field))
    assert np.array_equal(loaded.timestamps, original.timestamps, equal_nan=True)


def test_client_data_inconsistent_arrays_rejected() -> None:
    good = _sample()
    with pytest.raises(ValueError, match="example_offsets"):
        ClientData(
            "x",
            good.client_ids,
            good.tokens,
            good.example_offsets[:-1],
            good.client_offsets,
            good.timestamps,
        )


def test_load_client_data_missing_file_named(tmp_path: Path) -> None:
    save_client_data(_sample(), tmp_path)
    (tmp_path / "timestamps.npy").unlink()
    with pytest.raises(CorpusError, match="timestamps.npy"):
        load_client_data(tmp_path)


def test_load_client_data_twenty_thousand_clients_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n_clients, n_examples = 20_000, 200_000
    client_cuts = np.sort(rng.choice(np.arange(1, n_examples), n_clients - 1, replace=False))
    lengths = rng.integers(1, 20, size=n_examples)
    example_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = ClientData(
        "train",
        tuple(f"user{i}" for i in range(n_clients)),
        rng.integers(0, 10_000, size=int(example_offsets[-1])).astype(np.int32),
        example_offsets,
        np.concatenate([[0], client_cuts, [n_examples]]).astype(np.int64),
        np.full(n_examples, np.nan),
    )
    save_client_data(data, tmp_path)
    start = time.perf_counter()
    loaded = load_client_data(tmp_path)
    assert time.perf_counter() - start < 1.0
    assert loaded.num_clients == n_clients
