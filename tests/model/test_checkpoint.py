"""Tests for the model checkpoint format (model/checkpoint.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from model.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    assign_weights,
    load_checkpoint,
    restore_model,
    save_checkpoint,
    save_model,
)
from model.config import ModelConfig
from model.keras_model import build_model

V = 30
CONFIG = ModelConfig.from_preset("tiny", vocab_size=V)
IDS = np.random.default_rng(0).integers(0, V, size=(2, 6)).astype(np.int32)


@pytest.fixture(scope="module")
def model() -> tf.keras.Model:
    """A tiny model whose weights are neither seed 0's nor any seed's initial ones."""
    built = build_model(CONFIG, seed=3)
    rng = np.random.default_rng(1)
    built.set_weights([rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in built.get_weights()])
    return built


@pytest.fixture(scope="module")
def saved(model: tf.keras.Model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ckpt") / "nested" / "model"
    save_model(directory, CONFIG, model)
    return directory


def _copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    target.mkdir()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (target / name).write_bytes((saved / name).read_bytes())
    return target


# ---- round trip --------------------------------------------------------------------------


def test_save_model_writes_both_files(saved: Path) -> None:
    assert (saved / CONFIG_FILE).is_file()
    assert (saved / WEIGHTS_FILE).is_file()
    assert json.loads((saved / CONFIG_FILE).read_text()) == CONFIG.to_dict()


def test_save_model_stores_names_in_model_order(model: tf.keras.Model, saved: Path) -> None:
    with np.load(saved / WEIGHTS_FILE) as data:
        assert list(data["names"]) == [w.name for w in model.weights]


def test_load_checkpoint_round_trip(model: tf.keras.Model, saved: Path) -> None:
    config, weights = load_checkpoint(saved)
    assert config == CONFIG
    expected = model.get_weights()
    assert len(weights) == len(expected) == 6
    for got, want in zip(weights, expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_restore_model_identical_logits(model: tf.keras.Model, saved: Path) -> None:
    config, restored = restore_model(saved)
    assert config == CONFIG
    np.testing.assert_array_equal(restored(IDS).numpy(), model(IDS).numpy())
    # Not trivially equal: a fresh model of the same config gives other logits.
    assert not np.allclose(build_model(CONFIG, seed=0)(IDS).numpy(), model(IDS).numpy())


def test_restore_model_unrolled_same_logits(model: tf.keras.Model, saved: Path) -> None:
    _, restored = restore_model(saved, unroll=True, batch_size=IDS.shape[0], seq_len=IDS.shape[1])
    assert tuple(restored.input_shape) == IDS.shape
    np.testing.assert_allclose(restored(IDS).numpy(), model(IDS).numpy(), rtol=1e-5, atol=1e-6)


def test_save_checkpoint_names_count_mismatch_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 weights but 1 names"):
        save_checkpoint(tmp_path, CONFIG, [np.zeros(2), np.zeros(3)], ["a"])


def test_save_checkpoint_overwrites(saved: Path, tmp_path: Path) -> None:
    directory = _copy(saved, tmp_path)
    save_checkpoint(directory, CONFIG, [np.full(3, 7.0, np.float32)], ["only"])
    _, weights = load_checkpoint(directory)
    assert len(weights) == 1
    np.testing.assert_array_equal(weights[0], [7.0, 7.0, 7.0])


# ---- missing and damaged files ---------------------------------------------------------


def test_load_checkpoint_missing_directory_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointError, match=re.escape(str(missing / CONFIG_FILE)) + " is missing"):
        load_checkpoint(missing)


@pytest.mark.parametrize("removed", [CONFIG_FILE, WEIGHTS_FILE])
def test_load_checkpoint_missing_file_names_path(saved: Path, tmp_path: Path, removed: str) -> None:
    directory = _copy(saved, tmp_path)
    (directory / removed).unlink()
    with pytest.raises(CheckpointError, match=re.escape(str(directory / removed)) + " is missing"):
        load_checkpoint(directory)


def test_restore_model_missing_file_raises_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="missing"):
        restore_model(tmp_path)


def test_checkpoint_error_is_value_error() -> None:
    assert issubclass(CheckpointError, ValueError)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: b"not a zip file at all" * 5, id="garbage"),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: raw[:10], id="header-only"),
        pytest.param(lambda raw: b"", id="empty"),
    ],
)
def test_load_checkpoint_corrupt_weights_raises_checkpoint_error(
    saved: Path, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    directory = _copy(saved, tmp_path)
    raw = (directory / WEIGHTS_FILE).read_bytes()
    (directory / WEIGHTS_FILE).write_bytes(damage(raw))
    with pytest.raises(CheckpointError, match=re.escape(str(directory / WEIGHTS_FILE))):
        load_checkpoint(directory)


def test_load_checkpoint_bit_flip_in_weight_data_detected(saved: Path, tmp_path: Path) -> None:
    directory = _copy(saved, tmp_path)
    raw = bytearray((directory / WEIGHTS_FILE).read_bytes())
    # Flip a byte in the middle of the embedding matrix, the largest array: the zip CRC catches it.
    start = raw.index(b"w000.npy")
    raw[start + 1000] ^= 0xFF
    (directory / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_checkpoint(directory)


def test_load_checkpoint_npy_instead_of_npz(saved: Path, tmp_path: Path) -> None:
    directory = _copy(saved, tmp_path)
    with open(directory / WEIGHTS_FILE, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_checkpoint(directory)


def test_load_checkpoint_corrupt_config_json(saved: Path, tmp_path: Path) -> None:
    directory = _copy(saved, tmp_path)
    (directory / CONFIG_FILE).write_text("{ not json")
    with pytest.raises(CheckpointError, match=re.escape(str(directory / CONFIG_FILE))):
        load_checkpoint(directory)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"dropout": 0.5}, "unknown ModelConfig fields"),
        ({"units": 0}, "got 0"),
        ({"cell": "gru"}, "gru"),
    ],
)
def test_load_checkpoint_invalid_config_values(
    saved: Path, tmp_path: Path, edit: dict[str, object], message: str
) -> None:
    directory = _copy(saved, tmp_path)
    (directory / CONFIG_FILE).write_text(json.dumps({**CONFIG.to_dict(), **edit}))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(directory)


def test_load_checkpoint_config_not_an_object(saved: Path, tmp_path: Path) -> None:
    directory = _copy(saved, tmp_path)
    (directory / CONFIG_FILE).write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError):
        load_checkpoint(directory)


# ---- checkpoint of another configuration ---------------------------------------------


def test_assign_weights_other_units_names_weight_and_shapes(saved: Path) -> None:
    _, weights = load_checkpoint(saved)
    other = build_model(ModelConfig.from_preset("tiny", vocab_size=V, units=8), seed=0)
    before = [w.copy() for w in other.get_weights()]
    d, u = CONFIG.embedding_dim, CONFIG.units
    pattern = (
        rf"{re.escape(str(saved))}: weight rnn_0/cifg_cell(_\d+)?/kernel:0 has shape "
        rf"\({d}, {3 * u}\), the model expects \({d}, {3 * 8}\)"
    )
    with pytest.raises(CheckpointError, match=pattern):
        assign_weights(other, weights, str(saved))
    for got, want in zip(other.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)  # nothing half-assigned


def test_assign_weights_other_vocab_names_embedding(saved: Path) -> None:
    _, weights = load_checkpoint(saved)
    other = build_model(ModelConfig.from_preset("tiny", vocab_size=V + 10), seed=0)
    d = CONFIG.embedding_dim
    pattern = rf"weight embedding/embeddings:0 has shape \({V}, {d}\), the model expects \({V + 10}, {d}\)"
    with pytest.raises(CheckpointError, match=pattern):
        assign_weights(other, weights, "ckpt")


def test_assign_weights_other_cell_rejected(saved: Path) -> None:
    _, weights = load_checkpoint(saved)
    other = build_model(ModelConfig.from_preset("tiny", vocab_size=V, cell="lstm"), seed=0)
    with pytest.raises(CheckpointError, match=r"lstm_cell(_\d+)?/kernel:0 has shape"):
        assign_weights(other, weights, "ckpt")


def test_assign_weights_wrong_count_rejected(saved: Path) -> None:
    _, weights = load_checkpoint(saved)
    other = build_model(ModelConfig.from_preset("tiny", vocab_size=V, num_layers=2), seed=0)
    with pytest.raises(CheckpointError, match="ckpt: has 6 weight tensors, the model has 9"):
        assign_weights(other, weights, "ckpt")


def test_restore_model_config_weights_disagree(saved: Path, tmp_path: Path) -> None:
    # Config claims more units than the stored weights have: the restore names the weight.
    directory = _copy(saved, tmp_path)
    (directory / CONFIG_FILE).write_text(json.dumps({**CONFIG.to_dict(), "units": 8}))
    with pytest.raises(CheckpointError, match=r"kernel:0 has shape"):
        restore_model(directory)


def test_assign_weights_same_config_sets_weights(model: tf.keras.Model, saved: Path) -> None:
    _, weights = load_checkpoint(saved)
    fresh = build_model(CONFIG, seed=9)
    assign_weights(fresh, weights, "ckpt")
    np.testing.assert_array_equal(fresh(IDS).numpy(), model(IDS).numpy())
