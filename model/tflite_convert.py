"""Converting the keyboard modules to TFLite flatbuffers with built-in ops only.

Only ``TFLITE_BUILTINS`` is offered to the converter, never ``SELECT_TF_OPS``:
an op without a TFLite kernel fails the conversion here, on the build
machine, instead of failing on a phone whose runtime (standalone LiteRT) has
no Flex delegate. The unrolled recurrence and the weight signatures of
``model.tflite_training`` are what make that possible on TF 2.14.

The inference model for the suggestion strip is weight-quantized (post-
training dynamic range, as Gboard ships a quantized model; Hard et al. 2018):

- ``int8``: weights stored as int8 with a float scale per tensor/channel,
  about a quarter of the float32 bytes;
- ``float16``: weights stored as float16, half the bytes, dequantized to
  float32 when the interpreter is built, so the arithmetic is float32's;
- ``none``: float32, the reference.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import tensorflow as tf

from fedkeys_errors import FedkeysError
from model.config import ModelConfig
from model.tflite_training import KeyboardInferenceModule, KeyboardTrainingModule

logger = logging.getLogger(__name__)

Quantization = Literal["int8", "float16", "none"]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)


class ConversionError(FedkeysError, ValueError):
    """The module cannot be converted with TFLite built-in ops only."""


def _convert(module: tf.Module, signatures: dict[str, object], *, training: bool, quantization: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="fedkeys-savedmodel-") as tmp:
        saved = Path(tmp) / "saved_model"
        tf.saved_model.save(module, str(saved), signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=list(signatures))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if training:
            # Weights stay resource variables that ``train``/``set_weights`` assign.
            converter.experimental_enable_resource_variables = True
        if quantization in ("int8", "float16"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            flatbuffer: bytes = converter.convert()
        except Exception as err:  # the converter raises its own ConverterError or a RuntimeError
            raise ConversionError(f"TFLite conversion with built-in ops only failed: {_gist(err)}") from err
    return flatbuffer


def _gist(err: Exception) -> str:
    """The converter's line naming the ops it could not map, else its first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if line.startswith(("Custom ops:", "Flex ops:"))]
    return "; ".join(named) or (lines[0] if lines else type(err).__name__)


def convert_training_model(module: KeyboardTrainingModule) -> bytes:
    """``train.tflite``: every signature of ``module``, float32, built-in ops only."""
    flatbuffer = _convert(module, module.concrete_signatures(), training=True, quantization="none")
    logger.info("converted the training model: %d bytes", len(flatbuffer))
    return flatbuffer


def convert_inference_model(
    config: ModelConfig,
    weights: Sequence[np.ndarray],
    seq_len: int,
    *,
    quantization: str = "int8",
    batch_size: int = 1,
) -> bytes:
    """``infer.tflite``: the ``infer`` signature with weights frozen and quantized as asked."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    module = KeyboardInferenceModule(config, seq_len, weights, batch_size=batch_size)
    flatbuffer = _convert(module, module.concrete_signatures(), training=False, quantization=quantization)
    logger.info("converted the inference model (%s): %d bytes", quantization, len(flatbuffer))
    return flatbuffer
