"""tqdm progress bars for Keras training and evaluation."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tqdm.auto import tqdm


class KerasProgress(tf.keras.callbacks.Callback):
    """One bar over all training steps of all epochs, with loss and ETA.

    A single bar (rather than Keras' per-epoch lines) gives an honest ETA for
    the whole run; early stopping simply ends it sooner.
    """

    def __init__(self, description: str, steps_per_epoch: int, epochs: int, enabled: bool) -> None:
        super().__init__()
        self._bar = tqdm(total=steps_per_epoch * epochs, desc=description, unit="step", disable=not enabled, leave=True)
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._bar.update(1)
        if logs and batch % 20 == 0:
            self._bar.set_postfix(epoch=self._epoch, loss=f"{logs.get('loss', float('nan')):.3f}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs and "val_loss" in logs:
            self._bar.set_postfix(
                epoch=self._epoch,
                loss=f"{logs.get('loss', float('nan')):.3f}",
                val_loss=f"{logs['val_loss']:.3f}",
            )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._bar.close()
