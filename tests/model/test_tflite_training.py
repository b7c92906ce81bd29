"""Tests for the on-device training signatures (model/tflite_training.py), run on standalone LiteRT."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from model.checkpoint import CheckpointError
from model.config import ModelConfig
from model.keras_model import MaskedCrossEntropy, build_model
from model.metrics import RecallAtK
from model.tflite_convert import convert_training_model
from model.tflite_training import (
    SIGNATURES,
    KeyboardTrainingModule,
    TrainingShape,
    weight_key,
    weight_specs,
)

V, B, T = 30, 4, 8
CONFIG = ModelConfig.from_preset("tiny", vocab_size=V)
LR = 0.5


def _weights(config: ModelConfig, seed: int) -> list[np.ndarray]:
    """Weights that are no seed's initial ones, so nothing passes by accident."""
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in build_model(config).get_weights()]


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, V, size=(B, T)).astype(np.int32)
    targets = rng.integers(4, V, size=(B, T)).astype(np.int32)
    targets[0, 5:] = CONFIG.pad_id  # padding never counts
    targets[1, 2] = CONFIG.unk_id  # an OOV target is counted but never a hit
    targets[3, :] = CONFIG.pad_id  # an all-pad row
    return inputs, targets


@pytest.fixture(scope="module")
def start() -> list[np.ndarray]:
    return _weights(CONFIG, 1)


@pytest.fixture(scope="module")
def flatbuffer(start: list[np.ndarray]) -> bytes:
    return convert_training_model(KeyboardTrainingModule(CONFIG, TrainingShape(B, T), start))


def _interpreter(flatbuffer: bytes) -> Any:
    return Interpreter(model_content=flatbuffer)


def _get(interpreter: Any) -> list[np.ndarray]:
    out = interpreter.get_signature_runner("get_weights")()
    return [out[weight_key(i)] for i in range(len(out))]


def _keras(config: ModelConfig, weights: list[np.ndarray]) -> tf.keras.Model:
    model = build_model(config)
    model.set_weights(weights)
    model.compile(optimizer=tf.keras.optimizers.SGD(LR), loss=MaskedCrossEntropy(config.pad_id))
    return model


def test_training_model_signatures_are_the_documented_ones(flatbuffer: bytes) -> None:
    signatures = _interpreter(flatbuffer).get_signature_list()
    assert sorted(signatures) == sorted(SIGNATURES)
    assert sorted(signatures["train"]["inputs"]) == ["inputs", "learning_rate", "targets"]
    assert signatures["train"]["outputs"] == ["loss"]
    assert sorted(signatures["evaluate"]["outputs"]) == ["correct_at_1", "correct_at_3", "loss_sum", "tokens"]
    assert signatures["get_weights"]["outputs"] == [weight_key(i) for i in range(len(weight_specs(CONFIG)))]


def test_train_signature_matches_keras_sgd_for_three_steps(flatbuffer: bytes, start: list[np.ndarray]) -> None:
    interpreter = _interpreter(flatbuffer)
    train = interpreter.get_signature_runner("train")
    keras = _keras(CONFIG, start)
    for step in range(3):
        inputs, targets = _batch(10 + step)
        lite_loss = float(train(inputs=inputs, targets=targets, learning_rate=np.float32(LR))["loss"])
        keras_loss = float(keras.train_on_batch(inputs, targets))
        assert lite_loss == pytest.approx(keras_loss, rel=1e-5)
    lite, reference = _get(interpreter), keras.get_weights()
    for i, (ours, theirs) in enumerate(zip(lite, reference, strict=True)):
        assert not np.allclose(theirs, start[i]), f"weight {i} did not train"
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=f"weight {i}")


def test_train_signature_learning_rate_zero_keeps_weights(flatbuffer: bytes, start: list[np.ndarray]) -> None:
    interpreter = _interpreter(flatbuffer)
    inputs, targets = _batch(3)
    loss = interpreter.get_signature_runner("train")(inputs=inputs, targets=targets, learning_rate=np.float32(0))
    assert float(loss["loss"]) > 0
    for ours, theirs in zip(_get(interpreter), start, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_train_signature_all_pad_batch_has_zero_loss_and_no_step(flatbuffer: bytes, start: list[np.ndarray]) -> None:
    interpreter = _interpreter(flatbuffer)
    pad = np.full((B, T), CONFIG.pad_id, np.int32)
    loss = interpreter.get_signature_runner("train")(inputs=pad, targets=pad, learning_rate=np.float32(LR))
    assert float(loss["loss"]) == 0.0
    for ours, theirs in zip(_get(interpreter), start, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_evaluate_signature_matches_masked_loss_and_recall(flatbuffer: bytes, start: list[np.ndarray]) -> None:
    inputs, targets = _batch(4)
    out = _interpreter(flatbuffer).get_signature_runner("evaluate")(inputs=inputs, targets=targets)
    logits = _keras(CONFIG, start)(inputs)
    tokens = int(np.sum(targets != CONFIG.pad_id))
    assert int(out["tokens"]) == tokens
    mean = float(MaskedCrossEntropy(CONFIG.pad_id)(targets, logits))
    assert float(out["loss_sum"]) == pytest.approx(mean * tokens, rel=1e-5)
    for k in (1, 3):
        recall = RecallAtK(k, CONFIG.special_ids, CONFIG.pad_id, CONFIG.unk_id)
        recall.update_state(targets, logits)
        assert int(out[f"correct_at_{k}"]) == int(recall.numerator.numpy())
    assert int(out["correct_at_3"]) > int(out["correct_at_1"]) >= 0


def test_evaluate_signature_counts_a_sure_hit_and_never_an_unk(flatbuffer: bytes) -> None:
    """Weights whose every logit is 0 except a bias: the target with the top bias is a hit, <unk> never."""
    interpreter = _interpreter(flatbuffer)
    zeros = [np.zeros(s.shape, np.float32) for s in weight_specs(CONFIG)]
    bias = np.zeros(V, np.float32)
    bias[7] = 5.0
    bias[CONFIG.unk_id] = 9.0  # the best logit, but a special id is never suggested
    zeros[1] = bias  # w001 is the output bias (checkpoint order: embedding, bias, ...)
    interpreter.get_signature_runner("set_weights")(**{weight_key(i): w for i, w in enumerate(zeros)})
    inputs = np.full((B, T), 4, np.int32)
    targets = np.full((B, T), CONFIG.pad_id, np.int32)
    targets[0, :3] = [7, 5, CONFIG.unk_id]  # 7 ranks first; 5 third (after 7 and 4, ties to the lower id)
    out = interpreter.get_signature_runner("evaluate")(inputs=inputs, targets=targets)
    assert (int(out["tokens"]), int(out["correct_at_1"]), int(out["correct_at_3"])) == (3, 1, 2)


def test_infer_signature_matches_keras_at_the_context_end(flatbuffer: bytes, start: list[np.ndarray]) -> None:
    infer = _interpreter(flatbuffer).get_signature_runner("infer")
    keras = _keras(CONFIG, start)
    context = np.array([CONFIG.bos_id, 9, 14, 5], np.int32)
    expected = keras(context[np.newaxis])[0, -1].numpy()  # (V,)
    for filler in (CONFIG.pad_id, 17):  # right padding of any id never changes the scores
        ids = np.full((1, T), filler, np.int32)
        ids[0, : len(context)] = context
        scores = infer(token_ids=ids, lengths=np.array([len(context)], np.int32))["scores"]
        assert scores.shape == (1, V)
        np.testing.assert_allclose(scores[0], expected, rtol=1e-5, atol=1e-5)


def test_get_and_set_weights_round_trip(flatbuffer: bytes, start: list[np.ndarray]) -> None:
    interpreter = _interpreter(flatbuffer)
    for ours, theirs in zip(_get(interpreter), start, strict=True):
        np.testing.assert_array_equal(ours, theirs)  # the export's weights are the initial values
    other = _weights(CONFIG, 2)
    count = interpreter.get_signature_runner("set_weights")(**{weight_key(i): w for i, w in enumerate(other)})
    assert int(count["count"]) == len(other)
    for ours, theirs in zip(_get(interpreter), other, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_weight_specs_follow_checkpoint_order() -> None:
    specs = weight_specs(CONFIG)
    model = build_model(CONFIG)
    assert [s.name for s in specs] == [w.name for w in model.weights]
    assert [s.shape for s in specs] == [tuple(w.shape) for w in model.weights]
    assert [s.key for s in specs] == [f"w{i:03d}" for i in range(len(specs))]
    assert {s.dtype for s in specs} == {"float32"}


def test_training_module_rejects_weights_of_another_config() -> None:
    other = _weights(ModelConfig.from_preset("tiny", vocab_size=V, units=8), 0)
    with pytest.raises(CheckpointError, match="shape"):
        KeyboardTrainingModule(CONFIG, TrainingShape(B, T), other, source="ckpt")


@pytest.mark.parametrize(("batch_size", "seq_len"), [(0, 8), (4, 0), (True, 8), (4, 2.5)])
def test_training_shape_rejects_bad_values(batch_size: Any, seq_len: Any) -> None:
    with pytest.raises(ValueError, match="TrainingShape"):
        TrainingShape(batch_size, seq_len)


def test_lstm_training_model_converts_and_matches_keras_step() -> None:
    config = ModelConfig.from_preset("tiny", vocab_size=V, cell="lstm")
    start = _weights(config, 5)
    interpreter = _interpreter(convert_training_model(KeyboardTrainingModule(config, TrainingShape(B, T), start)))
    keras = _keras(config, start)
    inputs, targets = _batch(6)
    lite = interpreter.get_signature_runner("train")(inputs=inputs, targets=targets, learning_rate=np.float32(LR))
    assert float(lite["loss"]) == pytest.approx(float(keras.train_on_batch(inputs, targets)), rel=1e-5)
    for ours, theirs in zip(_get(interpreter), keras.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
