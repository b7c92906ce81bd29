"""On-device training on standalone LiteRT against Keras, and the exported artifacts' sizes.

For each preset (vocabulary of the prepared corpus):

- step time: one SGD step of ``train.tflite`` on LiteRT against Keras'
  ``train_on_batch`` (plain SGD, same weights, same real batch), both timed in
  this one run, printed as a ratio;
- peak RSS of a training process that imports only ``ai_edge_litert`` and
  numpy (a subprocess: loads ``train.tflite``, sets the weights, trains);
- sizes: ``train.tflite`` and ``infer.tflite`` (none / float16 / int8) against
  the float32 parameter bytes;
- quantized inference: top-1 word (specials excluded) of the float16 and int8
  ``infer`` models against the float32 one at every test position (capped),
  and each one's recall@1 on those positions.

A ``--run`` (a central run directory) gives trained weights to the preset it
was trained with; other presets use their initial weights (agreement on an
untrained model means little, the table says which).

    .venv/bin/python bench/tflite_train.py --data /tmp/fk_shakespeare --run /tmp/fk_central
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

from data_tools import load_prepared
from device_runtime.litert_model import LiteRTPredictor, LiteRTTrainer
from model import (
    PRESETS,
    MaskedCrossEntropy,
    ModelConfig,
    build_model,
    convert_inference_model,
    convert_training_model,
    load_checkpoint,
    make_sequences,
)
from model.tflite_training import KeyboardTrainingModule, TrainingShape

_LR = 0.5
_SPECIALS = (0, 1, 2, 3)

# The device-side process: ai_edge_litert and numpy only (checked), weights set, steps trained.
_CHILD = r"""
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
path, steps, batch, seq_len, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
assert "tensorflow" not in sys.modules
def hwm_kb():  # VmHWM is this exec's own peak; ru_maxrss would carry the (TensorFlow) parent's over exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = hwm_kb()
interpreter = Interpreter(model_path=path)
get, put = interpreter.get_signature_runner("get_weights"), interpreter.get_signature_runner("set_weights")
put(**get())
train = interpreter.get_signature_runner("train")
rng = np.random.default_rng(0)
for _ in range(steps):
    x = rng.integers(4, vocab, size=(batch, seq_len), dtype=np.int32)
    loss = float(train(inputs=x, targets=x, learning_rate=np.float32(0.1))["loss"])
after = hwm_kb()
print(json.dumps({"rss_after_import_kb": before, "peak_rss_kb": after, "loss": loss,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def _weights(preset: str, vocab_size: int, run: Path | None) -> tuple[ModelConfig, list[np.ndarray], bool]:
    if run is not None:
        config, weights = load_checkpoint(run / "checkpoint")
        if config == ModelConfig.from_preset(preset, vocab_size):
            return config, weights, True
    config = ModelConfig.from_preset(preset, vocab_size)
    return config, build_model(config, seed=0).get_weights(), False


def _step_times(
    config: ModelConfig, weights: list[np.ndarray], flatbuffer: bytes, batch: tuple[np.ndarray, np.ndarray], steps: int
) -> dict[str, float]:
    """Mean step time of Keras (all cores) and LiteRT with 1 thread and with all cores, same batch."""
    inputs, targets = batch
    keras = build_model(config)
    keras.set_weights(weights)
    keras.compile(optimizer=tf.keras.optimizers.SGD(_LR), loss=MaskedCrossEntropy(config.pad_id))
    threads = os.cpu_count() or 1
    trainers = {1: LiteRTTrainer(flatbuffer, num_threads=1), threads: LiteRTTrainer(flatbuffer, num_threads=threads)}
    for trainer in trainers.values():
        trainer.set_weights(weights)
    for _ in range(3):  # trace / warm up all
        keras.train_on_batch(inputs, targets)
        for trainer in trainers.values():
            trainer.train_step(inputs, targets, _LR)
    start = time.perf_counter()
    for _ in range(steps):
        keras.train_on_batch(inputs, targets)
    keras_s = (time.perf_counter() - start) / steps
    out = {"keras_step_ms": 1e3 * keras_s}
    for n, trainer in trainers.items():
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(inputs, targets, _LR)
        litert_s = (time.perf_counter() - start) / steps
        out[f"litert_{n}thread_step_ms"] = 1e3 * litert_s
        out[f"litert_{n}thread_vs_keras"] = litert_s / keras_s
    return out


def _peak_rss(train_path: Path, batch_size: int, seq_len: int, vocab_size: int, steps: int) -> dict[str, Any]:
    args = [sys.executable, "-c", _CHILD, str(train_path), str(steps), str(batch_size), str(seq_len), str(vocab_size)]
    result = subprocess.run(args, capture_output=True, text=True, check=True, timeout=600)
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def _agreement(
    models: dict[str, bytes], inputs: np.ndarray, targets: np.ndarray, max_positions: int
) -> dict[str, dict[str, float]]:
    """Top-1 of each model against ``none`` at every (row, prefix) test position; recall@1 of each."""
    contexts, answers = [], []
    for row, target in zip(inputs, targets, strict=True):
        for end in range(1, int(np.sum(target != 0)) + 1):
            contexts.append(row[:end])
            answers.append(int(target[end - 1]))
            if len(contexts) >= max_positions:
                break
        if len(contexts) >= max_positions:
            break
    top1: dict[str, np.ndarray] = {}
    for name, flatbuffer in models.items():
        predictor = LiteRTPredictor(flatbuffer)
        step = predictor.infer_batch
        picks = []
        for i in range(0, len(contexts), step):
            scores = predictor.infer_batch_of(contexts[i : i + step])  # (N, V)
            scores[:, list(_SPECIALS)] = -np.inf
            picks.append(np.argmax(scores, axis=-1))
        top1[name] = np.concatenate(picks)
    truth = np.array(answers)
    return {
        name: {
            "positions": len(contexts),
            "top1_agreement_vs_float32": float(np.mean(picks == top1["none"])),
            "recall_at_1": float(np.mean(picks == truth)),
        }
        for name, picks in top1.items()
    }


def bench_preset(preset: str, args: argparse.Namespace, corpus: Any, tmp: Path) -> dict[str, Any]:
    vocab_size = corpus.tokenizer.vocab_size
    config, weights, trained = _weights(preset, vocab_size, args.run)
    b, t = args.batch_size, args.seq_len
    start = time.perf_counter()
    train_bytes = convert_training_model(KeyboardTrainingModule(config, TrainingShape(b, t), weights))
    convert_s = time.perf_counter() - start
    train_path = tmp / f"{preset}_train.tflite"
    train_path.write_bytes(train_bytes)
    inputs, targets = make_sequences(corpus.train.all_examples()[: 4 * b], t, bos_id=2, pad_id=0)
    batch = (inputs[:b], targets[:b])
    result: dict[str, Any] = {"preset": preset, "trained_weights": trained, "convert_train_s": round(convert_s, 1)}
    result.update(_step_times(config, weights, train_bytes, batch, args.steps))
    result.update(_peak_rss(train_path, b, t, vocab_size, args.steps))
    parameter_bytes = 4 * sum(int(w.size) for w in weights)
    result["parameter_bytes"] = parameter_bytes
    result["train_tflite_bytes"] = len(train_bytes)
    infer = {
        q: convert_inference_model(config, weights, t, quantization=q, batch_size=args.infer_batch)
        for q in ("none", "float16", "int8")
    }
    # Sizes of the shipped batch-1 models (batch only changes the graph's shapes, not the weights).
    for q in infer:
        size = len(convert_inference_model(config, weights, t, quantization=q))
        result[f"infer_{q}_bytes"] = size
        result[f"infer_{q}_vs_params"] = size / parameter_bytes
    test_inputs, test_targets = make_sequences(corpus.test.all_examples(), t, bos_id=2, pad_id=0)
    result["agreement"] = _agreement(infer, test_inputs, test_targets, args.max_positions)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared data directory")
    parser.add_argument("--run", type=Path, help="a central run directory (trained weights for its preset)")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=sorted(PRESETS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--infer-batch", type=int, default=32, help="batch of the agreement-measuring infer models")
    parser.add_argument("--max-positions", type=int, default=5000)
    args = parser.parse_args()
    corpus = load_prepared(args.data)
    with tempfile.TemporaryDirectory(prefix="fk-tflite-bench-") as tmp:
        results = [bench_preset(p, args, corpus, Path(tmp)) for p in args.presets]
    print(
        f"LiteRT on-device training vs Keras, vocab {corpus.tokenizer.vocab_size}, batch {args.batch_size} x "
        f"{args.seq_len}, {args.steps} steps, {os.cpu_count()} CPUs"
    )
    print(json.dumps(results, indent=2))
    n = os.cpu_count() or 1
    print(
        f"{'preset':<7}{'keras ms':>9}{'litert1 ms':>11}{'ratio':>6}{f'litert{n} ms':>11}{'ratio':>6}{'RSS MB':>8}"
        f"{'params KB':>10}{'train KB':>9}{'f32 KB':>7}{'f16 KB':>7}{'int8 KB':>8}{'f16 top1':>9}{'int8 top1':>10}"
    )
    for r in results:
        agree = r["agreement"]
        kb = {k: r[k] / 1024 for k in ("parameter_bytes", "train_tflite_bytes", "infer_none_bytes")}
        kb.update({k: r[k] / 1024 for k in ("infer_float16_bytes", "infer_int8_bytes")})
        print(
            f"{r['preset']:<7}{r['keras_step_ms']:>9.1f}{r['litert_1thread_step_ms']:>11.1f}"
            f"{r['litert_1thread_vs_keras']:>6.2f}{r[f'litert_{n}thread_step_ms']:>11.1f}"
            f"{r[f'litert_{n}thread_vs_keras']:>6.2f}{r['peak_rss_kb'] / 1024:>8.1f}"
            f"{kb['parameter_bytes']:>10.0f}{kb['train_tflite_bytes']:>9.0f}"
            f"{kb['infer_none_bytes']:>7.0f}{kb['infer_float16_bytes']:>7.0f}{kb['infer_int8_bytes']:>8.0f}"
            f"{agree['float16']['top1_agreement_vs_float32']:>9.4f}{agree['int8']['top1_agreement_vs_float32']:>10.4f}"
        )


if __name__ == "__main__":
    main()
