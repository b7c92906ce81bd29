"""Word-level keyboard metrics, usable in Keras and in TFF.

Gboard's quality measure is recall of the suggestion strip (Hard et al. 2018):
the share of next-word positions where the typed word is the top suggestion
(recall@1) or among the three shown (recall@3). The keyboard never suggests the
special tokens, so they are masked out of the ranking; a target outside the
vocabulary (``<unk>``) can never be suggested and counts as a miss. The
``_no_oov`` variants leave those positions out, separating the model's skill
from the vocabulary's coverage. Padding never counts.

Every metric keeps only sums (hits, positions, negative log-likelihood), so
TFF's federated evaluation aggregates them exactly by summing client states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from model.config import ModelConfig

_NEG_INF = -1e9


def mask_special_logits(logits: tf.Tensor, special_ids: Sequence[int]) -> tf.Tensor:
    """Logits (..., V) with the special ids pushed below every word."""
    vocab_size = logits.shape[-1]
    penalty = np.zeros([vocab_size], dtype=np.float32)
    penalty[list(special_ids)] = _NEG_INF
    return logits + tf.constant(penalty, dtype=logits.dtype)


def top_k_words(logits: np.ndarray, k: int, special_ids: Sequence[int]) -> np.ndarray:
    """The k best word ids for each row of logits (..., V), best first, specials excluded."""
    masked = np.array(logits, dtype=np.float64, copy=True)
    masked[..., list(special_ids)] = -np.inf
    order = np.argsort(-masked, axis=-1, kind="stable")
    return order[..., :k]


def _is_special(ids: tf.Tensor, special_ids: Sequence[int]) -> tf.Tensor:
    return tf.reduce_any(tf.equal(ids[..., tf.newaxis], tf.constant(list(special_ids), ids.dtype)), axis=-1)


def target_rank(logits: tf.Tensor, targets: tf.Tensor, special_ids: Sequence[int]) -> tf.Tensor:
    """0-based rank (B, T) of each target among the non-special words.

    Counting the words that beat the target is one compare and one sum over
    the vocabulary, several times cheaper on a CPU than ``tf.math.top_k``; the
    target is among the top k exactly when its rank is below k. Ties go to the
    lower id, as in :func:`top_k_words`.
    """
    masked = mask_special_logits(logits, special_ids)  # (B, T, V)
    target_logit = tf.gather(masked, targets, batch_dims=2)[..., tf.newaxis]  # (B, T, 1)
    ids = tf.range(tf.shape(logits)[-1], dtype=targets.dtype)  # (V,)
    beats = tf.logical_or(
        masked > target_logit,
        tf.logical_and(tf.equal(masked, target_logit), ids < targets[..., tf.newaxis]),
    )  # (B, T, V)
    return tf.reduce_sum(tf.cast(beats, tf.int32), axis=-1)


class _SumMetric(tf.keras.metrics.Metric):
    """Base: a numerator and a denominator, both plain sums."""

    def __init__(self, name: str, pad_id: int, unk_id: int, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id
        self.unk_id = unk_id
        self.numerator = self.add_weight(name="numerator", initializer="zeros", dtype=tf.float64)
        self.denominator = self.add_weight(name="denominator", initializer="zeros", dtype=tf.float64)

    def _counts(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
        del sample_weight  # padding is the only weighting, and it is in the targets
        numerator, denominator = self._counts(tf.cast(y_true, tf.int32), y_pred)
        self.numerator.assign_add(tf.cast(numerator, tf.float64))
        self.denominator.assign_add(tf.cast(denominator, tf.float64))

    def result(self) -> tf.Tensor:
        return tf.math.divide_no_nan(self.numerator, self.denominator)

    def reset_state(self) -> None:
        self.numerator.assign(0.0)
        self.denominator.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad_id": self.pad_id, "unk_id": self.unk_id}


class RecallAtK(_SumMetric):
    """Share of next-word positions whose target is among the top-k suggestions."""

    def __init__(
        self,
        k: int,
        special_ids: Sequence[int],
        pad_id: int,
        unk_id: int,
        exclude_oov: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if k < 1:
            raise ValueError(f"RecallAtK k must be positive, got {k}")
        name = name or f"recall_at_{k}{'_no_oov' if exclude_oov else ''}"
        super().__init__(name=name, pad_id=pad_id, unk_id=unk_id, **kwargs)
        self.k = k
        self.special_ids = tuple(int(i) for i in special_ids)
        self.exclude_oov = exclude_oov

    def _counts(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rank = target_rank(y_pred, y_true, self.special_ids)  # (B, T)
        counted = tf.not_equal(y_true, self.pad_id)
        if self.exclude_oov:
            counted = tf.logical_and(counted, tf.not_equal(y_true, self.unk_id))
        # A special target (<unk>) is ranked below every word, so it is never a hit.
        hit = tf.logical_and(rank < self.k, tf.logical_not(_is_special(y_true, self.special_ids)))
        hits = tf.logical_and(hit, counted)
        return tf.reduce_sum(tf.cast(hits, tf.int64)), tf.reduce_sum(tf.cast(counted, tf.int64))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "k": self.k,
            "special_ids": list(self.special_ids),
            "exclude_oov": self.exclude_oov,
        }


class Perplexity(_SumMetric):
    """exp of the mean next-word negative log-likelihood over non-pad targets."""

    def __init__(self, pad_id: int, unk_id: int, name: str = "perplexity", **kwargs: Any) -> None:
        super().__init__(name=name, pad_id=pad_id, unk_id=unk_id, **kwargs)

    def _counts(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=y_pred)  # (B, T)
        mask = tf.not_equal(y_true, self.pad_id)
        return (
            tf.reduce_sum(tf.where(mask, tf.cast(nll, tf.float64), tf.zeros_like(nll, tf.float64))),
            tf.reduce_sum(tf.cast(mask, tf.int64)),
        )

    def result(self) -> tf.Tensor:
        return tf.exp(tf.math.divide_no_nan(self.numerator, self.denominator))


class TokenCount(_SumMetric):
    """Number of non-pad target positions (``oov=True``: those whose target is <unk>)."""

    def __init__(self, pad_id: int, unk_id: int, oov: bool = False, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or ("oov_targets" if oov else "tokens"), pad_id=pad_id, unk_id=unk_id, **kwargs)
        self.oov = oov

    def _counts(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        del y_pred
        counted = tf.not_equal(y_true, self.pad_id)
        if self.oov:
            counted = tf.logical_and(counted, tf.equal(y_true, self.unk_id))
        return tf.reduce_sum(tf.cast(counted, tf.int64)), tf.constant(0, tf.int64)

    def result(self) -> tf.Tensor:
        return self.numerator

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "oov": self.oov}


def keyboard_metrics(config: ModelConfig) -> list[tf.keras.metrics.Metric]:
    """Fresh instances of every keyboard metric (TFF wants a constructor)."""
    pad, unk, specials = config.pad_id, config.unk_id, config.special_ids
    return [
        RecallAtK(1, specials, pad, unk),
        RecallAtK(3, specials, pad, unk),
        RecallAtK(1, specials, pad, unk, exclude_oov=True),
        RecallAtK(3, specials, pad, unk, exclude_oov=True),
        Perplexity(pad, unk),
        TokenCount(pad, unk),
        TokenCount(pad, unk, oov=True),
    ]
