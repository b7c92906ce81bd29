"""The manifest of an exported on-device training plan (``manifest.json``).

In the system design of Bonawitz et al. 2019 a device receives a *plan* (what
to compute) and a checkpoint (where to start). Here the plan is
``train.tflite`` plus this manifest, which says everything a device and the
coordinator must agree on without opening the model: the signature names and
their tensors, every weight tensor's name, shape and dtype in the one fixed
order (the checkpoint's, the update's), the static batch size and sequence
length the unrolled graph was built for (the one source of both: assignments
do not repeat them), the training hyperparameters (``client_training`` turns
them into the client-training contract, ``wire.contract``), the
tokenizer's SHA-256 (a device must tokenize exactly as training did), the
SHA-256 of every file, so a damaged or swapped file is refused before use, and
where the model came from (``provenance``, ``wire.provenance``: optional, so a
manifest written before it existed still loads).

Numpy and the standard library only: devices and the coordinator both read it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedkeys_errors import FedkeysError
from wire.contract import ClientTraining, ContractError
from wire.provenance import ModelProvenance, ProvenanceError

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
TRAIN_FILE = "train.tflite"  # the plan's training graph (signatures train, evaluate, weights)
INFER_FILE = "infer.tflite"  # the keyboard's inference graph
TOKENIZER_FILE = "tokenizer.model"  # the plan's word tokenizer (its sha256 is tokenizer_sha256)
MANIFEST_FORMAT_VERSION = 1
DTYPES: tuple[str, ...] = ("float32", "float16", "int32", "int8")
"""Tensor dtypes a manifest may name."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHUNK = 1 << 20


class ManifestError(FedkeysError, ValueError):
    """A manifest that is malformed, of an unsupported version, or does not match its files."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One weight tensor: its name (the Keras variable's), shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ManifestError(f"tensor name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.shape, tuple) or not all(_is_count(d) for d in self.shape):
            raise ManifestError(f"tensor {self.name}: shape must be non-negative integers, got {self.shape!r}")
        if self.dtype not in DTYPES:
            raise ManifestError(f"tensor {self.name}: dtype must be one of {DTYPES}, got {self.dtype!r}")

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class PlanManifest:
    """What ``fedkeys export tflite`` wrote; see the module docstring.

    ``signatures`` maps a signature name to ``{"inputs": [...], "outputs":
    [...]}``, the tensor names of that signature. ``files`` maps a file name
    in the artifact directory (a plain base name) to its hex SHA-256.
    ``provenance`` is None in a manifest written without one.
    """

    format_version: int
    model_version: str
    model_config: dict[str, Any]
    tensors: tuple[TensorSpec, ...]
    batch_size: int
    seq_len: int
    signatures: dict[str, dict[str, list[str]]]
    hyperparameters: dict[str, Any]
    tokenizer_sha256: str
    files: dict[str, str]
    provenance: ModelProvenance | None = None

    def __post_init__(self) -> None:
        if not _is_version(self.format_version):
            raise ManifestError(
                f"unsupported manifest format version {self.format_version!r} (this build reads "
                f"{MANIFEST_FORMAT_VERSION})"
            )
        if not isinstance(self.model_version, str) or not self.model_version:
            raise ManifestError(f"model_version must be a non-empty string, got {self.model_version!r}")
        if not isinstance(self.model_config, dict):
            raise ManifestError(f"model_config must be an object, got {self.model_config!r}")
        if not self.tensors or not all(isinstance(t, TensorSpec) for t in self.tensors):
            raise ManifestError("tensors must be a non-empty list of tensor specs")
        for name in ("batch_size", "seq_len"):
            value = getattr(self, name)
            if not _is_count(value) or value < 1:
                raise ManifestError(f"{name} must be a positive integer, got {value!r}")
        _check_signatures(self.signatures)
        if not isinstance(self.hyperparameters, dict):
            raise ManifestError(f"hyperparameters must be an object, got {self.hyperparameters!r}")
        _check_sha256("tokenizer_sha256", self.tokenizer_sha256)
        if not isinstance(self.files, dict) or not self.files:
            raise ManifestError("files must be a non-empty object of file name -> sha256")
        for file_name, digest in self.files.items():
            if not isinstance(file_name, str) or not _FILE_NAME.match(file_name) or file_name == MANIFEST_FILE:
                raise ManifestError(f"files: {file_name!r} is not a plain file name of the artifact")
            _check_sha256(f"files[{file_name!r}]", digest)
        if self.provenance is not None and not isinstance(self.provenance, ModelProvenance):
            raise ManifestError(f"provenance must be a ModelProvenance record, got {self.provenance!r}")

    def client_training(self, **settings: Any) -> ClientTraining:
        """The client-training contract for this plan: ``settings``, with the learning rate the plan was exported
        with (``hyperparameters["learning_rate"]``) unless ``settings`` name one. ManifestError if that is bad."""
        rate = self.hyperparameters.get("learning_rate")
        if "learning_rate" not in settings and rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ManifestError(f"hyperparameters.learning_rate must be a number, got {rate!r}")
            settings["learning_rate"] = float(rate)
        try:
            return ClientTraining(**settings)
        except ContractError as err:
            raise ManifestError(f"client training for this plan: {err}") from err

    @property
    def parameter_count(self) -> int:
        """Number of weight elements, all tensors."""
        return sum(t.size for t in self.tensors)

    def check_tensors(self, tensors: Sequence[np.ndarray], what: str = "weights") -> None:
        """ManifestError naming the first tensor whose count, shape or dtype differs from the manifest."""
        if len(tensors) != len(self.tensors):
            raise ManifestError(f"{what}: {len(tensors)} tensors, the manifest has {len(self.tensors)}")
        for i, (spec, array) in enumerate(zip(self.tensors, tensors, strict=True)):
            shape = tuple(np.shape(array))
            if shape != spec.shape:
                raise ManifestError(f"{what}: tensor {i} ({spec.name}) has shape {shape}, expected {spec.shape}")
            dtype = np.asarray(array).dtype.name
            if dtype != spec.dtype:
                raise ManifestError(f"{what}: tensor {i} ({spec.name}) has dtype {dtype}, expected {spec.dtype}")

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["tensors"] = [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in self.tensors]
        if self.provenance is None:
            del data["provenance"]  # the bytes of a manifest without one, as before it existed
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> PlanManifest:
        """Parse and validate; ManifestError (never KeyError/TypeError) on any bad input."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise ManifestError(f"manifest is not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise ManifestError(f"manifest must be a JSON object, got {type(data).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]
        missing = [f for f in fields if f not in data and f != "provenance"]
        unknown = sorted(set(data) - set(fields))
        if "format_version" in data and not _is_version(data["format_version"]):
            raise ManifestError(
                f"unsupported manifest format version {data['format_version']!r} (this build reads "
                f"{MANIFEST_FORMAT_VERSION})"
            )
        if missing:
            raise ManifestError(f"manifest is missing {', '.join(missing)}")
        if unknown:
            raise ManifestError(f"manifest has unknown fields {', '.join(unknown)}")
        raw_tensors = data["tensors"]
        if not isinstance(raw_tensors, list):
            raise ManifestError("manifest tensors must be a list")
        tensors = []
        for i, raw in enumerate(raw_tensors):
            if not isinstance(raw, dict) or set(raw) != {"name", "shape", "dtype"}:
                raise ManifestError(f"manifest tensors[{i}] must be an object with name, shape and dtype")
            if not isinstance(raw["shape"], list):
                raise ManifestError(f"manifest tensors[{i}] shape must be a list, got {raw['shape']!r}")
            tensors.append(TensorSpec(raw["name"], tuple(raw["shape"]), raw["dtype"]))
        provenance = data.get("provenance")
        if provenance is not None:
            try:
                provenance = ModelProvenance.from_dict(provenance)
            except ProvenanceError as err:
                raise ManifestError(f"manifest provenance: {err}") from None
        return cls(**{**data, "tensors": tuple(tensors), "provenance": provenance})


def _is_version(value: object) -> bool:
    return type(value) is int and value == MANIFEST_FORMAT_VERSION


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_sha256(what: str, value: object) -> None:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ManifestError(f"{what} must be 64 lowercase hex digits, got {value!r}")


def _check_signatures(signatures: object) -> None:
    if not isinstance(signatures, dict) or not signatures:
        raise ManifestError("signatures must be a non-empty object of name -> {inputs, outputs}")
    for name, io in signatures.items():
        if not isinstance(io, Mapping) or set(io) != {"inputs", "outputs"}:
            raise ManifestError(f"signature {name!r} must be an object with inputs and outputs")
        for side in ("inputs", "outputs"):
            names = io[side]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ManifestError(f"signature {name!r} {side} must be a list of tensor names, got {names!r}")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str) -> None:
    """ManifestError if ``path`` is missing or its SHA-256 is not ``sha256``."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: listed in the manifest but missing")
    actual = sha256_file(path)
    if actual != sha256:
        raise ManifestError(f"{path}: sha256 {actual} does not match the manifest's {sha256}")


def verify_bytes(data: bytes, sha256: str, what: str) -> None:
    """ManifestError if downloaded ``data`` (named ``what``) does not hash to ``sha256``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ManifestError(f"{what}: sha256 {actual} does not match the manifest's {sha256}")


def write_manifest(directory: Path, manifest: PlanManifest) -> Path:
    """Write ``manifest.json`` into ``directory``; returns its path."""
    path = Path(directory) / MANIFEST_FILE
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path


def load_manifest(directory: Path, *, verify: bool = True) -> PlanManifest:
    """Read ``directory/manifest.json``; with ``verify``, check every listed file's SHA-256."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{directory} is not an exported plan: {MANIFEST_FILE} is missing")
    try:
        manifest = PlanManifest.from_json(path.read_bytes())
    except ManifestError as err:
        raise ManifestError(f"{path}: {err}") from err
    if verify:
        for file_name, digest in manifest.files.items():
            verify_file(Path(directory) / file_name, digest)
    return manifest
