"""``fedkeys export tflite``: a run's checkpoint -> the on-device artifacts.

ART/train.tflite     the training plan: train, evaluate, infer, get_weights,
                     set_weights signatures, TFLite built-in ops only
ART/infer.tflite     the suggestion strip's weight-quantized inference model
ART/tokenizer.model  the run's tokenizer, so devices tokenize as training did
ART/manifest.json    ``wire.manifest.PlanManifest``: every tensor, signature,
                     shape, hyperparameter and file hash, and where the model
                     came from (``provenance``: the run, its kind and rounds,
                     what it and its start were trained on; from its summary)

The artifact is written under a temporary name and renamed into place when
complete. Before it is written, the converted training model is loaded in
the standalone LiteRT runtime and its ``get_weights`` must return the
checkpoint's weights bit for bit, so a broken conversion is never shipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from fedkeys.provenance import run_provenance
from fedkeys.run_dir import CHECKPOINT_DIR, TOKENIZER_FILE, RunDirError, staged_run_dir
from wire.manifest import (
    INFER_FILE,
    MANIFEST_FILE,
    MANIFEST_FORMAT_VERSION,
    TRAIN_FILE,
    ManifestError,
    PlanManifest,
    TensorSpec,
)

logger = logging.getLogger(__name__)

DEFAULT_QUANTIZATION = "int8"
"""Measured in bench/tflite_train.py: int8 is the smallest with top-1 agreement >= 99%."""


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``fedkeys export tflite`` builds; defaults in this one place."""

    batch_size: int = 16
    seq_len: int = 20
    learning_rate: float = 0.5  # the client SGD rate of `sim run --client-lr`; devices may be told another
    quantization: str = DEFAULT_QUANTIZATION

    def __post_init__(self) -> None:
        for name in ("batch_size", "seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.learning_rate > 0 and np.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be positive and finite, got {self.learning_rate!r}")
        if self.quantization not in ("int8", "float16", "none"):
            raise ValueError(f"quantization must be int8, float16 or none, got {self.quantization!r}")


def model_version(config_dict: dict[str, Any], weights: list[np.ndarray]) -> str:
    """A content id of the model: sha256 of the config and the float32 weights (16 hex digits)."""
    digest = hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode())
    for w in weights:
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _refuse_other_config(out: Path, config_dict: dict[str, Any], export: ExportConfig) -> None:
    """An existing plan of another model or shape is named, not silently replaced."""
    if not (out / MANIFEST_FILE).is_file():
        return
    try:
        existing = PlanManifest.from_json((out / MANIFEST_FILE).read_bytes())
    except ManifestError as err:
        raise ManifestError(f"{out / MANIFEST_FILE}: {err} (pass --overwrite to replace it)") from err
    if existing.model_config != config_dict:
        changed = sorted(
            k
            for k in set(existing.model_config) | set(config_dict)
            if existing.model_config.get(k) != config_dict.get(k)
        )
        details = ", ".join(f"{k}: {existing.model_config.get(k)!r} -> {config_dict.get(k)!r}" for k in changed)
        raise ManifestError(
            f"{out} holds a plan of another model configuration ({details}); pass --overwrite to replace it"
        )
    if (existing.batch_size, existing.seq_len) != (export.batch_size, export.seq_len):
        raise ManifestError(
            f"{out} holds a plan for (batch, seq_len) {(existing.batch_size, existing.seq_len)}, not "
            f"{(export.batch_size, export.seq_len)}; pass --overwrite to replace it"
        )


def export_tflite(run: Path, out: Path, export: ExportConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Convert RUN's checkpoint into ART (see the module docstring); returns sizes and the manifest."""
    from data_tools import WordTokenizer
    from device_runtime.litert_model import LiteRTPredictor, LiteRTTrainer
    from model.checkpoint import load_checkpoint
    from model.tflite_convert import convert_inference_model, convert_training_model
    from model.tflite_training import KeyboardTrainingModule, TrainingShape
    from wire.manifest import sha256_file, write_manifest

    run, out = Path(run), Path(out)
    checkpoint = run / CHECKPOINT_DIR
    tokenizer_path = run / TOKENIZER_FILE
    if not checkpoint.is_dir():
        raise RunDirError(f"{run} holds no neural checkpoint: {CHECKPOINT_DIR}/ is missing")
    if not tokenizer_path.is_file():
        raise RunDirError(f"{run} is not a fedkeys run directory: {TOKENIZER_FILE} is missing")
    provenance = run_provenance(run)  # a malformed summary is named before the slow conversion
    config, weights = load_checkpoint(checkpoint)
    tokenizer = WordTokenizer(tokenizer_path)
    if tokenizer.vocab_size != config.vocab_size:
        raise RunDirError(
            f"{run}: the tokenizer has {tokenizer.vocab_size} ids but the model's vocabulary is {config.vocab_size}"
        )
    if not overwrite:
        _refuse_other_config(out, config.to_dict(), export)
    module = KeyboardTrainingModule(
        config, TrainingShape(export.batch_size, export.seq_len), weights, source=str(checkpoint)
    )
    train_bytes = convert_training_model(module)
    infer_bytes = convert_inference_model(config, weights, export.seq_len, quantization=export.quantization)

    trainer = LiteRTTrainer(train_bytes)
    for i, (ours, theirs) in enumerate(zip(trainer.get_weights(), weights, strict=True)):
        if not np.array_equal(ours, theirs):
            raise RuntimeError(f"converted {TRAIN_FILE} does not hold the checkpoint's weight {i}")
    LiteRTPredictor(infer_bytes)  # loads on the standalone runtime

    with staged_run_dir(out, overwrite=overwrite) as staging:
        (staging / TRAIN_FILE).write_bytes(train_bytes)
        (staging / INFER_FILE).write_bytes(infer_bytes)
        shutil.copyfile(tokenizer_path, staging / TOKENIZER_FILE)
        manifest = PlanManifest(
            format_version=MANIFEST_FORMAT_VERSION,
            model_version=model_version(config.to_dict(), weights),
            model_config=config.to_dict(),
            tensors=tuple(TensorSpec(s.name, s.shape, s.dtype) for s in module.specs),
            batch_size=export.batch_size,
            seq_len=export.seq_len,
            signatures={
                name: {"inputs": sorted(io["inputs"]), "outputs": sorted(io["outputs"])}
                for name, io in sorted(trainer.signatures.items())
            },
            hyperparameters={
                "optimizer": "sgd",
                "learning_rate": export.learning_rate,
                "loss": "masked_cross_entropy",
                "inference_quantization": export.quantization,
                "infer_batch_size": 1,
            },
            tokenizer_sha256=tokenizer.sha256,
            files={name: sha256_file(staging / name) for name in (TRAIN_FILE, INFER_FILE, TOKENIZER_FILE)},
            provenance=provenance,
        )
        write_manifest(staging, manifest)
    parameter_bytes = 4 * trainer.parameter_count
    summary = {
        "out": str(out),
        "model_version": manifest.model_version,
        "parameters": trainer.parameter_count,
        "parameter_bytes": parameter_bytes,
        "train_tflite_bytes": len(train_bytes),
        "infer_tflite_bytes": len(infer_bytes),
        "infer_quantization": export.quantization,
        "infer_vs_parameter_bytes": round(len(infer_bytes) / parameter_bytes, 3),
        "batch_size": export.batch_size,
        "seq_len": export.seq_len,
        "provenance": provenance.to_dict(),
    }
    logger.info("exported %s -> %s: %s", run, out, summary)
    return summary
