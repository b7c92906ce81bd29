"""How client updates are combined, and what a client uploads.

- ``mean``: the token-weighted mean of float32 updates (FedAvg).
- ``quant8`` / ``quant4`` / ``quant2``: each tensor of the update is rotated
  with a randomized Hadamard transform (which spreads its energy evenly, so
  few coordinates are extreme) and uniformly quantized to b bits with
  stochastic rounding, then averaged: TFF's ``HadamardTransformFactory`` over
  ``EncodedSumFactory`` (Konečný et al. 2016; Suresh et al. 2017).
- ``dp``: central differential privacy, DP-FedAvg with adaptive clipping
  (McMahan et al. 2018; Andrew et al. 2021) through ``tff.learning.dp_aggregator``:
  an unweighted mean of clipped updates plus Gaussian noise.
- ``secure``: secure aggregation (Bonawitz et al. 2017) as a deployed secure
  round computes it (``secagg.updates``): updates clipped to L2 norm
  ``secure_clip``, then the token-weighted mean (weights bounded by the largest
  a client can have), each sum quantized to integers and summed with
  ``federated_secure_sum_bitwidth``, lowered with TFF's test-backend compiler
  so the C++ workers run it (``tff_sim.secure``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import tensorflow_federated as tff

from tff_sim.config import AGGREGATORS
from tff_sim.secure import secure_aggregator

_RANGE_BYTES = 8  # a float32 min and max per quantized tensor
SECURE_MAX_WEIGHT = float(2**20 - 1)  # tokens, when a client's rows are not capped (TFF's own weight bound)


def quantization_bits(name: str) -> int | None:
    return int(name.removeprefix("quant")) if name.startswith("quant") else None


def build_aggregator(
    name: str,
    *,
    clients_per_round: int,
    noise_multiplier: float,
    secure_clip: float = 1.0,
    max_weight: float = SECURE_MAX_WEIGHT,
) -> Any:
    """The TFF aggregation factory for ``name`` (weighted, except ``dp``).

    ``secure_clip`` and ``max_weight`` (tokens) matter to ``secure`` only.
    """
    if name not in AGGREGATORS:
        raise ValueError(f"aggregator must be one of {AGGREGATORS}, got {name!r}")
    bits = quantization_bits(name)
    if bits is not None:
        quantized_sum = tff.aggregators.EncodedSumFactory.quantize_above_threshold(quantization_bits=bits, threshold=0)
        return tff.aggregators.MeanFactory(
            value_sum_factory=tff.aggregators.HadamardTransformFactory(inner_agg_factory=quantized_sum)
        )
    if name == "secure":
        return secure_aggregator(clip=secure_clip, max_weight=max_weight)
    if name == "dp":
        return tff.learning.dp_aggregator(noise_multiplier=noise_multiplier, clients_per_round=clients_per_round)
    return tff.aggregators.MeanFactory()


def upload_bytes(name: str, tensor_sizes: Sequence[int]) -> int:
    """Bytes one client uploads per round for its update under ``name``.

    float32 for ``mean`` and ``dp``; 4 bytes a coordinate for ``secure`` too (one
    element of Z_2^32, as ``secagg`` uploads; its key exchange adds a few kB that
    depend on the round size, see ``bench/secagg_cost.py``); for b-bit
    quantization, b bits per coordinate of each rotated tensor (the Hadamard
    transform pads a tensor to the next power of two) plus its float32 range.
    """
    bits = quantization_bits(name)
    if bits is None:
        return 4 * int(sum(tensor_sizes))
    total = 0
    for size in tensor_sizes:
        padded = 1 << max(0, math.ceil(math.log2(size))) if size > 1 else 1
        total += math.ceil(padded * bits / 8) + _RANGE_BYTES
    return total
