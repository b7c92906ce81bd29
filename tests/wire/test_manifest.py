"""Tests for the exported plan's manifest (wire/manifest.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wire.manifest import (
    MANIFEST_FILE,
    MANIFEST_FORMAT_VERSION,
    ManifestError,
    PlanManifest,
    TensorSpec,
    load_manifest,
    sha256_file,
    verify_bytes,
    verify_file,
    write_manifest,
)
from wire.provenance import ModelProvenance, TrainedOn

FILES = {"train.tflite": b"train model bytes", "infer.tflite": b"infer model bytes", "tokenizer.model": b"tok"}


def _manifest(**overrides: Any) -> PlanManifest:
    fields: dict[str, Any] = {
        "format_version": MANIFEST_FORMAT_VERSION,
        "model_version": "0123456789abcdef",
        "model_config": {"vocab_size": 30, "units": 32},
        "tensors": (TensorSpec("embedding/embeddings:0", (30, 16), "float32"), TensorSpec("bias:0", (30,), "float32")),
        "batch_size": 4,
        "seq_len": 8,
        "signatures": {"train": {"inputs": ["inputs", "learning_rate", "targets"], "outputs": ["loss"]}},
        "hyperparameters": {"optimizer": "sgd", "learning_rate": 0.5},
        "tokenizer_sha256": hashlib.sha256(FILES["tokenizer.model"]).hexdigest(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()},
    }
    return PlanManifest(**{**fields, **overrides})


@pytest.fixture()
def plan(tmp_path: Path) -> Path:
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    write_manifest(tmp_path, _manifest())
    return tmp_path


def test_manifest_json_round_trip() -> None:
    manifest = _manifest()
    text = manifest.to_json()
    assert PlanManifest.from_json(text) == manifest
    assert PlanManifest.from_json(text.encode()) == manifest
    assert json.loads(text)["tensors"][0] == {"name": "embedding/embeddings:0", "shape": [30, 16], "dtype": "float32"}


PROVENANCE = ModelProvenance(
    run="runs/fed",
    kind="simulation",
    rounds=8,
    trained_on=TrainedOn("data/shk", "train", 30, 9000),
    init_from="runs/pretrained",
    pretrained_on=TrainedOn("data/shk", "proxy", 12, 3456),
)


def test_manifest_with_provenance_round_trips() -> None:
    manifest = _manifest(provenance=PROVENANCE)
    text = manifest.to_json()
    assert json.loads(text)["provenance"]["pretrained_on"] == {
        "data": "data/shk", "split": "proxy", "users": 12, "tokens": 3456,
    }  # fmt: skip
    assert PlanManifest.from_json(text) == manifest
    assert PlanManifest.from_json(text).provenance == PROVENANCE


def test_manifest_without_provenance_is_written_and_read_as_before() -> None:
    """A manifest exported before provenance existed (no such key) still loads; one without is written alike."""
    old = json.loads(_manifest().to_json())
    assert "provenance" not in old
    assert PlanManifest.from_json(json.dumps(old)).provenance is None
    assert PlanManifest.from_json(json.dumps({**old, "provenance": None})) == _manifest()


@pytest.mark.parametrize(
    ("provenance", "message"),
    [
        ("runs/fed", "manifest provenance: provenance must be an object, got str"),
        ({**PROVENANCE.to_dict(), "kind": "<script>"}, "manifest provenance: kind must be a short lowercase name"),
        ({**PROVENANCE.to_dict(), "rounds": -3}, "manifest provenance: rounds must be an integer from 0"),
        ({**PROVENANCE.to_dict(), "extra": 1}, "manifest provenance: provenance has unknown fields extra"),
    ],
)
def test_manifest_with_bad_provenance_is_refused_by_name(provenance: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        PlanManifest.from_json(_json_with(provenance=provenance))


def test_manifest_parameter_count_sums_every_tensor() -> None:
    assert _manifest().parameter_count == 30 * 16 + 30


def test_load_manifest_verifies_every_file(plan: Path) -> None:
    assert load_manifest(plan) == _manifest()


def test_load_manifest_names_a_tampered_file(plan: Path) -> None:
    (plan / "infer.tflite").write_bytes(b"infer model bytes, changed")
    with pytest.raises(ManifestError, match=r"infer\.tflite: sha256 [0-9a-f]{64} does not match"):
        load_manifest(plan)
    assert load_manifest(plan, verify=False) == _manifest()  # reading without checking still works


def test_load_manifest_names_a_missing_file(plan: Path) -> None:
    (plan / "train.tflite").unlink()
    with pytest.raises(ManifestError, match=r"train\.tflite: listed in the manifest but missing"):
        load_manifest(plan)


def test_load_manifest_of_a_directory_without_one(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest.json is missing"):
        load_manifest(tmp_path)


def test_load_manifest_names_the_file_when_json_is_broken(plan: Path) -> None:
    (plan / MANIFEST_FILE).write_text('{"format_version": 1,')
    with pytest.raises(ManifestError, match=r"manifest\.json: manifest is not valid JSON"):
        load_manifest(plan)


def test_verify_file_accepts_the_right_hash(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 3_000_000)  # more than one read chunk
    digest = hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert sha256_file(path) == digest
    verify_file(path, digest)
    with pytest.raises(ManifestError, match="does not match"):
        verify_file(path, "0" * 64)


def _json_with(**changes: Any) -> str:
    data = json.loads(_manifest().to_json())
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 2}, "unsupported manifest format version 2"),
        ({"format_version": "1"}, "unsupported manifest format version '1'"),
        ({"format_version": True}, "unsupported manifest format version True"),
        ({"files": _DROP}, "missing files"),
        ({"extra": 1}, "unknown fields extra"),
        ({"model_version": ""}, "model_version"),
        ({"model_config": []}, "model_config"),
        ({"tensors": []}, "tensors must be a non-empty"),
        ({"tensors": {"a": 1}}, "tensors must be a list"),
        ({"tensors": [{"name": "a", "shape": [2]}]}, r"tensors\[0\] must be an object"),
        ({"tensors": [{"name": "a", "shape": 2, "dtype": "float32"}]}, "shape must be a list"),
        ({"tensors": [{"name": "a", "shape": [-1], "dtype": "float32"}]}, "non-negative integers"),
        ({"tensors": [{"name": "a", "shape": [2.0], "dtype": "float32"}]}, "non-negative integers"),
        ({"tensors": [{"name": "a", "shape": [2], "dtype": "complex64"}]}, "dtype must be one of"),
        ({"tensors": [{"name": "", "shape": [2], "dtype": "float32"}]}, "tensor name"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"seq_len": True}, "seq_len must be a positive integer"),
        ({"signatures": {}}, "signatures must be a non-empty"),
        ({"signatures": {"train": {"inputs": []}}}, "signature 'train' must be an object"),
        ({"signatures": {"train": {"inputs": [1], "outputs": []}}}, "inputs must be a list of tensor names"),
        ({"hyperparameters": None}, "hyperparameters"),
        ({"tokenizer_sha256": "ABC"}, "tokenizer_sha256 must be 64 lowercase hex digits"),
        ({"files": {}}, "files must be a non-empty"),
        ({"files": {"../etc/passwd": "0" * 64}}, "not a plain file name"),
        ({"files": {"sub/train.tflite": "0" * 64}}, "not a plain file name"),
        ({"files": {MANIFEST_FILE: "0" * 64}}, "not a plain file name"),
        ({"files": {"train.tflite": "xyz"}}, r"files\['train.tflite'\] must be 64"),
    ],
)
def test_manifest_from_json_rejects_bad_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        PlanManifest.from_json(_json_with(**changes))


@pytest.mark.parametrize("text", ["", "[]", "null", "not json", b"\xff\xfe"])
def test_manifest_from_json_rejects_non_objects(text: str | bytes) -> None:
    with pytest.raises(ManifestError):
        PlanManifest.from_json(text)


def test_manifest_check_tensors_accepts_matching_arrays() -> None:
    _manifest().check_tensors([np.zeros((30, 16), np.float32), np.zeros(30, np.float32)])


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ([np.zeros((30, 16), np.float32)], "1 tensors, the manifest has 2"),
        ([np.zeros((30, 8), np.float32), np.zeros(30, np.float32)], r"tensor 0 \(embedding/embeddings:0\) has shape"),
        ([np.zeros((30, 16), np.float32), np.zeros(30, np.float64)], r"tensor 1 \(bias:0\) has dtype float64"),
    ],
)
def test_manifest_check_tensors_names_the_first_mismatch(tensors: list[np.ndarray], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        _manifest().check_tensors(tensors, "checkpoint")


def test_manifest_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _manifest().batch_size = 8  # type: ignore[misc]


def test_verify_bytes_checks_a_download() -> None:
    manifest = _manifest()
    verify_bytes(FILES["train.tflite"], manifest.files["train.tflite"], "train.tflite")
    with pytest.raises(ManifestError, match=r"train\.tflite: sha256 [0-9a-f]{64} does not match"):
        verify_bytes(FILES["train.tflite"] + b"!", manifest.files["train.tflite"], "train.tflite")


def test_client_training_takes_the_plans_learning_rate_unless_given() -> None:
    plan = _manifest()  # exported with learning_rate 0.5
    assert plan.client_training(codec="quant8", data_seed=3).learning_rate == 0.5
    assert plan.client_training(learning_rate=0.1).learning_rate == 0.1
    bad = dataclasses.replace(plan, hyperparameters={"learning_rate": "fast"})
    with pytest.raises(ManifestError, match="hyperparameters.learning_rate must be a number, got 'fast'"):
        bad.client_training()
    with pytest.raises(ManifestError, match="client training for this plan: local_epochs must be a positive integer"):
        plan.client_training(local_epochs=0)
