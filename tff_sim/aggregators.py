"""How client updates are combined, and what a client uploads.

- ``mean``: the token-weighted mean of float32 updates (FedAvg).
- ``quant8`` / ``quant4`` / ``quant2``: the devices' own codec (``wire.update``):
  each client's delta is rotated block by block with a randomized Hadamard
  transform (which spreads its energy evenly, so few coordinates are extreme),
  quantized to b bits with stochastic rounding keyed by the client's codec
  seed, decoded, and the decoded deltas averaged by tokens (Konečný et al. 2016;
  Suresh et al. 2017); ``tff_sim.aggregators_codec`` builds it, and the clients
  carry their seeds (``build_aggregator`` does not make this one).
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

import numpy as np
import tensorflow_federated as tff

from tff_sim.config import AGGREGATORS
from tff_sim.secure import secure_aggregator
from wire.update import encode_update

_TYPICAL_DELTA_SEED = 1
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
    if quantization_bits(name) is not None:
        raise ValueError(f"{name} needs the clients' codec seeds: tff_sim.aggregators_codec builds its process")
    if name == "secure":
        return secure_aggregator(clip=secure_clip, max_weight=max_weight)
    if name == "dp":
        return tff.learning.dp_aggregator(noise_multiplier=noise_multiplier, clients_per_round=clients_per_round)
    return tff.aggregators.MeanFactory()


def upload_bytes(name: str, tensor_shapes: Sequence[Sequence[int]]) -> int:
    """Bytes one client uploads per round for its update under ``name``.

    float32 for ``mean`` and ``dp``; 4 bytes a coordinate for ``secure`` too (one
    element of Z_2^32, as ``secagg`` uploads; its key exchange adds a few kB that
    depend on the round size, see ``bench/secagg_cost.py``); for b-bit
    quantization, the size of the ``wire.update`` message a phone uploads: the
    packed levels of each block-rotated tensor, exactly, and the JSON header,
    measured on a representative delta (the header's ranges and weight are
    printed as decimals, so a real upload differs by a few bytes per tensor).
    """
    if quantization_bits(name) is None:
        return 4 * sum(math.prod(shape) for shape in tensor_shapes)
    rng = np.random.default_rng(_TYPICAL_DELTA_SEED)
    delta = [(rng.standard_normal(tuple(shape)) * 1e-3).astype(np.float32) for shape in tensor_shapes]
    blob = encode_update(
        delta, codec=name, round=1, base_version=1, weight=1234.0, seed=_TYPICAL_DELTA_SEED, rotation_seed=1
    )
    return len(blob)
