"""The keyboard's word-level recurrent language model in Keras.

embedding -> recurrent layer(s) -> linear projection to the embedding size ->
logits against the transposed input embedding (plus a bias). Tying input and
output embeddings (Press & Wolf 2017; Inan et al. 2017) is what Gboard's model
does (Hard et al. 2018): the vocabulary's parameters, most of the model, are
stored, trained and uploaded once.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from model.cifg import CIFG, CIFGCell
from model.config import ModelConfig


class TiedEmbedding(tf.keras.layers.Layer):
    """Word embedding whose transpose also produces the output logits."""

    def __init__(self, vocab_size: int, dim: int, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.dim = dim
        self.seed = seed

    def build(self, input_shape: tf.TensorShape) -> None:
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.dim),
            initializer=tf.keras.initializers.RandomUniform(-0.05, 0.05, seed=self.seed),
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")
        self.built = True

    def call(self, inputs: tf.Tensor, transpose: bool = False) -> tf.Tensor:
        if transpose:
            # inputs (B, T, D) -> logits (B, T, V)
            return tf.einsum("btd,vd->btv", inputs, self.embeddings) + self.output_bias
        # inputs (B, T) int ids -> (B, T, D); gather is a TFLite built-in op.
        return tf.gather(self.embeddings, inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim, "seed": self.seed}


def _cell(config: ModelConfig, seed: int, layer: int) -> tf.keras.layers.Layer:
    # A fixed name keeps checkpoint weight names independent of how many models the process built.
    name = f"{config.cell}_cell_{layer}"
    if config.cell == "cifg":
        return CIFGCell(config.units, seed=seed, name=name)
    return tf.keras.layers.LSTMCell(
        config.units,
        name=name,
        kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=tf.keras.initializers.Orthogonal(seed=seed),
    )


def _recurrent_layer(config: ModelConfig, seed: int, layer: int, unroll: bool) -> tf.keras.layers.Layer:
    cell = _cell(config, seed, layer)
    if isinstance(cell, CIFGCell):
        # Input projection hoisted out of the recurrence; same variables as the RNN layer below.
        return CIFG(cell, unroll=unroll, name=f"rnn_{layer}")
    return tf.keras.layers.RNN(cell, return_sequences=True, unroll=unroll, name=f"rnn_{layer}")


def _dropout(x: tf.Tensor, rate: float, seed: int, after: str) -> tf.Tensor:
    """``x`` itself without dropout, so a model without it has exactly today's layers."""
    if rate == 0.0:
        return x
    return tf.keras.layers.Dropout(rate, seed=seed, name=f"dropout_{after}")(x)


def build_model(
    config: ModelConfig,
    *,
    seed: int = 0,
    unroll: bool = False,
    batch_size: int | None = None,
    seq_len: int | None = None,
    dropout: float = 0.0,
) -> tf.keras.Model:
    """The uncompiled model: int32 ids (B, T) -> logits (B, T, V).

    ``seed`` fixes the initial weights. ``unroll`` with a fixed ``batch_size``
    and ``seq_len`` gives a graph of matmuls without a while loop, which the
    on-device TFLite training export needs; variables and their order are the
    same either way, so checkpoints move freely between the two.

    ``dropout`` > 0 drops that share of the embedding's and of each recurrent
    layer's outputs while training (Zaremba et al. 2014, "Recurrent Neural
    Network Regularization": dropout on the non-recurrent connections only).
    It adds no variables, so its checkpoints load into a model without it; it
    is for central training (pretraining on proxy data), where a few million
    words overfit an unregularized model within a few epochs.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    ids = tf.keras.Input(shape=(seq_len,), batch_size=batch_size, dtype=tf.int32, name="token_ids")
    embedding = TiedEmbedding(config.vocab_size, config.embedding_dim, seed=seed, name="embedding")
    x = embedding(ids)  # (B, T, D)
    x = _dropout(x, dropout, seed, "embedding")
    for layer in range(config.num_layers):
        x = _recurrent_layer(config, seed + 1 + layer, layer, unroll)(x)  # (B, T, U)
        x = _dropout(x, dropout, seed + 1 + layer, f"rnn_{layer}")
    x = tf.keras.layers.Dense(
        config.embedding_dim,
        use_bias=False,
        kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed + 1 + config.num_layers),
        name="projection",
    )(x)  # (B, T, D)
    logits = embedding(x, transpose=True)  # (B, T, V)
    return tf.keras.Model(inputs=ids, outputs=logits, name=f"keyboard_{config.cell}")


class MaskedCrossEntropy(tf.keras.losses.Loss):
    """Mean next-word cross-entropy over the non-padding targets of a batch.

    ``tokens_per_batch`` divides every batch's summed loss by that one number instead of by the batch's own
    token count: with rows bucketed by length (``model.sequences.length_buckets``) a batch of 4-word rows
    holds a fifth of the tokens of a batch of 20-word rows, and dividing each by its own count would weigh
    each of its tokens five times as much. A constant keeps every token's weight equal across batches, as
    in unbucketed training on average.
    """

    def __init__(
        self,
        pad_id: int = 0,
        name: str = "masked_cross_entropy",
        tokens_per_batch: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if tokens_per_batch is not None and not tokens_per_batch > 0:
            raise ValueError(f"tokens_per_batch must be positive, got {tokens_per_batch!r}")
        self.pad_id = pad_id
        self.tokens_per_batch = tokens_per_batch

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(y_true, tf.int32)  # (B, T)
        # -log softmax(logits)[label] = logsumexp(logits) - logits[label]. Written out, not as
        # tf.nn.sparse_softmax_cross_entropy_with_logits: that CPU kernel is single-threaded
        # and computed 35% of a training step's CPU time here (small preset, 10k words,
        # batch 16); this form measured 14% less CPU per step. Same value to float rounding.
        picked = tf.gather(y_pred, labels, batch_dims=2)  # (B, T)
        per_token = tf.reduce_logsumexp(y_pred, axis=-1) - picked  # (B, T)
        mask = tf.cast(tf.not_equal(labels, self.pad_id), per_token.dtype)
        if self.tokens_per_batch is not None:
            return tf.reduce_sum(per_token * mask) / self.tokens_per_batch
        return tf.reduce_sum(per_token * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad_id": self.pad_id, "tokens_per_batch": self.tokens_per_batch}
