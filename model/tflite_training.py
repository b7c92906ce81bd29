"""The keyboard model as a ``tf.Module`` whose signatures a phone runs to train.

Federated learning needs the phone to run the optimizer step itself (McMahan
et al. 2017; Bonawitz et al. 2019, where the device receives a "plan" and a
checkpoint and returns an update). TFLite can do that when the training step
is a signature of the converted model and the weights are resource variables
inside it. This module defines those signatures; ``model.tflite_convert``
turns it into bytes with TFLite built-in ops only, so the standalone LiteRT
runtime (no Flex/Select-TF delegate) can execute every one of them.

Two TF 2.14 limits shape the design:

- an LSTM/CIFG's gradient needs Flex ops (``TensorList``/``While``) unless
  the recurrence is unrolled with a fixed batch size and sequence length, so
  the module builds ``build_model(config, unroll=True, batch_size=B,
  seq_len=T)``: every signature has static shapes;
- ``tf.raw_ops.Save``/``Restore`` need Flex, so weights move in and out
  through the ``get_weights``/``set_weights`` signatures instead of files.

Signatures (names are :data:`SIGNATURES`; shapes with B = batch size, T =
sequence length, V = vocabulary size):

``train(inputs (B, T) int32, targets (B, T) int32, learning_rate () float32)
-> {loss: () float32}``
    One plain SGD step ``w <- w - lr * dL/dw`` on every trainable tensor.
    ``loss`` is the batch's mean cross-entropy over non-pad targets
    (``model.MaskedCrossEntropy``) *before* the step, as Keras'
    ``train_on_batch`` reports it. An all-pad batch has loss 0 and a zero
    gradient (the contract's padding of a last partial batch).

``evaluate(inputs (B, T) int32, targets (B, T) int32) -> {loss_sum () float32,
tokens () int32, correct_at_1 () int32, correct_at_3 () int32}``
    Sums, so a device adds them over batches: cross-entropy summed over
    non-pad targets, the number of non-pad targets, and the targets ranked
    first / within the first three among the non-special words, with ties to
    the lower id (``model.metrics.target_rank``; a special target such as
    ``<unk>`` is never a hit). ``correct_at_k / tokens`` is ``recall_at_k``
    of ``model.keyboard_metrics``.

``infer(token_ids (N, T) int32, lengths (N,) int32) -> {scores (N, V) float32}``
    The next-word logits after the first ``lengths`` tokens of each
    right-padded context (``lengths`` clipped to ``[1, T]``). The recurrence
    is causal, so right padding never changes the scores. Special ids are not
    masked: the keyboard drops them when it ranks (``model.top_k_words``).
    N is 1 in the training model (the suggestion strip's one context).

``get_weights() -> {w000: ..., w001: ..., ...}`` and ``set_weights(w000, w001,
...) -> {count: () int32}``
    Every trainable tensor, float32, named ``w`` + its 3-digit index in
    :func:`weight_specs` order, which is ``build_model(config).weights`` order
    (the checkpoint's and the wire format's order). ``count`` is the number of
    tensors set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from model.checkpoint import assign_weights
from model.config import ModelConfig
from model.keras_model import MaskedCrossEntropy, build_model
from model.metrics import target_rank

TRAIN = "train"
EVALUATE = "evaluate"
INFER = "infer"
GET_WEIGHTS = "get_weights"
SET_WEIGHTS = "set_weights"
SIGNATURES: tuple[str, ...] = (TRAIN, EVALUATE, INFER, GET_WEIGHTS, SET_WEIGHTS)
"""Signature names of the training model, in a fixed order."""

_TOP_K = (1, 3)


def weight_key(index: int) -> str:
    """The signature tensor name of weight ``index`` (``w000``, ``w001``, ...)."""
    return f"w{index:03d}"


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """One trainable tensor: its signature key, Keras variable name, shape and dtype."""

    key: str
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class TrainingShape:
    """The static shapes the unrolled training graph is built for."""

    batch_size: int
    seq_len: int

    def __post_init__(self) -> None:
        for name in ("batch_size", "seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainingShape.{name} must be a positive integer, got {value!r}")


def weight_specs(config: ModelConfig) -> tuple[WeightSpec, ...]:
    """The model's trainable tensors in checkpoint order (builds a throwaway model)."""
    model = build_model(config)
    return tuple(
        WeightSpec(key=weight_key(i), name=v.name, shape=tuple(int(d) for d in v.shape), dtype=v.dtype.name)
        for i, v in enumerate(model.weights)
    )


def _forward_at(model: tf.keras.Model, token_ids: tf.Tensor, lengths: tf.Tensor, seq_len: int) -> tf.Tensor:
    logits = model(token_ids, training=False)  # (N, T, V)
    last = tf.clip_by_value(lengths, 1, seq_len) - 1  # (N,)
    return tf.gather(logits, last, batch_dims=1)  # (N, V)


class KeyboardTrainingModule(tf.Module):
    """The training, evaluation, inference and weight signatures over one set of variables.

    ``weights`` (checkpoint order) become the variables' initial values, so the
    converted model starts from them; a device replaces them with
    ``set_weights`` from the server's checkpoint anyway.
    """

    def __init__(
        self,
        config: ModelConfig,
        shape: TrainingShape,
        weights: Sequence[np.ndarray] | None = None,
        *,
        seed: int = 0,
        source: str = "weights",
    ) -> None:
        super().__init__(name="keyboard_training")
        self.config = config
        self.shape = shape
        b, t = shape.batch_size, shape.seq_len
        self.model = build_model(config, seed=seed, unroll=True, batch_size=b, seq_len=t)
        if weights is not None:
            assign_weights(self.model, list(weights), source)
        self._loss = MaskedCrossEntropy(config.pad_id)
        self.specs = tuple(
            WeightSpec(weight_key(i), v.name, tuple(int(d) for d in v.shape), v.dtype.name)
            for i, v in enumerate(self.model.weights)
        )
        batch = tf.TensorSpec((b, t), tf.int32, name="inputs")
        targets = tf.TensorSpec((b, t), tf.int32, name="targets")
        self.train = tf.function(
            self._train, input_signature=[batch, targets, tf.TensorSpec((), tf.float32, name="learning_rate")]
        )
        self.evaluate = tf.function(self._evaluate, input_signature=[batch, targets])
        self.infer = tf.function(
            self._infer,
            input_signature=[
                tf.TensorSpec((1, t), tf.int32, name="token_ids"),
                tf.TensorSpec((1,), tf.int32, name="lengths"),
            ],
        )
        self.get_weights = tf.function(self._get_weights, input_signature=[])
        self.set_weights = tf.function(
            self._set_weights,
            input_signature=[tf.TensorSpec(s.shape, tf.float32, name=s.key) for s in self.specs],
        )

    def _train(self, inputs: tf.Tensor, targets: tf.Tensor, learning_rate: tf.Tensor) -> dict[str, tf.Tensor]:
        variables = self.model.weights  # all trainable (the contract), checkpoint order
        with tf.GradientTape() as tape:
            logits = self.model(inputs, training=True)  # (B, T, V)
            loss = self._loss(targets, logits)  # ()
        grads = tape.gradient(loss, variables)
        for variable, grad in zip(variables, grads, strict=True):
            # The tied embedding's gradient arrives as IndexedSlices (from the gather) plus a dense
            # part (from the output projection); densifying keeps the step one builtin SUB per tensor.
            variable.assign_sub(learning_rate * tf.convert_to_tensor(grad))
        return {"loss": loss}

    def _evaluate(self, inputs: tf.Tensor, targets: tf.Tensor) -> dict[str, tf.Tensor]:
        config = self.config
        logits = self.model(inputs, training=False)  # (B, T, V)
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)  # (B, T)
        counted = tf.not_equal(targets, config.pad_id)  # (B, T)
        rank = target_rank(logits, targets, config.special_ids)  # (B, T)
        special = tf.reduce_any(
            tf.equal(targets[..., tf.newaxis], tf.constant(list(config.special_ids), tf.int32)), axis=-1
        )  # (B, T)
        scorable = tf.logical_and(counted, tf.logical_not(special))
        out = {
            "loss_sum": tf.reduce_sum(tf.where(counted, per_token, tf.zeros_like(per_token))),
            "tokens": tf.reduce_sum(tf.cast(counted, tf.int32)),
        }
        for k in _TOP_K:
            out[f"correct_at_{k}"] = tf.reduce_sum(tf.cast(tf.logical_and(scorable, rank < k), tf.int32))
        return out

    def _infer(self, token_ids: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": _forward_at(self.model, token_ids, lengths, self.shape.seq_len)}

    def _get_weights(self) -> dict[str, tf.Tensor]:
        return {s.key: tf.identity(v) for s, v in zip(self.specs, self.model.weights, strict=True)}

    def _set_weights(self, *tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        for variable, value in zip(self.model.weights, tensors, strict=True):
            variable.assign(value)
        return {"count": tf.constant(len(tensors), tf.int32)}

    def concrete_signatures(self) -> dict[str, Any]:
        """Signature name -> concrete function, for ``tf.saved_model.save``."""
        return {
            TRAIN: self.train.get_concrete_function(),
            EVALUATE: self.evaluate.get_concrete_function(),
            INFER: self.infer.get_concrete_function(),
            GET_WEIGHTS: self.get_weights.get_concrete_function(),
            SET_WEIGHTS: self.set_weights.get_concrete_function(),
        }


class KeyboardInferenceModule(tf.Module):
    """Only the ``infer`` signature, for the suggestion strip's quantized model.

    Its variables are never assigned, so the converter freezes them into
    constants, which is what weight quantization acts on.
    """

    def __init__(
        self, config: ModelConfig, seq_len: int, weights: Sequence[np.ndarray], *, batch_size: int = 1
    ) -> None:
        super().__init__(name="keyboard_inference")
        TrainingShape(batch_size, seq_len)  # validates both
        self.config = config
        self.seq_len = seq_len
        self.model = build_model(config, unroll=True, batch_size=batch_size, seq_len=seq_len)
        assign_weights(self.model, list(weights), "weights")
        self.infer = tf.function(
            self._infer,
            input_signature=[
                tf.TensorSpec((batch_size, seq_len), tf.int32, name="token_ids"),
                tf.TensorSpec((batch_size,), tf.int32, name="lengths"),
            ],
        )

    def _infer(self, token_ids: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": _forward_at(self.model, token_ids, lengths, self.seq_len)}

    def concrete_signatures(self) -> dict[str, Any]:
        return {INFER: self.infer.get_concrete_function()}
