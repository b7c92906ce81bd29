"""The keyboard metrics inside TFF's Keras model wrapper.

TFF aggregates each client's *unfinalized* metric values by summing them and
finalizes once (tff.learning's default metrics aggregator). These tests run the
wrapped model eagerly, without a federated execution context, so no TFF
``worker_binary`` is started.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from model import MaskedCrossEntropy, ModelConfig, build_model, keyboard_metrics

tff = pytest.importorskip("tensorflow_federated")

CONFIG = ModelConfig.from_preset("tiny", 24)


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(4, CONFIG.vocab_size, size=(6, 7), dtype=np.int32)  # (B, T)
    y = rng.integers(4, CONFIG.vocab_size, size=(6, 7), dtype=np.int32)
    y[:, 5:] = CONFIG.pad_id
    y[0, 0] = CONFIG.unk_id
    return x, y


def _tff_model(weights: list[np.ndarray]) -> Any:
    keras_model = build_model(CONFIG)
    keras_model.set_weights(weights)
    spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32))
    return tff.learning.models.from_keras_model(
        keras_model, loss=MaskedCrossEntropy(CONFIG.pad_id), input_spec=spec, metrics=keyboard_metrics(CONFIG)
    )


def _finalize(finalizer: Any, values: list[np.ndarray]) -> float:
    # TFF runs finalizers in graph mode (inside a TF computation); do the same.
    with tf.Graph().as_default():
        result = finalizer([tf.constant(v) for v in values])
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return float(session.run(result))


def test_keyboard_metrics_tff_summed_clients_equal_pooled_keras() -> None:
    weights = build_model(CONFIG, seed=3).get_weights()
    unfinalized = []
    for seed in (1, 2):  # two clients, each with its own wrapped model
        model = _tff_model(weights)
        model.forward_pass(_batch(seed), training=False)
        unfinalized.append(model.report_local_unfinalized_metrics())
    finalizers = model.metric_finalizers()

    pooled_model = build_model(CONFIG)
    pooled_model.set_weights(weights)
    x = np.concatenate([_batch(1)[0], _batch(2)[0]])
    y = np.concatenate([_batch(1)[1], _batch(2)[1]])
    logits = pooled_model(x)
    for metric in keyboard_metrics(CONFIG):
        name = metric.name
        summed = [a + b for a, b in zip(unfinalized[0][name], unfinalized[1][name], strict=True)]
        federated = _finalize(finalizers[name], summed)
        metric.update_state(y, logits)
        assert federated == pytest.approx(float(metric.result()), rel=1e-6), name


def test_keyboard_metrics_tff_reports_every_name() -> None:
    model = _tff_model(build_model(CONFIG).get_weights())
    names = set(model.metric_finalizers())
    assert {m.name for m in keyboard_metrics(CONFIG)} <= names
