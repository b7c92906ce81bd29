"""Scoring the demo's models with the same metrics as the references (``model.evaluate_model``).

Simulation and deployment produce plain weight lists; they are scored with
one Keras model (built once, weights swapped in) on all messages of a split,
the way ``fedkeys central train`` scores its model, so every number in the
report is the same keyboard metric (recall@1/@3 as in Hard et al. 2018).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_tools import ClientData
from fedkeys.run_dir import CHECKPOINT_DIR, TOKENIZER_FILE
from model import ModelConfig, build_model, evaluate_model, make_sequences, save_model
from model.checkpoint import assign_weights

_EVAL_SALT = 0xE7A1


class WeightScorer:
    """Keyboard metrics of weight lists on one split's messages (rows built once)."""

    def __init__(
        self,
        config: ModelConfig,
        split: ClientData,
        seq_len: int,
        *,
        max_users: int | None = None,
        seed: int = 0,
        batch_size: int = 64,
    ) -> None:
        """All of ``split``'s users, or a fixed sample of ``max_users`` of them drawn from ``seed``."""
        self.config = config
        self._model = build_model(config)
        users = np.arange(split.num_clients)
        if max_users is not None and max_users < len(users):
            users = np.sort(np.random.default_rng([seed, _EVAL_SALT]).choice(users, size=max_users, replace=False))
        self.users = len(users)
        examples = [e for u in users.tolist() for e in split.client_examples(u)]
        self._rows = make_sequences(examples, seq_len, bos_id=config.bos_id, pad_id=config.pad_id)  # (R, T) each
        self._batch_size = batch_size

    def score(self, weights: Sequence[np.ndarray], source: str) -> dict[str, float]:
        assign_weights(self._model, [np.asarray(w, np.float32) for w in weights], source)
        return evaluate_model(self._model, self.config, self._rows, self._batch_size)


def write_run_dir(out: Path, config: ModelConfig, weights: Sequence[np.ndarray], tokenizer: Path) -> Path:
    """A run directory (checkpoint + tokenizer) of ``weights``, so ``fedkeys suggest`` and export accept it."""
    model = build_model(config)
    assign_weights(model, [np.asarray(w, np.float32) for w in weights], str(out))
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)  # the rest (metrics.csv, logs) stays
    save_model(out / CHECKPOINT_DIR, config, model)
    shutil.copyfile(tokenizer, out / TOKENIZER_FILE)
    return out
