"""Upload size per device per round at each codec, against float32, for a model's real shapes.

Builds the model (default: the ``small`` preset, vocab 10,000, embedding 96,
one CIFG layer of 256) to get its exact weight shapes, makes a delta with the
magnitudes of a real local update (normal, scaled to a given global L2 norm),
and encodes it with ``wire.update`` at every codec: bytes on the wire, the
ratio to float32, the padding the rotation adds (block-wise, against padding
each tensor whole to a power of two), the relative L2 error of one decoded
update, and encode/decode times (one run, this machine; times are shared-CPU
noisy, sizes are exact).

    .venv/bin/python bench/codec_sizes.py [--preset small] [--vocab 10000] [--norm 1.0]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from model import ModelConfig, build_model
from wire.codec import CODECS, CodecSpec, padded_length, rotation_blocks
from wire.update import decode_update, encode_update, raw_nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab", type=int, default=10_000)
    parser.add_argument("--norm", type=float, default=1.0, help="global L2 norm of the synthetic delta")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = ModelConfig.from_preset(args.preset, vocab_size=args.vocab)
    shapes = [tuple(int(d) for d in w.shape) for w in build_model(config).weights]
    rng = np.random.default_rng(args.seed)
    delta = [rng.normal(size=s).astype(np.float32) for s in shapes]
    scale = args.norm / float(np.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in delta)))
    delta = [d * np.float32(scale) for d in delta]
    params = sum(int(np.prod(s)) for s in shapes)
    raw = raw_nbytes(shapes)
    blocks = sum(sum(p for _, p in rotation_blocks(int(np.prod(s)))) for s in shapes)
    whole = sum(padded_length(int(np.prod(s))) for s in shapes)
    print(f"model {args.preset}: vocab {args.vocab}, {len(shapes)} tensors, {params:,} parameters")
    for s in shapes:
        print(f"  {s!s:<14} {int(np.prod(s)):>10,}")
    print(f"raw float32 delta: {raw:,} bytes ({raw / 2**20:.2f} MiB)")
    print(f"rotated coordinates: {blocks:,} in blocks (+{blocks / params - 1:.2%}) vs {whole:,} padding whole "
          f"tensors (+{whole / params - 1:.2%})")  # fmt: skip
    print()
    print(f"{'codec':<8}{'bytes':>12}{'MiB':>8}{'vs float32':>12}{'header+crc':>12}{'rel L2 err':>12}"
          f"{'encode s':>10}{'decode s':>10}")  # fmt: skip
    for codec in CODECS:
        t0 = time.perf_counter()
        blob = encode_update(delta, codec=codec, round=1, base_version=1, weight=100.0, seed=args.seed)
        t1 = time.perf_counter()
        decoded = decode_update(blob).decode_tensors()
        t2 = time.perf_counter()
        err = np.sqrt(sum(float(np.sum((a.astype(np.float64) - b) ** 2)) for a, b in zip(decoded, delta, strict=True)))
        bits = CodecSpec.parse(codec).bits
        padded = [sum(p for _, p in rotation_blocks(int(np.prod(s)))) for s in shapes]
        payload = 4 * params if bits is None else sum((p * bits + 7) // 8 for p in padded)
        print(f"{codec:<8}{len(blob):>12,}{len(blob) / 2**20:>8.2f}{raw / len(blob):>11.2f}x"
              f"{len(blob) - payload:>12,}{err / args.norm:>12.4f}{t1 - t0:>10.2f}{t2 - t1:>10.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
