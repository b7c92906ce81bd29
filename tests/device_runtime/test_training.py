"""device_runtime.training: delta, weight, evaluation and interruption with a numpy trainer."""

from __future__ import annotations

import numpy as np
import pytest
from device_fakes import INITIAL, FakeTrainer

from device_runtime.litert_model import EvalCounts
from device_runtime.training import TrainingInterrupted, evaluate_rows, train_locally

ROWS = (
    np.array([[2, 5, 6, 0], [2, 7, 0, 0], [2, 8, 9, 10]], np.int32),
    np.array([[5, 6, 3, 0], [7, 3, 0, 0], [8, 9, 10, 3]], np.int32),
)  # 3 + 2 + 4 = 9 targets


def test_train_locally_delta_and_weight() -> None:
    trainer = FakeTrainer()
    result = train_locally(trainer, INITIAL, ROWS, epochs=2, learning_rate=1.0, pad_id=0)
    assert result.weight == 18.0 and result.batches == 3 and result.rows == 3
    assert trainer.steps == 3  # 6 rows in batches of 2
    for got, initial in zip(result.delta, INITIAL, strict=True):
        np.testing.assert_allclose(got, np.full(initial.shape, 18 / 100.0), rtol=1e-6)
        assert got.dtype == np.float32
    assert result.before == EvalCounts(9.0, 9, 0, 9)
    assert result.after == EvalCounts(9 / 4, 9, 2, 9)


def test_train_locally_interrupted_at_the_named_batch() -> None:
    trainer = FakeTrainer()
    calls = []

    def hook(batch: int, total: int) -> str | None:
        calls.append((batch, total))
        return "not_idle" if batch == 2 else None

    with pytest.raises(TrainingInterrupted) as info:
        train_locally(trainer, INITIAL, ROWS, epochs=2, learning_rate=1.0, pad_id=0, before_batch=hook)
    assert (info.value.reason, info.value.batches_done) == ("not_idle", 2)
    assert calls == [(0, 3), (1, 3), (2, 3)] and trainer.steps == 2


def test_evaluate_rows_sums_padded_batches() -> None:
    assert evaluate_rows(FakeTrainer(), ROWS, pad_id=0) == EvalCounts(9.0, 9, 0, 9)
