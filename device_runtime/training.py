"""Local training on the device: evaluate, SGD over the batches, evaluate, delta.

The client update of FedAvg (McMahan et al. 2017): start from the round's
model, take one plain SGD step per local batch for the assigned epochs, and
send back ``trained - initial`` weighted by the number of target tokens
trained on (the contract; tff_sim weights clients the same way). Before every
batch the caller's ``before_batch`` hook is asked whether to go on: the device
re-checks its eligibility conditions there (Bonawitz et al. 2019 §2: training
stops as soon as the phone is unplugged or used), and the emulator also slows
down or drops out devices there.

The trainer is anything with the :class:`Trainer` methods; on the device it is
the export's ``LiteRTTrainer`` over ``train.tflite``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from device_runtime.litert_model import EvalCounts
from device_runtime.rows import evaluation_batches, num_batches, target_tokens, training_batches


class Trainer(Protocol):
    batch_size: int
    seq_len: int

    def get_weights(self) -> list[np.ndarray]: ...

    def set_weights(self, weights: Sequence[np.ndarray]) -> None: ...

    def train_step(self, inputs: object, targets: object, learning_rate: float) -> float: ...

    def evaluate(self, inputs: object, targets: object) -> EvalCounts: ...


class TrainingInterrupted(Exception):
    """Training stopped before the end because a condition failed; the work is to be discarded."""

    def __init__(self, reason: str, batches_done: int) -> None:
        super().__init__(f"training interrupted after {batches_done} batches: {reason}")
        self.reason = reason
        self.batches_done = batches_done


@dataclasses.dataclass(frozen=True)
class LocalResult:
    """A finished local training: the delta (float32, weight order) and what the report needs."""

    delta: list[np.ndarray]
    weight: float  # non-pad target tokens over all batches of all epochs (the FedAvg weight)
    batches: int
    rows: int
    before: EvalCounts
    after: EvalCounts
    train_seconds: float


def evaluate_rows(trainer: Trainer, rows: tuple[np.ndarray, np.ndarray], *, pad_id: int) -> EvalCounts:
    """Summed loss, tokens and top-1/top-3 hits of the model over the rows (padded batches)."""
    total = EvalCounts(0.0, 0, 0, 0)
    for x, y in evaluation_batches(rows, trainer.batch_size, pad_id=pad_id):
        total = total.plus(trainer.evaluate(x, y))
    return total


def train_locally(
    trainer: Trainer,
    initial: Sequence[np.ndarray],
    rows: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    learning_rate: float,
    pad_id: int,
    before_batch: Callable[[int, int], str | None] = lambda _i, _n: None,
    clock: Callable[[], float] = time.perf_counter,
) -> LocalResult:
    """Train from ``initial`` on ``rows`` (R, T); TrainingInterrupted if ``before_batch(i, total)`` names a reason."""
    start = clock()
    trainer.set_weights(initial)
    before = evaluate_rows(trainer, rows, pad_id=pad_id)
    total = num_batches(len(rows[0]), trainer.batch_size, epochs)
    for i, (x, y) in enumerate(training_batches(rows, trainer.batch_size, epochs, pad_id=pad_id)):
        reason = before_batch(i, total)
        if reason is not None:
            raise TrainingInterrupted(reason, i)
        trainer.train_step(x, y, learning_rate)
    after = evaluate_rows(trainer, rows, pad_id=pad_id)
    trained = trainer.get_weights()
    delta = [
        (np.asarray(t, dtype=np.float32) - np.asarray(s, dtype=np.float32)).astype(np.float32)
        for t, s in zip(trained, initial, strict=True)
    ]
    return LocalResult(
        delta=delta,
        weight=float(epochs * target_tokens(rows[1], pad_id)),
        batches=total,
        rows=len(rows[0]),
        before=before,
        after=after,
        train_seconds=clock() - start,
    )
