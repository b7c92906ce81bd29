"""Secure aggregation's cost over a plain upload: per-device time and bytes, and the server's unmasking time.

Runs the whole protocol of ``secagg`` (Bonawitz et al. 2017 with the SecAgg+
neighbour graph of Bell et al. 2020) in one process for n devices of a round,
with ``--drop`` of them going silent after sharing keys (so the server must
also rebuild their pairwise masks), on a vector as long as the model's update
(default: the ``small`` preset's exact parameter count). Reports, per device,
the median time of each client phase and the bytes it sends and receives,
against a plain upload (float32, and the quant8 codec); and for the server the
time to add the masked inputs (a running ring sum), to unmask the sum (with
``secagg.server.UNMASK_THREADS`` threads and with one, same run), and to
check it against what in-range inputs can sum to and decode the weighted mean.
Times are one run on this shared machine (unmasking also as CPU seconds, which
other processes' load disturbs less); bytes are exact message sizes (ids
as 4 bytes, public keys and the self-seed commitment 32, share ciphertexts 168, masked input 4 bytes a
coordinate since the ring is Z_{2^32}, plus one for the weight).

    .venv/bin/python bench/secagg_cost.py [--devices 100 500] [--length N] [--drop 0.1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from secagg import client, server
from secagg.messages import AdvertiseKeys, EncryptedShare, RoundParams
from secagg.ring import RingSpec
from secagg.updates import delta_to_ring, mean_from_ring, ring_length

T = TypeVar("T")
_ID = 4


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _model_length(preset: str, vocab: int) -> int:
    from model import ModelConfig, build_model

    return sum(int(np.prod(w.shape)) for w in build_model(ModelConfig.from_preset(preset, vocab_size=vocab)).weights)


def run(n: int, length: int, drop: float, seed: int) -> None:
    spec = RingSpec(bits=16, clip=1.0, max_weight=1000.0)
    shapes = [(length,)]
    params = RoundParams(round=1, round_seed=seed, n=n, length=ring_length(shapes), threshold=max(2, n // 2))
    rng = np.random.default_rng([seed, n])
    dropped = frozenset(rng.choice(n, round(drop * n), replace=False).tolist())
    times: dict[str, list[float]] = {"advertise": [], "share keys": [], "masked input": [], "unmask": []}
    states: dict[int, client.ClientState] = {}
    adverts: list[AdvertiseKeys] = []
    for i in range(n):
        (states[i], advert), dt = _timed(lambda i=i: client.advertise(params, i))  # type: ignore[misc]
        adverts.append(advert)
        times["advertise"].append(dt)
    srv = server.collect_adverts(params, adverts)
    bundles: dict[int, list[EncryptedShare]] = {}
    for i in range(n):
        (states[i], bundles[i]), dt = _timed(lambda i=i: client.share_keys(params, states[i], adverts))  # type: ignore[misc]
        times["share keys"].append(dt)
    srv = server.route_shares(srv, bundles)
    x = rng.normal(0, 1e-3, length)  # one update (norm ~1.1, clipped to 1), reused by every device
    levels = delta_to_ring([x], 640.0, spec, rng)  # (length + 1,): [weight, weighted delta]
    inputs = []
    for i in range(n):
        if i in dropped:
            continue
        (states[i], item), dt = _timed(lambda i=i: client.masked_input(params, states[i], srv.inbox[i], levels))  # type: ignore[misc]
        inputs.append(item)
        times["masked input"].append(dt)
    srv, sum_s = _timed(lambda: server.collect_inputs(srv, inputs))
    request = server.unmask_request(srv)
    responses = []
    for i in sorted(request.survivors):
        response, dt = _timed(lambda i=i: client.unmask(params, states[i], request))  # type: ignore[misc]
        responses.append(response)
        times["unmask"].append(dt)
    unmask: dict[int, tuple[float, float]] = {}  # threads -> (wall s, CPU s)
    expected = (levels.astype(np.uint64) * len(inputs)).astype(np.uint32)
    for threads in (server.UNMASK_THREADS, 1):
        cpu_start = time.process_time()
        total, wall = _timed(lambda threads=threads: server.unmask_sum(srv, responses, threads=threads))  # type: ignore[misc]
        unmask[threads] = wall, time.process_time() - cpu_start  # on a shared machine, CPU s are steadier
        assert np.array_equal(total, expected), "secure sum differs from the plain sum"
    server_s, server_cpu = unmask[server.UNMASK_THREADS]
    mean, check_s = _timed(lambda: mean_from_ring(total, len(inputs), shapes, spec))  # bounds check, then decode
    assert abs(mean.weight / (640.0 * len(inputs)) - 1) < 1e-4  # the weight on the 16-bit grid

    k = params.k
    cipher = len(bundles[0][0].ciphertext)
    up = {
        "advertise": _ID + 96,
        "share keys": k * (2 * _ID + cipher),
        "masked input": _ID + 4 * params.length,
        "unmask": _ID + k * (_ID + 66),
    }
    down = {"advertise": k * (_ID + 96), "share keys": k * (2 * _ID + cipher), "masked input": 0, "unmask": _ID * n}
    per_device = sum(statistics.median(v) for v in times.values())
    mask_only = statistics.median(times["masked input"])
    print(f"n={n}: k={k} neighbours, share threshold {params.t_share}, round threshold {params.threshold}, "
          f"{len(dropped)} dropped after sharing keys, vector {length:,} coordinates")  # fmt: skip
    print(f"  {'client phase':<14}{'median s':>10}{'max s':>9}{'bytes up':>14}{'bytes down':>12}")
    for phase, values in times.items():
        print(f"  {phase:<14}{statistics.median(values):>10.4f}{max(values):>9.4f}{up[phase]:>14,}{down[phase]:>12,}")
    plain32, plain8 = 4 * length, length  # float32 payload; quant8 payload (1 byte a rotated coordinate)
    total_up = sum(up.values())
    print(f"  per device: {per_device:.3f} s of secagg work ({mask_only:.3f} s masking); uploads {total_up:,} bytes "
          f"= {total_up / plain32:.4f}x float32 ({plain32:,}), {total_up / plain8:.2f}x quant8 payload ({plain8:,}); "
          f"downloads {sum(down.values()):,} bytes")  # fmt: skip
    rebuilt = sum(len(params.graph[j] & request.survivors) for j in request.dropped)
    print(f"  server: adding the {len(inputs)} masked inputs as they arrive {sum_s:.3f} s; unmasking "
          f"{server_s:.3f} s with {server.UNMASK_THREADS} threads ({server_cpu:.3f} s CPU; {len(request.survivors)} "
          f"self masks, {rebuilt} pairwise masks rebuilt), {unmask[1][0]:.3f} s with 1 thread ({unmask[1][1]:.3f} s "
          f"CPU); checking and decoding the sum {check_s:.3f} s; load average {os.getloadavg()[0]:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--length", type=int, default=0, help="vector length (0 = the model's parameter count)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab", type=int, default=10_000)
    parser.add_argument("--drop", type=float, default=0.1, help="fraction dropping after sharing keys")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    length = args.length or _model_length(args.preset, args.vocab)
    for n in args.devices:
        run(n, length, args.drop, args.seed)


if __name__ == "__main__":
    main()
