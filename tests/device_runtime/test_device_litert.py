"""A device training the real exported model through LiteRT, against a fake coordinator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from device_fakes import FakeCoordinator, make_device

from device_runtime import event_log as ev
from device_runtime.example_store import StoredExample
from device_runtime.litert_model import LiteRTTrainer
from model import ModelConfig, build_model
from model.tflite_convert import convert_training_model
from model.tflite_training import KeyboardTrainingModule, TrainingShape
from wire.manifest import PlanManifest, TensorSpec
from wire.protocol import Hyperparameters
from wire.update import decode_update, encode_weights

CONFIG = ModelConfig.from_preset("tiny", vocab_size=40)
B, T = 4, 6


@pytest.fixture(scope="module")
def plan() -> tuple[bytes, bytes, list[np.ndarray]]:
    """(manifest.json bytes, train.tflite bytes, initial weights) of a tiny exported model."""
    weights = [w.astype(np.float32) for w in build_model(CONFIG, seed=1).get_weights()]
    train = convert_training_model(KeyboardTrainingModule(CONFIG, TrainingShape(B, T), weights))
    trainer = LiteRTTrainer(train)
    manifest = PlanManifest(
        format_version=1,
        model_version="tiny-test",
        model_config=CONFIG.to_dict(),
        tensors=tuple(TensorSpec(f"w{i}", s, "float32") for i, s in enumerate(trainer.weight_shapes)),
        batch_size=B,
        seq_len=T,
        signatures=trainer.signatures,
        hyperparameters={},
        tokenizer_sha256="0" * 64,
        files={"train.tflite": hashlib.sha256(train).hexdigest()},
    )
    return manifest.to_json().encode(), train, weights


def test_device_trains_the_exported_model_through_litert(
    tmp_path: Path, plan: tuple[bytes, bytes, list[np.ndarray]]
) -> None:
    manifest, train, weights = plan
    coordinator = FakeCoordinator(plan=manifest, checkpoint=encode_weights(weights), train=train)
    coordinator.codec = "quant8"
    coordinator.hyper = Hyperparameters(local_epochs=3, learning_rate=1.0, max_rows=64)
    device = make_device(tmp_path, coordinator, real_trainer=True, examples=0)
    phrases = [[5, 6, 7, 8], [9, 10, 11], [5, 6, 12, 13, 14], [9, 10, 15]]
    device.add_examples([StoredExample(np.array(phrases[i % 4]), 1_700_000_000.0 - i) for i in range(12)])
    outcome = device.step()
    assert outcome.kind == ev.UPLOADED, outcome
    [(_, _, blob)] = coordinator.uploads
    message = decode_update(blob)
    assert message.codec == "quant8"
    assert message.shapes == tuple(w.shape for w in weights)
    assert message.weight == 3 * sum(len(phrases[i % 4]) for i in range(12))
    [report] = coordinator.reports
    metrics = report["metrics"]
    assert metrics["loss_after"] < metrics["loss_before"]
    assert metrics["upload_bytes"] < metrics["raw_bytes"] / 3
    assert any(np.abs(d).max() > 0 for d in message.decode_tensors())
