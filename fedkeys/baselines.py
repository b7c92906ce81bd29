"""The two reference runs every federated result is compared with.

``run_central``: the model trained on the pooled text of the training users
(the upper reference). ``run_ngram``: an interpolated Kneser-Ney n-gram model,
the kind of model Gboard shipped before federated learning (Hard et al. 2018).
Both are evaluated on the same test users, with the same vocabulary and the
same word-level metrics, so their numbers compare directly.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from data_tools import BOS_ID, EOS_ID, PAD_ID, UNK_ID, ClientData, PreparedCorpus, load_prepared
from fedkeys._progress import KerasProgress
from fedkeys.run_dir import CHECKPOINT_DIR, NGRAM_FILE, TOKENIZER_FILE, RunDirError, staged_run_dir, write_summary
from model import (
    CentralConfig,
    KneserNeyLM,
    ModelConfig,
    NgramConfig,
    assign_weights,
    build_model,
    evaluate_model,
    load_checkpoint,
    make_sequences,
    save_model,
    train_central,
)

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CentralRunConfig:
    """What ``fedkeys central train`` runs; defaults in this one place."""

    preset: str = "small"
    cell: str | None = None
    seq_len: int = 20
    init_seed: int = 0
    split: str = "train"  # "proxy": pretrain on users set aside as public data (data prepare --proxy-fraction)
    curve: bool = False  # score validation recall after every epoch (bench/quality.py draws it)
    init_from: Path | None = None  # start from this run's (or checkpoint directory's) weights, not the seeded ones
    training: CentralConfig = dataclasses.field(default_factory=CentralConfig)

    def __post_init__(self) -> None:
        if self.seq_len < 1:
            raise ValueError(f"seq_len must be positive, got {self.seq_len}")
        if self.split not in ("train", "proxy"):
            raise ValueError(f"central training runs on the train or proxy users, got split {self.split!r}")
        widths = self.training.length_buckets
        if widths and widths[-1] != self.seq_len:
            raise ValueError(f"the last length bucket must be seq_len {self.seq_len}, got {widths}")


# The tokenizer's special ids, handed to the model side (which never imports data_tools).
SPECIAL_IDS: dict[str, int] = {"pad_id": PAD_ID, "unk_id": UNK_ID, "bos_id": BOS_ID, "eos_id": EOS_ID}


def model_config_for(corpus: PreparedCorpus, preset: str, cell: str | None = None) -> ModelConfig:
    """The model config of ``preset`` sized to the corpus' tokenizer."""
    overrides: dict[str, Any] = {"cell": cell} if cell else {}
    return ModelConfig.from_preset(preset, corpus.tokenizer.vocab_size, **SPECIAL_IDS, **overrides)


def split_rows(split: ClientData, config: ModelConfig, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """All of a split's messages as (inputs, targets) rows."""
    return make_sequences(split.all_examples(), seq_len, bos_id=config.bos_id, pad_id=config.pad_id)


class _ValidationCurve(tf.keras.callbacks.Callback):
    """Validation recall@1 and perplexity after every epoch, against training tokens and wall seconds."""

    def __init__(
        self,
        config: ModelConfig,
        validation: tuple[np.ndarray, np.ndarray],
        tokens_per_epoch: int,
        length_buckets: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self._length_buckets = length_buckets
        self.points: list[dict[str, float]] = []
        self._config = config
        self._validation = validation
        self._tokens_per_epoch = tokens_per_epoch
        self._started = time.perf_counter()
        self._scoring = 0.0  # seconds spent scoring, left out of the training time

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        start = time.perf_counter()
        metrics = evaluate_model(self.model, self._config, self._validation, length_buckets=self._length_buckets)
        self.points.append(
            {
                "epoch": epoch + 1,
                "tokens": (epoch + 1) * self._tokens_per_epoch,
                "seconds": round(start - self._started - self._scoring, 2),
                "val_recall_at_1": metrics["recall_at_1"],
                "val_perplexity": metrics["perplexity"],
            }
        )
        logger.info(
            "epoch %d: validation recall@1 %.4f, perplexity %.1f",
            epoch + 1,
            metrics["recall_at_1"],
            metrics["perplexity"],
        )
        self._scoring += time.perf_counter() - start


def run_central(
    data_dir: Path, out: Path, run: CentralRunConfig, *, progress: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Train on ``run.split``'s users, early-stop on validation users, evaluate on test users, write RUN.

    With ``split="proxy"`` this is the pretraining step of Xu et al. 2023: a
    central model on users set aside as public data, which federated training
    (``sim run --init-from``, ``admin create-task --init-from``) then starts
    from; the summary's ``trained_on`` says which users it saw.
    """
    start = time.perf_counter()
    corpus = load_prepared(data_dir)
    config = model_config_for(corpus, run.preset, run.cell)
    source = corpus.split(run.split)
    train = split_rows(source, config, run.seq_len)
    validation = split_rows(corpus.validation, config, run.seq_len)
    test = split_rows(corpus.test, config, run.seq_len)
    logger.info(
        "central: %d train rows, %d validation rows, %d test rows of %d tokens",
        len(train[0]),
        len(validation[0]),
        len(test[0]),
        run.seq_len,
    )
    with staged_run_dir(out, overwrite=overwrite) as staging:
        model = build_model(config, seed=run.init_seed, dropout=run.training.dropout)
        if run.init_from is not None:  # a run directory (as sim run --init-from takes) or its checkpoint
            init_dir = run.init_from / CHECKPOINT_DIR
            init_config, weights = load_checkpoint(init_dir if init_dir.is_dir() else run.init_from)
            if init_config != config:
                raise RunDirError(f"{run.init_from}: a checkpoint of another model ({init_config.to_dict()})")
            assign_weights(model, weights, str(run.init_from))
        steps = -(-len(train[0]) // run.training.batch_size)
        if run.training.max_steps_per_epoch is not None:
            steps = min(steps, run.training.max_steps_per_epoch)
        bar = KerasProgress("central training", steps, run.training.max_epochs, progress)
        rows_per_epoch = min(len(train[0]), steps * run.training.batch_size)
        tokens_per_epoch = int(np.count_nonzero(train[1] != config.pad_id) * rows_per_epoch / max(len(train[0]), 1))
        widths = run.training.length_buckets
        curve = _ValidationCurve(config, validation, tokens_per_epoch, widths) if run.curve else None
        callbacks: list[tf.keras.callbacks.Callback] = [bar] if curve is None else [bar, curve]
        history = train_central(model, config, train, validation, run.training, callbacks=callbacks)
        metrics = evaluate_model(model, config, test, run.training.batch_size, widths)
        validation_metrics = evaluate_model(model, config, validation, run.training.batch_size, widths)
        save_model(staging / CHECKPOINT_DIR, config, model)
        shutil.copyfile(corpus.data_dir / "tokenizer.model", staging / TOKENIZER_FILE)
        summary = {
            "kind": "central",
            "data": str(corpus.data_dir),
            "trained_on": {
                "data": str(corpus.data_dir),
                "split": run.split,
                "users": source.num_clients,
                "tokens": int(source.num_tokens),
            },
            "init_from": None if run.init_from is None else str(run.init_from),
            "test": metrics,
            "validation": validation_metrics,
            "epochs_run": history["epochs_run"],
            "best_epoch": history["best_epoch"],
            "history": history["history"],
            "train_rows": len(train[0]),
            "curve": None if curve is None else curve.points,
            "parameters": int(model.count_params()),
            "config": {
                "model": config.to_dict(),
                "preset": run.preset,
                "seq_len": run.seq_len,
                "init_seed": run.init_seed,
                "training": dataclasses.asdict(run.training),
            },
            "wall_time_s": round(time.perf_counter() - start, 2),
        }
        write_summary(staging, summary)
    return summary


@dataclasses.dataclass(frozen=True)
class NgramRunConfig:
    order: int = 3

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError(f"n-gram order must be >= 1, got {self.order}")


def run_ngram(data_dir: Path, out: Path, run: NgramRunConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Fit Kneser-Ney on every user that is not evaluated on, score validation and test users, write RUN.

    The n-gram model is what the federated model replaces, so it gets all the
    text a server could have: the training users and, when the corpus set some
    aside, the proxy users too (a stronger, not a weaker, reference).
    """
    start = time.perf_counter()
    corpus = load_prepared(data_dir)
    config = NgramConfig(order=run.order, vocab_size=corpus.tokenizer.vocab_size, **SPECIAL_IDS)
    specials = tuple(SPECIAL_IDS.values())
    sources = [corpus.train] if corpus.proxy is None else [corpus.train, corpus.proxy]
    with staged_run_dir(out, overwrite=overwrite) as staging:
        lm = KneserNeyLM.fit([e for split in sources for e in split.all_examples()], config)
        validation = lm.evaluate(corpus.validation.all_examples(), special_ids=specials)
        test = lm.evaluate(corpus.test.all_examples(), special_ids=specials)
        lm.save(staging / NGRAM_FILE)
        shutil.copyfile(corpus.data_dir / "tokenizer.model", staging / TOKENIZER_FILE)
        summary = {
            "kind": "ngram",
            "data": str(corpus.data_dir),
            "trained_on": {
                "data": str(corpus.data_dir),
                "split": "+".join(split.name for split in sources),
                "users": sum(split.num_clients for split in sources),
                "tokens": sum(int(split.num_tokens) for split in sources),
            },
            "test": {k: float(v) for k, v in test.items()},
            "validation": {k: float(v) for k, v in validation.items()},
            "ngrams_by_order": [int(n) for n in lm.num_ngrams],
            "config": dataclasses.asdict(config),
            "wall_time_s": round(time.perf_counter() - start, 2),
        }
        write_summary(staging, summary)
    return summary
