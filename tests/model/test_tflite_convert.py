"""Tests for TFLite conversion with built-in ops only (model/tflite_convert.py)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from model.config import ModelConfig
from model.keras_model import build_model
from model.tflite_convert import QUANTIZATIONS, ConversionError, convert_inference_model, convert_training_model
from model.tflite_training import KeyboardTrainingModule, TrainingShape

# Big enough that every matrix has >= 1024 elements, the converter's threshold for quantizing a weight.
V, T = 200, 8
CONFIG = ModelConfig.from_preset("tiny", vocab_size=V)


def _op_codes(flatbuffer: bytes) -> list[tuple[int, str]]:
    model = schema.Model.GetRootAs(flatbuffer, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        custom = code.CustomCode()
        codes.append((max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), custom.decode() if custom else ""))
    return codes


def _analyzer_report(flatbuffer: bytes) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer)
    return out.getvalue()


@pytest.fixture(scope="module")
def weights() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in build_model(CONFIG).get_weights()]


@pytest.fixture(scope="module")
def inference_models(weights: list[np.ndarray]) -> dict[str, bytes]:
    return {q: convert_inference_model(CONFIG, weights, T, quantization=q) for q in QUANTIZATIONS}


def test_convert_training_model_uses_builtin_ops_only(weights: list[np.ndarray]) -> None:
    flatbuffer = convert_training_model(KeyboardTrainingModule(CONFIG, TrainingShape(2, T), weights))
    codes = _op_codes(flatbuffer)
    assert codes, "no operators parsed"
    assert [name for code, name in codes if code == schema.BuiltinOperator.CUSTOM] == []
    report = _analyzer_report(flatbuffer)
    assert "Subgraph#0" in report  # the analyzer parsed it
    assert "Flex" not in report
    # The standalone runtime (no Flex delegate) builds and runs the training step.
    train = Interpreter(model_content=flatbuffer).get_signature_runner("train")
    ids = np.full((2, T), 5, np.int32)
    assert np.isfinite(float(train(inputs=ids, targets=ids, learning_rate=np.float32(0.1))["loss"]))


def test_convert_inference_model_quantization_shrinks_the_file(
    inference_models: dict[str, bytes], weights: list[np.ndarray]
) -> None:
    sizes = {q: len(b) for q, b in inference_models.items()}
    assert sizes["int8"] < sizes["float16"] < sizes["none"]
    parameter_bytes = 4 * sum(w.size for w in weights)
    assert sizes["none"] > parameter_bytes  # float32 weights are all in the file


def _infer(flatbuffer: bytes, contexts: np.ndarray) -> np.ndarray:
    runner = Interpreter(model_content=flatbuffer).get_signature_runner("infer")
    rows = []
    for context in contexts:
        out = runner(token_ids=context[np.newaxis], lengths=np.array([T], np.int32))["scores"]
        rows.append(out[0])
    return np.stack(rows)  # (N, V)


def test_convert_inference_model_matches_keras_and_quantized_stays_close(
    inference_models: dict[str, bytes], weights: list[np.ndarray]
) -> None:
    contexts = np.random.default_rng(1).integers(4, V, size=(20, T)).astype(np.int32)
    model = build_model(CONFIG)
    model.set_weights(weights)
    expected = model(contexts)[:, -1].numpy()  # (N, V)
    np.testing.assert_allclose(_infer(inference_models["none"], contexts), expected, rtol=1e-5, atol=1e-5)
    spread = float(np.std(expected))
    for q, tolerance in (("float16", 0.01), ("int8", 0.1)):
        error = float(np.max(np.abs(_infer(inference_models[q], contexts) - expected)))
        assert error < tolerance * spread, f"{q}: max error {error} against logit spread {spread}"


def test_convert_inference_model_rejects_an_unknown_quantization(weights: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="'int4'"):
        convert_inference_model(CONFIG, weights, T, quantization="int4")


class _NeedsFlex(tf.Module):
    """A module whose only op has a Flex (Select TF) kernel but no TFLite built-in one."""

    @tf.function(input_signature=[tf.TensorSpec((2, 2, 2), tf.float32)])
    def det(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"out": tf.linalg.det(x)}

    def concrete_signatures(self) -> dict[str, Any]:
        return {"det": self.det.get_concrete_function()}


def test_convert_training_model_refuses_ops_without_builtin_kernels() -> None:
    with pytest.raises(ConversionError, match="built-in ops only.*MatrixDeterminant"):
        convert_training_model(_NeedsFlex())  # duck-typed: only concrete_signatures() is used
