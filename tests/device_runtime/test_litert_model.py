"""Tests for the LiteRT trainer and predictor (device_runtime/litert_model.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from fresh_interpreter import run_fresh

from device_runtime.litert_model import (
    EvalCounts,
    LiteRTModelError,
    LiteRTPredictor,
    LiteRTTrainer,
    custom_op_names,
)
from model import MaskedCrossEntropy, ModelConfig, build_model
from model.tflite_convert import convert_inference_model, convert_training_model
from model.tflite_training import KeyboardTrainingModule, TrainingShape
from wire.manifest import MANIFEST_FORMAT_VERSION, ManifestError, PlanManifest, TensorSpec, sha256_file, write_manifest

V, B, T = 30, 4, 8
CONFIG = ModelConfig.from_preset("tiny", vocab_size=V)
LR = 0.5


@pytest.fixture(scope="module")
def start() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in build_model(CONFIG).get_weights()]


@pytest.fixture(scope="module")
def train_bytes(start: list[np.ndarray]) -> bytes:
    return convert_training_model(KeyboardTrainingModule(CONFIG, TrainingShape(B, T), start))


@pytest.fixture(scope="module")
def infer_bytes(start: list[np.ndarray]) -> bytes:
    return convert_inference_model(CONFIG, start, T, quantization="none")


@pytest.fixture()
def trainer(train_bytes: bytes) -> LiteRTTrainer:
    return LiteRTTrainer(train_bytes)


def _manifest(trainer: LiteRTTrainer, files: dict[str, str], **overrides: Any) -> PlanManifest:
    manifest = PlanManifest(
        format_version=MANIFEST_FORMAT_VERSION,
        model_version="test",
        model_config=CONFIG.to_dict(),
        tensors=tuple(TensorSpec(f"t{i}", s, "float32") for i, s in enumerate(trainer.weight_shapes)),
        batch_size=B,
        seq_len=T,
        signatures={"train": {"inputs": ["inputs"], "outputs": ["loss"]}},
        hyperparameters={"learning_rate": LR},
        tokenizer_sha256="0" * 64,
        files=files,
    )
    return dataclasses.replace(manifest, **overrides)


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, V, size=(B, T)).astype(np.int32)
    targets = rng.integers(4, V, size=(B, T)).astype(np.int32)
    targets[2, 4:] = CONFIG.pad_id
    return inputs, targets


def test_trainer_reads_shapes_from_the_model(trainer: LiteRTTrainer) -> None:
    assert (trainer.batch_size, trainer.seq_len, trainer.vocab_size) == (B, T, V)
    assert trainer.weight_shapes == tuple(tuple(w.shape) for w in build_model(CONFIG).weights)
    assert trainer.parameter_count == build_model(CONFIG).count_params()


def test_trainer_train_steps_match_keras_sgd(trainer: LiteRTTrainer, start: list[np.ndarray]) -> None:
    keras = build_model(CONFIG)
    keras.set_weights(start)
    keras.compile(optimizer=tf.keras.optimizers.SGD(LR), loss=MaskedCrossEntropy(CONFIG.pad_id))
    for step in range(3):
        inputs, targets = _batch(step)
        assert trainer.train_step(inputs, targets, LR) == pytest.approx(float(keras.train_on_batch(inputs, targets)))
    for ours, theirs in zip(trainer.get_weights(), keras.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_trainer_get_set_weights_round_trip(trainer: LiteRTTrainer, start: list[np.ndarray]) -> None:
    got = trainer.get_weights()
    for ours, theirs in zip(got, start, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    got[0][0, 0] = 123.0  # a copy: changing it changes nothing inside
    assert trainer.get_weights()[0][0, 0] != 123.0
    other = [np.full(w.shape, 0.01 * i, np.float64) for i, w in enumerate(start)]  # float64 is cast
    trainer.set_weights(other)
    for ours, theirs in zip(trainer.get_weights(), other, strict=True):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs.astype(np.float32))


def test_trainer_evaluate_sums_over_batches(trainer: LiteRTTrainer) -> None:
    first, second = (trainer.evaluate(*_batch(s)) for s in (1, 2))
    assert first.tokens == B * T - 4
    total = first.plus(second)
    assert total.tokens == first.tokens + second.tokens
    assert total.loss_sum == pytest.approx(first.loss_sum + second.loss_sum)
    assert 0 <= total.correct_at_1 <= total.correct_at_3 <= total.tokens
    assert first.loss == pytest.approx(first.loss_sum / first.tokens)
    assert EvalCounts(0.0, 0, 0, 0).loss == 0.0


def test_trainer_evaluate_leaves_weights_alone(trainer: LiteRTTrainer, start: list[np.ndarray]) -> None:
    trainer.evaluate(*_batch(3))
    trainer.infer([2, 5, 6])
    for ours, theirs in zip(trainer.get_weights(), start, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_predictor_and_trainer_infer_agree_with_keras(
    trainer: LiteRTTrainer, infer_bytes: bytes, start: list[np.ndarray]
) -> None:
    keras = build_model(CONFIG)
    keras.set_weights(start)
    predictor = LiteRTPredictor(infer_bytes)
    context = [2, 9, 14, 5]
    expected = keras(np.array([context], np.int32))[0, -1].numpy()
    for runner in (trainer, predictor):
        np.testing.assert_allclose(runner.infer(context), expected, rtol=1e-5, atol=1e-5)
    long = list(range(4, 4 + 2 * T))  # longer than T: the last T ids are the context
    expected_long = keras(np.array([long[-T:]], np.int32))[0, -1].numpy()
    np.testing.assert_allclose(predictor.infer(long), expected_long, rtol=1e-5, atol=1e-5)


def test_trainer_and_predictor_load_from_a_path(tmp_path: Path, train_bytes: bytes, infer_bytes: bytes) -> None:
    (tmp_path / "train.tflite").write_bytes(train_bytes)
    (tmp_path / "infer.tflite").write_bytes(infer_bytes)
    assert LiteRTTrainer(tmp_path / "train.tflite").batch_size == B
    assert LiteRTPredictor(tmp_path / "infer.tflite").vocab_size == V


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (np.zeros((B, T + 1), np.int32), r"inputs has shape \(4, 9\), the model takes \(4, 8\)"),
        (np.zeros((B * T,), np.int32), "inputs has shape"),
        (np.zeros((B, T), np.float32), "integer token ids"),
        (np.full((B, T), V, np.int32), r"outside \[0, 30\): min 30, max 30"),
        (np.full((B, T), -1, np.int64), "outside"),
    ],
)
def test_trainer_train_step_rejects_bad_batches(trainer: LiteRTTrainer, inputs: np.ndarray, message: str) -> None:
    before = trainer.get_weights()
    with pytest.raises(LiteRTModelError, match=message):
        trainer.train_step(inputs, np.zeros((B, T), np.int32), LR)
    with pytest.raises(LiteRTModelError, match=message.replace("inputs", "targets")):
        trainer.evaluate(np.zeros((B, T), np.int32), inputs)
    for ours, theirs in zip(trainer.get_weights(), before, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf")])
def test_trainer_train_step_rejects_bad_learning_rates(trainer: LiteRTTrainer, lr: float) -> None:
    with pytest.raises(LiteRTModelError, match="learning_rate"):
        trainer.train_step(*_batch(0), lr)


def test_trainer_set_weights_names_the_bad_tensor(trainer: LiteRTTrainer, start: list[np.ndarray]) -> None:
    with pytest.raises(LiteRTModelError, match="got 5 tensors, the model has 6"):
        trainer.set_weights(start[:5])
    bad_shape = [*start[:2], start[2].T, *start[3:]]
    with pytest.raises(LiteRTModelError, match=r"weight 2 has shape \(96, 16\), the model expects \(16, 96\)"):
        trainer.set_weights(bad_shape)
    with pytest.raises(LiteRTModelError, match="weight 0 must be floating point"):
        trainer.set_weights([start[0].astype(np.int32), *start[1:]])
    nan = start[1].copy()
    nan[3] = np.nan
    with pytest.raises(LiteRTModelError, match="weight 1 holds non-finite"):
        trainer.set_weights([start[0], nan, *start[2:]])
    for ours, theirs in zip(trainer.get_weights(), start, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("context", "message"), [([], "non-empty"), ([[2, 3]], "1-D"), ([2, 99], "outside"), ([2.0, 4.0], "integer")]
)
def test_infer_rejects_bad_contexts(trainer: LiteRTTrainer, context: Any, message: str) -> None:
    with pytest.raises(LiteRTModelError, match=message):
        trainer.infer(context)


def test_predictor_infer_batch_is_bounded(infer_bytes: bytes) -> None:
    predictor = LiteRTPredictor(infer_bytes)
    assert predictor.infer_batch_of([[2, 4]]).shape == (1, V)
    with pytest.raises(LiteRTModelError, match="1 to 1 contexts, got 2"):
        predictor.infer_batch_of([[2], [3]])


def test_trainer_refuses_an_inference_model(infer_bytes: bytes) -> None:
    with pytest.raises(LiteRTModelError, match="not a training model.*train"):
        LiteRTTrainer(infer_bytes)


@pytest.mark.parametrize("data", [b"", b"not a model at all", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8])
def test_loading_garbage_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(LiteRTModelError):
        LiteRTPredictor(data)


def test_loading_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LiteRTModelError, match="no such model file"):
        LiteRTTrainer(tmp_path / "train.tflite")


def test_a_model_needing_flex_ops_is_refused_by_name() -> None:
    det = tf.function(lambda x: {"scores": tf.linalg.det(x)}, input_signature=[tf.TensorSpec((2, 2, 2), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([det.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flex = converter.convert()
    assert custom_op_names(flex) == ["FlexMatrixDeterminant"]
    with pytest.raises(LiteRTModelError, match=r"custom ops \['FlexMatrixDeterminant'\].*standalone LiteRT"):
        LiteRTPredictor(flex)


def test_a_flex_model_without_the_scan_is_refused_by_name_where_tensorflow_is_not_loaded(tmp_path: Path) -> None:
    """``fedkeys suggest`` skips the up-front scan (its schema import is slow); LiteRT alone refuses the model."""
    det = tf.function(lambda x: {"scores": tf.linalg.det(x)}, input_signature=[tf.TensorSpec((2, 2, 2), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([det.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    (tmp_path / "flex.tflite").write_bytes(converter.convert())
    script = (
        "from device_runtime.litert_model import LiteRTModelError, LiteRTPredictor\n"
        "try:\n"
        f"    LiteRTPredictor({str(tmp_path / 'flex.tflite')!r}, scan_custom_ops=False)\n"
        "except LiteRTModelError as err:\n"
        "    print(err)\n"
    )
    run = run_fresh(script)
    assert run.stdout.splitlines() == [
        f"{tmp_path / 'flex.tflite'}: needs custom ops ['FlexMatrixDeterminant'], which the standalone LiteRT "
        "runtime lacks",
    ]
    assert run.imported == []


def test_custom_op_names_of_the_training_model_is_empty(train_bytes: bytes) -> None:
    assert custom_op_names(train_bytes) == []


def test_trainer_checks_the_manifest(trainer: LiteRTTrainer, train_bytes: bytes) -> None:
    files = {"train.tflite": "0" * 64}
    LiteRTTrainer(train_bytes, _manifest(trainer, files))
    with pytest.raises(LiteRTModelError, match=r"built for \(batch, seq_len\) \(4, 8\), the manifest says \(8, 8\)"):
        LiteRTTrainer(train_bytes, _manifest(trainer, files, batch_size=8))
    tensors = _manifest(trainer, files).tensors
    shrunk = (TensorSpec("t0", (29, 16), "float32"), *tensors[1:])
    with pytest.raises(LiteRTModelError, match="do not match the manifest"):
        LiteRTTrainer(train_bytes, _manifest(trainer, files, tensors=shrunk))


def test_trainer_from_plan_verifies_every_file(trainer: LiteRTTrainer, train_bytes: bytes, tmp_path: Path) -> None:
    (tmp_path / "train.tflite").write_bytes(train_bytes)
    write_manifest(tmp_path, _manifest(trainer, {"train.tflite": sha256_file(tmp_path / "train.tflite")}))
    assert LiteRTTrainer.from_plan(tmp_path).manifest.files == {"train.tflite": sha256_file(tmp_path / "train.tflite")}
    (tmp_path / "train.tflite").write_bytes(train_bytes[:-1] + b"\x00")
    with pytest.raises(ManifestError, match="does not match"):
        LiteRTTrainer.from_plan(tmp_path)
    write_manifest(tmp_path, _manifest(trainer, {"other.bin": "0" * 64}))
    with pytest.raises(ManifestError, match="other.bin: listed in the manifest but missing"):
        LiteRTTrainer.from_plan(tmp_path)
