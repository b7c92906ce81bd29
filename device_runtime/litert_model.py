"""The exported keyboard model on the standalone LiteRT runtime, as a phone runs it.

:class:`LiteRTTrainer` wraps ``train.tflite``'s signature runners (see
``model.tflite_training`` for their contract): it trains one SGD step per
batch, evaluates, infers and moves the weights in and out as a list of numpy
arrays in the manifest's order, which is the order of the checkpoint and of
the update on the wire (Bonawitz et al. 2019: the device runs the plan on
the checkpoint and returns an update). :class:`LiteRTPredictor` runs the
suggestion strip's ``infer.tflite``.

Every input is checked before it reaches the interpreter: a wrong shape or
dtype, or a token id outside the vocabulary (TFLite's gather does not bound
check on every build), is a :class:`LiteRTModelError` naming the value,
never a crash inside the runtime. Only ``ai_edge_litert`` and numpy are
needed at run time; TensorFlow is never imported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fedkeys_errors import FedkeysError
from wire.manifest import TRAIN_FILE, PlanManifest, load_manifest

logger = logging.getLogger(__name__)

TRAIN_SIGNATURES: tuple[str, ...] = ("train", "evaluate", "infer", "get_weights", "set_weights")
_CUSTOM_OPCODE = 32  # BuiltinOperator.CUSTOM in the TFLite schema


class LiteRTModelError(FedkeysError, ValueError):
    """A model the standalone runtime cannot use, or an input that does not fit it."""


class EvalCounts(NamedTuple):
    """Sums over the evaluated targets (add them over batches; recall@k = correct_at_k / tokens)."""

    loss_sum: float
    tokens: int
    correct_at_1: int
    correct_at_3: int

    @property
    def loss(self) -> float:
        """Mean cross-entropy over the counted targets (0 when there are none)."""
        return self.loss_sum / self.tokens if self.tokens else 0.0

    def plus(self, other: EvalCounts) -> EvalCounts:
        """Field-wise sum (``+`` on a tuple concatenates, so it is not overloaded)."""
        return EvalCounts(
            self.loss_sum + other.loss_sum,
            self.tokens + other.tokens,
            self.correct_at_1 + other.correct_at_1,
            self.correct_at_3 + other.correct_at_3,
        )


def custom_op_names(flatbuffer: bytes) -> list[str]:
    """The custom (non-builtin, e.g. ``FlexAddV2``) op codes a model needs; empty for built-ins only."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(flatbuffer, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    except Exception as err:  # flatbuffers raises struct.error/IndexError on garbage
        raise LiteRTModelError(f"not a TFLite flatbuffer ({type(err).__name__}: {err})") from err
    names = []
    for code in codes:
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == _CUSTOM_OPCODE:
            custom = code.CustomCode()
            names.append(custom.decode() if isinstance(custom, bytes) else str(custom))
    return names


def _read(model: Path | bytes) -> bytes:
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    path = Path(model)
    if not path.is_file():
        raise LiteRTModelError(f"{path}: no such model file")
    return path.read_bytes()


def _interpreter(flatbuffer: bytes, source: str, num_threads: int | None, *, scan_first: bool) -> Any:
    """A LiteRT interpreter whose primary subgraph is allocated, or LiteRTModelError naming why not.

    Custom ops (e.g. Flex), which the standalone runtime lacks, are named: with
    ``scan_first`` before loading, else only when LiteRT refuses the model. The
    scan imports LiteRT's flatbuffer schema, which alone costs more than loading
    a small model (``fedkeys suggest`` would pay it on every cold start).
    """
    from ai_edge_litert.interpreter import Interpreter

    if flatbuffer[4:8] != b"TFL3":
        raise LiteRTModelError(f"{source}: not a TFLite model (no TFL3 identifier)")
    if scan_first and custom_op_names(flatbuffer):
        raise _refusal(flatbuffer, source, None)
    try:
        interpreter = Interpreter(model_content=flatbuffer, num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise _refusal(flatbuffer, source, err) from err
    return interpreter


def _refusal(flatbuffer: bytes, source: str, err: Exception | None) -> LiteRTModelError:
    """Why LiteRT cannot run the model: the custom ops it lacks, else its own message."""
    custom = custom_op_names(flatbuffer)
    if custom:
        return LiteRTModelError(
            f"{source}: needs custom ops {sorted(set(custom))}, which the standalone LiteRT runtime lacks"
        )
    return LiteRTModelError(f"{source}: LiteRT cannot load it ({err})")


def _input_shape(runner: Any, name: str) -> tuple[int, ...]:
    return tuple(int(d) for d in runner.get_input_details()[name]["shape"])


def _check_ids(name: str, ids: object, shape: tuple[int, ...], vocab_size: int) -> np.ndarray:
    array = np.asarray(ids)
    if array.shape != shape:
        raise LiteRTModelError(f"{name} has shape {array.shape}, the model takes {shape}")
    if array.dtype.kind not in "iu":
        raise LiteRTModelError(f"{name} must be integer token ids, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        raise LiteRTModelError(
            f"{name} holds ids outside [0, {vocab_size}): min {int(array.min())}, max {int(array.max())}"
        )
    return array.astype(np.int32)


class _Infer:
    """The shared ``infer`` signature: right-padded contexts -> next-word scores."""

    flatbuffer: bytes

    def __init__(self, interpreter: Any, source: str) -> None:
        self._source = source
        if "infer" not in interpreter.get_signature_list():
            raise LiteRTModelError(f"{source}: has no 'infer' signature")
        self._infer = interpreter.get_signature_runner("infer")
        self.infer_batch, self.seq_len = _input_shape(self._infer, "token_ids")
        self.vocab_size = int(self._infer.get_output_details()["scores"]["shape"][-1])

    def infer(self, context: Sequence[int] | np.ndarray) -> np.ndarray:
        """Scores (V,) for the word after ``context`` (ids, begin marker included; the last T are used)."""
        ids = np.asarray(context)
        if ids.ndim != 1 or ids.size == 0:
            raise LiteRTModelError(f"context must be a non-empty 1-D list of ids, got shape {ids.shape}")
        return self.infer_batch_of([ids])[0]

    def infer_batch_of(self, contexts: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
        """Scores (N, V) for N contexts (N up to the model's infer batch; shorter batches are padded)."""
        if not 1 <= len(contexts) <= self.infer_batch:
            raise LiteRTModelError(f"infer takes 1 to {self.infer_batch} contexts, got {len(contexts)}")
        token_ids = np.zeros((self.infer_batch, self.seq_len), np.int32)  # (N, T), right-padded
        lengths = np.ones((self.infer_batch,), np.int32)  # (N,)
        for row, context in enumerate(contexts):
            ids = np.asarray(context)
            if ids.ndim != 1 or ids.size == 0:
                raise LiteRTModelError(f"context {row} must be a non-empty 1-D list of ids, got shape {ids.shape}")
            tail = _check_ids(f"context {row}", ids, ids.shape, self.vocab_size)[-self.seq_len :]
            token_ids[row, : len(tail)] = tail
            lengths[row] = len(tail)
        try:
            scores: np.ndarray = self._infer(token_ids=token_ids, lengths=lengths)["scores"]
        except RuntimeError as err:  # e.g. a custom op in infer's subgraph, allocated only now
            raise _refusal(self.flatbuffer, self._source, err) from err
        return scores[: len(contexts)]


class LiteRTPredictor(_Infer):
    """``infer.tflite``: the keyboard's next-word scores, through LiteRT.

    ``scan_custom_ops=False`` skips the up-front scan for custom ops: right in
    a process without TensorFlow (``fedkeys suggest``), where LiteRT itself
    refuses such a model and the scan then names the ops; in a process with
    TensorFlow loaded, its Flex delegate would run them, so the export scans.
    """

    def __init__(self, model: Path | bytes, *, num_threads: int | None = None, scan_custom_ops: bool = True) -> None:
        source = "model bytes" if isinstance(model, bytes | bytearray) else str(model)
        self.flatbuffer = _read(model)
        super().__init__(_interpreter(self.flatbuffer, source, num_threads, scan_first=scan_custom_ops), source)


class LiteRTTrainer(_Infer):
    """``train.tflite``: SGD steps, evaluation, inference and weights through LiteRT.

    With a ``manifest``, the model's signatures must agree with it (tensor
    count, shapes and dtypes, batch size and sequence length), else
    LiteRTModelError: a plan and a model of different exports never mix.
    """

    def __init__(
        self, model: Path | bytes, manifest: PlanManifest | None = None, *, num_threads: int | None = None
    ) -> None:
        source = "model bytes" if isinstance(model, bytes | bytearray) else str(model)
        self.flatbuffer = _read(model)
        interpreter = _interpreter(self.flatbuffer, source, num_threads, scan_first=True)
        missing = [s for s in TRAIN_SIGNATURES if s not in interpreter.get_signature_list()]
        if missing:
            raise LiteRTModelError(f"{source}: is not a training model, it lacks signatures {missing}")
        super().__init__(interpreter, source)
        self.signatures: dict[str, dict[str, list[str]]] = interpreter.get_signature_list()
        self._train = interpreter.get_signature_runner("train")
        self._evaluate = interpreter.get_signature_runner("evaluate")
        self._get = interpreter.get_signature_runner("get_weights")
        self._set = interpreter.get_signature_runner("set_weights")
        self.batch_size, seq_len = _input_shape(self._train, "inputs")
        if seq_len != self.seq_len:
            raise LiteRTModelError(f"{source}: train takes sequences of {seq_len}, infer of {self.seq_len}")
        details = self._set.get_input_details()
        self.weight_keys: tuple[str, ...] = tuple(sorted(details))
        self.weight_shapes: tuple[tuple[int, ...], ...] = tuple(
            tuple(int(d) for d in details[k]["shape"]) for k in self.weight_keys
        )
        self.manifest = manifest
        if manifest is not None:
            self._check_manifest(manifest, source)

    def _check_manifest(self, manifest: PlanManifest, source: str) -> None:
        ours = (self.batch_size, self.seq_len)
        theirs = (manifest.batch_size, manifest.seq_len)
        if ours != theirs:
            raise LiteRTModelError(f"{source}: built for (batch, seq_len) {ours}, the manifest says {theirs}")
        specs = [(t.shape, t.dtype) for t in manifest.tensors]
        mine = [(s, "float32") for s in self.weight_shapes]
        if specs != mine:
            raise LiteRTModelError(f"{source}: weight tensors {mine} do not match the manifest's {specs}")

    @classmethod
    def from_plan(cls, directory: Path, *, num_threads: int | None = None) -> LiteRTTrainer:
        """``directory/train.tflite`` checked against ``directory/manifest.json`` (every file's sha256 first)."""
        manifest = load_manifest(Path(directory), verify=True)
        if TRAIN_FILE not in manifest.files:
            raise LiteRTModelError(f"{directory}: the manifest lists no {TRAIN_FILE}")
        return cls(Path(directory) / TRAIN_FILE, manifest, num_threads=num_threads)

    @property
    def parameter_count(self) -> int:
        return sum(math.prod(s) for s in self.weight_shapes)

    def get_weights(self) -> list[np.ndarray]:
        """Every trainable tensor (float32 copies), in manifest / checkpoint order."""
        out = self._get()
        return [np.array(out[k], dtype=np.float32, copy=True) for k in self.weight_keys]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace every trainable tensor; LiteRTModelError names the first that does not fit."""
        if len(weights) != len(self.weight_keys):
            raise LiteRTModelError(f"set_weights got {len(weights)} tensors, the model has {len(self.weight_keys)}")
        feed = {}
        for i, (key, shape, array) in enumerate(zip(self.weight_keys, self.weight_shapes, weights, strict=True)):
            value = np.asarray(array)
            if value.shape != shape:
                raise LiteRTModelError(f"weight {i} has shape {value.shape}, the model expects {shape}")
            if value.dtype.kind != "f":
                raise LiteRTModelError(f"weight {i} must be floating point, got dtype {value.dtype}")
            if not np.all(np.isfinite(value)):
                raise LiteRTModelError(f"weight {i} holds non-finite values")
            feed[key] = value.astype(np.float32)
        self._set(**feed)

    def _batch(self, inputs: object, targets: object) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.batch_size, self.seq_len)
        return (
            _check_ids("inputs", inputs, shape, self.vocab_size),
            _check_ids("targets", targets, shape, self.vocab_size),
        )

    def train_step(self, inputs: object, targets: object, learning_rate: float) -> float:
        """One SGD step on a batch (B, T); returns the batch's masked mean loss before the step."""
        x, y = self._batch(inputs, targets)
        lr = float(learning_rate)
        if not math.isfinite(lr) or lr < 0:
            raise LiteRTModelError(f"learning_rate must be finite and non-negative, got {learning_rate!r}")
        out = self._train(inputs=x, targets=y, learning_rate=np.float32(lr))
        return float(out["loss"])

    def evaluate(self, inputs: object, targets: object) -> EvalCounts:
        """Loss sum, token count and top-1/top-3 hit counts of a batch (B, T)."""
        x, y = self._batch(inputs, targets)
        out = self._evaluate(inputs=x, targets=y)
        return EvalCounts(
            loss_sum=float(out["loss_sum"]),
            tokens=int(out["tokens"]),
            correct_at_1=int(out["correct_at_1"]),
            correct_at_3=int(out["correct_at_3"]),
        )
