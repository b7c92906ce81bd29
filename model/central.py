"""Centrally trained reference model: the upper bound for federated learning.

Trains on the pooled text of all training users, which federated learning by
design never sees in one place; the gap between this model and the federated
one is the price of privacy (Hard et al. 2018 report 16.5% central vs 16.4%
federated recall@1). Early stopping on validation users picks the epoch.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import tensorflow as tf

from model.config import ModelConfig
from model.keras_model import MaskedCrossEntropy
from model.metrics import keyboard_metrics
from model.sequences import length_buckets, widths_increase

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CentralConfig:
    """Hyperparameters of central training; defaults in this one place."""

    batch_size: int = 64
    max_epochs: int = 10
    learning_rate: float = 1e-3
    patience: int = 1
    clipnorm: float = 5.0
    shuffle_seed: int = 0
    max_steps_per_epoch: int | None = None
    # Share of the embedding's and recurrent outputs dropped while training (``build_model``'s ``dropout``).
    dropout: float = 0.0
    # Row widths to bucket rows by length (``model.sequences.length_buckets``; the last is the rows' width):
    # batches of short messages skip their padding. Empty: every batch at the rows' full width.
    length_buckets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"CentralConfig.{name} must be positive, got {getattr(self, name)}")
        if self.patience < 0:
            raise ValueError(f"CentralConfig.patience must be >= 0, got {self.patience}")
        if not self.learning_rate > 0:
            raise ValueError(f"CentralConfig.learning_rate must be positive, got {self.learning_rate}")
        if self.length_buckets and not widths_increase(self.length_buckets):
            raise ValueError(f"CentralConfig.length_buckets must increase from >= 1, got {self.length_buckets}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CentralConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"CentralConfig.max_steps_per_epoch must be positive, got {self.max_steps_per_epoch}")


def compile_model(
    model: tf.keras.Model,
    config: ModelConfig,
    learning_rate: float,
    clipnorm: float,
    tokens_per_batch: float | None = None,
) -> None:
    """Adam on the masked next-word loss.

    No metrics are compiled in: on a CPU, ranking every position against a
    10k-word vocabulary costs about a third of a training step, and training
    needs only the validation loss (early stopping). :func:`evaluate_model`
    computes the keyboard metrics once, on the chosen weights.
    """
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=MaskedCrossEntropy(config.pad_id, tokens_per_batch=tokens_per_batch),
    )


def _dataset(
    inputs: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    seed: int | None,
    widths: tuple[int, ...] = (),
    pad_id: int = 0,
) -> tf.data.Dataset:
    """Batches of rows, shuffled each epoch when ``seed`` is given; with ``widths``, each batch of rows of one
    length bucket cut to its width (``length_buckets``), the buckets' batches interleaved in a shuffled order."""
    if not widths:
        ds = tf.data.Dataset.from_tensor_slices((inputs, targets))
        if seed is not None:
            ds = ds.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(2)
    buckets = length_buckets(targets, widths, pad_id=pad_id)
    parts, choices = [], []
    for b, (rows, width) in enumerate(buckets):
        part = tf.data.Dataset.from_tensor_slices((inputs[rows, :width], targets[rows, :width]))  # (n_b, width)
        if seed is not None:
            part = part.shuffle(len(rows), seed=seed + b, reshuffle_each_iteration=True)
        parts.append(part.batch(batch_size))
        choices.append(np.full(-(-len(rows) // batch_size), b, dtype=np.int64))  # one choice per batch
    order = tf.data.Dataset.from_tensor_slices(np.concatenate(choices))
    if seed is not None:
        order = order.shuffle(len(order), seed=seed, reshuffle_each_iteration=True)
    return tf.data.Dataset.choose_from_datasets(parts, order).prefetch(2)


def train_central(
    model: tf.keras.Model,
    config: ModelConfig,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    central: CentralConfig,
    callbacks: list[tf.keras.callbacks.Callback] | None = None,
) -> dict[str, Any]:
    """Fit ``model`` in place; return the per-epoch history and the best epoch.

    ``train`` and ``validation`` are (inputs, targets) rows from
    ``model.sequences.make_sequences``. The best weights by validation loss are
    restored at the end.
    """
    if len(train[0]) == 0 or len(validation[0]) == 0:
        raise ValueError("central training needs non-empty train and validation rows")
    # Bucketed batches hold different token counts: divide each by a full batch's mean count, so every token
    # weighs the same (MaskedCrossEntropy); unbucketed, each batch's mean as before.
    nonpad = float(np.count_nonzero(train[1] != config.pad_id))
    per_batch = central.batch_size * nonpad / len(train[0]) if central.length_buckets else None
    compile_model(model, config, central.learning_rate, central.clipnorm, per_batch)
    stopper = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=central.patience, restore_best_weights=True)
    log_epoch = tf.keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logger.info(
            "epoch %d: loss %.4f, val_loss %.4f",
            epoch + 1,
            (logs or {}).get("loss", float("nan")),
            (logs or {}).get("val_loss", float("nan")),
        )
    )
    widths, pad = central.length_buckets, config.pad_id
    train_ds = _dataset(*train, central.batch_size, central.shuffle_seed, widths, pad)
    if central.max_steps_per_epoch is not None:
        train_ds = train_ds.take(central.max_steps_per_epoch)
    history = model.fit(
        train_ds,
        validation_data=_dataset(*validation, central.batch_size, None, widths, pad),
        epochs=central.max_epochs,
        callbacks=[stopper, log_epoch, *(callbacks or [])],
        verbose=0,
    )
    if stopper.best_weights is not None:
        # Keras restores the best weights only when it stops early, not when max_epochs runs out.
        model.set_weights(stopper.best_weights)
    losses = history.history["val_loss"]
    best_epoch = int(np.argmin(losses)) + 1
    logger.info("central training stopped after %d epochs; best epoch %d", len(losses), best_epoch)
    return {
        "epochs_run": len(losses),
        "best_epoch": best_epoch,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
    }


def evaluate_model(
    model: tf.keras.Model,
    config: ModelConfig,
    rows: tuple[np.ndarray, np.ndarray],
    batch_size: int = 64,
    length_buckets: tuple[int, ...] = (),
) -> dict[str, float]:
    """Every keyboard metric of ``model`` on (inputs, targets) rows.

    ``loss`` is the mean next-word NLL over all non-pad targets (the log of
    the perplexity), not a mean of per-batch means. Works on any model,
    compiled or not. ``length_buckets`` (as ``CentralConfig``'s) skips the
    padding's computation; padding never counts, so the metrics are the same.
    """
    metrics = keyboard_metrics(config)

    @tf.function
    def update(inputs: tf.Tensor, targets: tf.Tensor) -> None:
        logits = model(inputs, training=False)  # (B, T, V)
        for metric in metrics:
            metric.update_state(targets, logits)

    for inputs, targets in _dataset(*rows, batch_size, None, length_buckets, config.pad_id):
        update(inputs, targets)
    result = {m.name: float(m.result()) for m in metrics}
    result["loss"] = float(np.log(result["perplexity"])) if result["tokens"] else float("nan")
    return result
