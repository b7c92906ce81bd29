"""Tests for the centrally trained reference model (model/central.py).

Corpus: words 4..19 (16 words, V=20) typed in a fixed cycle, each word always
followed by the same next word (a permutation). Recall@1 by chance is 1/16.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from model.central import CentralConfig, evaluate_model, train_central
from model.config import ModelConfig
from model.keras_model import build_model
from model.sequences import make_sequences

V, WORDS, SEQ_LEN = 20, 16, 8
CONFIG = ModelConfig.from_preset("tiny", vocab_size=V)
FORWARD = np.array([(i * 5 + 3) % WORDS for i in range(WORDS)])
BACKWARD = np.argsort(FORWARD)  # the inverse permutation
METRIC_NAMES = {
    "recall_at_1",
    "recall_at_3",
    "recall_at_1_no_oov",
    "recall_at_3_no_oov",
    "perplexity",
    "tokens",
    "oov_targets",
}
Rows = tuple[np.ndarray, np.ndarray]


def _rows(successor: np.ndarray, messages: int, seed: int) -> Rows:
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(messages):
        word, message = int(rng.integers(0, WORDS)), []
        for _ in range(int(rng.integers(6, 11))):
            message.append(4 + word)
            word = int(successor[word])
        examples.append(np.array(message))
    return make_sequences(examples, SEQ_LEN, bos_id=CONFIG.bos_id, pad_id=CONFIG.pad_id)


TRAIN = _rows(FORWARD, 48, seed=0)
VALID = _rows(FORWARD, 16, seed=1)
VALID_BACKWARD = _rows(BACKWARD, 16, seed=1)


class _BatchCounter(tf.keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.append(0)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches[-1] += 1


@pytest.fixture(scope="module")
def learned() -> dict[str, Any]:
    model = build_model(CONFIG, seed=0)
    before = evaluate_model(model, CONFIG, VALID, batch_size=16)
    counter = _BatchCounter()
    central = CentralConfig(batch_size=16, max_epochs=6, learning_rate=2e-2, patience=2)
    result = train_central(model, CONFIG, TRAIN, VALID, central, callbacks=[counter])
    after = evaluate_model(model, CONFIG, VALID, batch_size=16)
    # Keras' own validation loss (a mean of batch means), comparable with the history.
    keras_val_loss = _keras_loss(model, VALID)
    return {
        "model": model,
        "before": before,
        "after": after,
        "keras_val_loss": keras_val_loss,
        "result": result,
        "batches": counter.batches,
    }


# ---- CentralConfig -----------------------------------------------------------------------


def test_central_config_defaults_valid() -> None:
    config = CentralConfig()
    assert config.batch_size >= 1 and config.max_epochs >= 1 and config.learning_rate > 0
    assert config.max_steps_per_epoch is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, r"batch_size must be positive, got 0"),
        ("max_epochs", 0, r"max_epochs must be positive, got 0"),
        ("max_epochs", -2, r"max_epochs must be positive, got -2"),
        ("patience", -1, r"patience must be >= 0, got -1"),
        ("learning_rate", 0.0, r"learning_rate must be positive, got 0.0"),
        ("learning_rate", -1e-3, r"learning_rate must be positive, got -0.001"),
        ("learning_rate", math.nan, r"learning_rate must be positive, got nan"),
        ("max_steps_per_epoch", 0, r"max_steps_per_epoch must be positive, got 0"),
        ("dropout", 1.0, r"dropout must be in \[0, 1\), got 1.0"),
        ("dropout", -0.1, r"dropout must be in \[0, 1\), got -0.1"),
        ("dropout", math.nan, r"dropout must be in \[0, 1\), got nan"),
        ("length_buckets", (8, 4, 20), r"length_buckets must increase from >= 1, got \(8, 4, 20\)"),
        ("length_buckets", (0, 20), r"length_buckets must increase from >= 1, got \(0, 20\)"),
        ("length_buckets", (4, 4, 20), r"length_buckets must increase from >= 1, got \(4, 4, 20\)"),
    ],
)
def test_central_config_invalid_value_named(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=rf"CentralConfig\.{message}"):
        CentralConfig(**{field: value})  # type: ignore[arg-type]


def test_central_config_patience_zero_allowed() -> None:
    assert CentralConfig(patience=0).patience == 0


# ---- training ----------------------------------------------------------------------------


def test_train_central_lowers_validation_loss(learned: dict[str, Any]) -> None:
    before, after = learned["before"], learned["after"]
    assert before["loss"] == pytest.approx(math.log(V), rel=0.05)  # untrained: near uniform
    assert after["loss"] < 0.7 * before["loss"]
    assert after["perplexity"] < before["perplexity"]


def test_train_central_recall_above_chance(learned: dict[str, Any]) -> None:
    chance = 1 / WORDS
    assert learned["after"]["recall_at_1"] > 5 * chance
    assert learned["after"]["recall_at_3"] >= learned["after"]["recall_at_1"]


def test_train_central_history_shape(learned: dict[str, Any]) -> None:
    result = learned["result"]
    assert set(result) == {"epochs_run", "best_epoch", "history"}
    history = result["history"]
    assert set(history) == {"loss", "val_loss"}
    assert all(len(values) == result["epochs_run"] for values in history.values())
    assert all(isinstance(v, float) for values in history.values() for v in values)
    losses = history["val_loss"]
    assert result["best_epoch"] == int(np.argmin(losses)) + 1
    assert history["val_loss"][-1] < history["val_loss"][0]


def test_train_central_final_weights_are_best_epoch(learned: dict[str, Any]) -> None:
    result = learned["result"]
    best = result["history"]["val_loss"][result["best_epoch"] - 1]
    assert learned["keras_val_loss"] == pytest.approx(best, rel=1e-5)


def test_train_central_passes_callbacks_and_full_epochs(learned: dict[str, Any]) -> None:
    # 71 rows at batch size 16: 5 batches every epoch.
    assert len(TRAIN[0]) == 71
    assert learned["batches"] == [5] * learned["result"]["epochs_run"]


def _keras_loss(model: tf.keras.Model, rows: Rows) -> float:
    """Keras' validation loss (a mean of batch means), as in the training history."""
    return float(model.evaluate(rows[0], rows[1], batch_size=16, verbose=0))


def test_train_central_early_stopping_restores_best_weights() -> None:
    # Trained on the forward cycle, judged on the backward one: the validation loss gets
    # worse once the model learns the cycle, so training stops and the best epoch comes back.
    model = build_model(CONFIG, seed=0)
    counter = _BatchCounter()
    central = CentralConfig(batch_size=16, max_epochs=8, learning_rate=2e-2, patience=1, max_steps_per_epoch=2)
    result = train_central(model, CONFIG, TRAIN, VALID_BACKWARD, central, callbacks=[counter])
    losses = result["history"]["val_loss"]
    assert result["epochs_run"] == len(losses) < 8  # stopped early
    assert result["best_epoch"] == int(np.argmin(losses)) + 1 == result["epochs_run"] - 1
    after = _keras_loss(model, VALID_BACKWARD)
    assert after == pytest.approx(losses[result["best_epoch"] - 1], rel=1e-5)
    assert after < losses[-1]
    assert counter.batches == [2] * result["epochs_run"]  # max_steps_per_epoch caps each epoch


def test_train_central_restores_best_when_epochs_run_out() -> None:
    # Patience longer than the run: Keras itself would keep the last epoch's weights.
    model = build_model(CONFIG, seed=0)
    central = CentralConfig(batch_size=16, max_epochs=4, learning_rate=3e-2, patience=10)
    result = train_central(model, CONFIG, TRAIN, VALID_BACKWARD, central)
    losses = result["history"]["val_loss"]
    assert result["epochs_run"] == 4
    assert result["best_epoch"] < 4, f"test premise: the last epoch must not be the best ({losses})"
    after = _keras_loss(model, VALID_BACKWARD)
    assert after == pytest.approx(losses[result["best_epoch"] - 1], rel=1e-5)
    assert after < losses[-1]


@pytest.mark.parametrize("empty", ["train", "validation"])
def test_train_central_empty_rows_rejected(learned: dict[str, Any], empty: str) -> None:
    none = (np.zeros((0, SEQ_LEN), np.int32), np.zeros((0, SEQ_LEN), np.int32))
    train, validation = (none, VALID) if empty == "train" else (TRAIN, none)
    with pytest.raises(ValueError, match="non-empty train and validation rows"):
        train_central(learned["model"], CONFIG, train, validation, CentralConfig(max_epochs=1))


# ---- evaluation --------------------------------------------------------------------------


def test_evaluate_model_returns_all_metrics_and_loss(learned: dict[str, Any]) -> None:
    result = learned["after"]
    assert set(result) == METRIC_NAMES | {"loss"}
    assert all(isinstance(v, float) for v in result.values())
    assert result["tokens"] == float((VALID[1] != CONFIG.pad_id).sum())
    assert result["oov_targets"] == 0.0
    assert result["recall_at_1"] == result["recall_at_1_no_oov"]  # no <unk> targets here


def test_evaluate_model_counts_unk_targets(learned: dict[str, Any]) -> None:
    inputs, targets = VALID[0].copy(), VALID[1].copy()
    targets[:, 0] = CONFIG.unk_id  # every row starts with a real word: now <unk>
    result = evaluate_model(learned["model"], CONFIG, (inputs, targets), batch_size=16)
    assert result["oov_targets"] == float(len(targets))
    assert result["tokens"] == float((targets != CONFIG.pad_id).sum())
    assert result["recall_at_1"] < result["recall_at_1_no_oov"]


def test_evaluate_model_uncompiled_model() -> None:
    model = build_model(CONFIG, seed=1)
    assert model.compiled_loss is None
    result = evaluate_model(model, CONFIG, VALID, batch_size=64)
    assert set(result) == METRIC_NAMES | {"loss"}
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]), rel=1e-4)


def test_evaluate_model_same_metrics_with_length_buckets(learned: dict[str, Any]) -> None:
    plain = evaluate_model(learned["model"], CONFIG, VALID, batch_size=16)
    bucketed = evaluate_model(learned["model"], CONFIG, VALID, batch_size=16, length_buckets=(2, 5, SEQ_LEN))
    assert bucketed["tokens"] == plain["tokens"]
    for name in ("recall_at_1", "recall_at_3", "perplexity"):
        assert bucketed[name] == pytest.approx(plain[name], rel=1e-5)


def test_train_central_with_length_buckets_runs_every_bucket_each_epoch() -> None:
    model = build_model(CONFIG, seed=0)
    counter = _BatchCounter()
    central = CentralConfig(batch_size=16, max_epochs=2, learning_rate=2e-2, patience=2, length_buckets=(5, SEQ_LEN))
    result = train_central(model, CONFIG, TRAIN, VALID, central, callbacks=[counter])
    lengths = (TRAIN[1] != CONFIG.pad_id).sum(axis=1)  # rows are right-padded
    short, long = int((lengths <= 5).sum()), int((lengths > 5).sum())
    assert short > 0 and long > 0  # both buckets hold rows
    assert counter.batches == [-(-short // 16) + -(-long // 16)] * 2
    assert result["history"]["val_loss"][1] < result["history"]["val_loss"][0]
