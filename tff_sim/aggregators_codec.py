"""Simulation compresses with the devices' codec: a TFF aggregator and the client seeds it needs.

``quant8`` / ``quant4`` / ``quant2`` in ``sim run`` add exactly the noise a
phone's upload adds: each client's delta goes through ``tff_sim.tf_codec``
(``wire.update``'s clipping, block Hadamard rotation and stochastic
quantization in TensorFlow ops, Suresh et al. 2017) keyed by that client's
codec seed, and the server takes the token-weighted mean of the decoded
deltas, as the coordinator does (McMahan et al. 2017; Bonawitz et al. 2019).

TFF gives an aggregator a client's update but not who the client is, while the
codec's rounding is per client (a phone's session seed; the rotation is the
round's, ``wire.codec.round_rotation_seed``). So the seeds travel with the
client's data: each client's input is ``{"examples": its dataset,
"codec_seeds": a one-element dataset of (rotation seed, rounding seed)}`` (TFF
allows only sequences as client data), and ``with_codec_seeds`` wraps TFF's
client work to hand the aggregator ``{"delta", "codec_seeds"}``. The
simulation derives the seeds from (seed, round) and (seed, round, client)
(``round_codec_seeds``); parity passes the deployed sessions' seeds, so a
simulated compressed round reproduces a deployed one.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_sim import tf_codec
from wire.codec import round_rotation_seed

_CODEC_SEED_SALT = 0xC0DEC


def codec_seed(seed: int, round_num: int, client: int) -> int:
    """A simulated client's rounding seed for a round: 32 bits from (seed, round, client), like a session's."""
    return int(np.random.SeedSequence([seed, _CODEC_SEED_SALT, round_num, client]).generate_state(1)[0])


def round_codec_seeds(seed: int, round_num: int, clients: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
    """(rotation seed, rounding seed) of each client of a simulated round: the round's rotation, as a deployed
    task's (``round_rotation_seed``), and a rounding seed per client."""
    rotation = round_rotation_seed(seed, round_num)
    return [(rotation, codec_seed(seed, round_num, int(c))) for c in clients]


def client_input(examples: tf.data.Dataset, seeds: tuple[int, int]) -> collections.OrderedDict[str, tf.data.Dataset]:
    """One client's input to a process built ``with_codec_seeds``: its data and (rotation, rounding) seeds."""
    return collections.OrderedDict(
        examples=examples, codec_seeds=tf.data.Dataset.from_tensors(tf.constant(seeds, tf.int64))
    )


def with_codec_seeds(inner: Any) -> Any:
    """``inner`` (a TFF ClientWorkProcess) taking ``client_input`` data and updating with ``{delta, codec_seeds}``."""
    state_type, weights_type, data_type = inner.next.type_signature.parameter
    seeds_type = tff.SequenceType(tff.TensorType(np.int64, [2]))
    input_type = tff.FederatedType(
        tff.StructWithPythonType(
            [("examples", data_type.member), ("codec_seeds", seeds_type)], collections.OrderedDict
        ),
        tff.CLIENTS,
    )
    update_type = inner.next.type_signature.result.result.member.update

    @tff.tensorflow.computation(seeds_type)
    def first_seeds(seeds: tf.data.Dataset) -> tf.Tensor:
        return seeds.reduce(tf.zeros([2], tf.int64), lambda _, s: s)

    @tff.tensorflow.computation(update_type, tff.TensorType(np.int64, [2]))
    def attach(delta: Any, seeds: tf.Tensor) -> Any:
        return collections.OrderedDict(delta=delta, codec_seeds=seeds)

    @tff.federated_computation(state_type, weights_type, input_type)
    def next_fn(state: Any, weights: Any, client_data: Any) -> Any:
        output = inner.next(state, weights, client_data.examples)
        seeds = tff.federated_map(first_seeds, client_data.codec_seeds)
        update = tff.federated_map(attach, (output.result.update, seeds))
        result = tff.federated_zip(
            tff.learning.templates.ClientResult(update=update, update_weight=output.result.update_weight)
        )
        return tff.templates.MeasuredProcessOutput(output.state, result, output.measurements)

    return tff.learning.templates.ClientWorkProcess(
        inner.initialize, next_fn, get_hparams_fn=inner.get_hparams, set_hparams_fn=inner.set_hparams
    )


class DeviceCodecFactory(tff.aggregators.WeightedAggregationFactory):
    """Weighted mean of ``{delta, codec_seeds}`` client values, each delta encoded and decoded as a phone's upload."""

    def __init__(self, bits: int, clip_norm: float | None = None) -> None:
        if not 1 <= bits <= 8:
            raise ValueError(f"bits must be between 1 and 8, got {bits}")
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be positive, got {clip_norm!r}")
        self._bits = bits
        self._clip_norm = clip_norm

    def create(self, value_type: Any, weight_type: Any) -> Any:
        delta_type = value_type.delta
        bits, clip_norm = self._bits, self._clip_norm

        @tff.tensorflow.computation(value_type)
        def decoded(value: Any) -> Any:
            # TFF's client update is initial - trained (a gradient-like step for the server optimizer); a phone
            # encodes trained - initial. Negation is exact, so encode the phone's delta and negate what decodes.
            flat = [-t for t in tf.nest.flatten(value["delta"])]
            seeds = value["codec_seeds"]
            out = tf_codec.encode_decode(flat, seeds[0], seeds[1], bits, clip_norm)
            return tf.nest.pack_sequence_as(value["delta"], [-t for t in out])

        mean = tff.aggregators.MeanFactory().create(delta_type, weight_type)

        @tff.federated_computation(
            mean.initialize.type_signature.result,
            tff.FederatedType(value_type, tff.CLIENTS),
            tff.FederatedType(weight_type, tff.CLIENTS),
        )
        def next_fn(state: Any, value: Any, weight: Any) -> Any:
            return mean.next(state, tff.federated_map(decoded, value), weight)

        return tff.templates.AggregationProcess(mean.initialize, next_fn)
