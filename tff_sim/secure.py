"""Secure aggregation in the simulation: TFF's secure aggregator, lowered so the C++ workers can run it.

``tff.learning.secure_aggregator`` (Bonawitz et al. 2017 as modelled by TFF)
clips each update (adaptive zeroing and L2 clipping), clips and quantizes every
coordinate to integers and sums them with ``tff.federated_secure_sum_bitwidth``.
TFF 0.87's native C++ executor — the one ``tff_sim.runtime`` runs on its
workers — does not implement the secure intrinsics (it fails with "Cannot
embed a federated value"). TFF's own test backend
(``tff.backends.test``) runs them by compiling each secure intrinsic into its
plain-TensorFlow equivalent before execution
(``replace_secure_intrinsics_with_bodies``); here that same compiler step is
applied to the aggregation process's computations when they are built, so the
rounds run on the usual workers with the test backend's semantics: the same
clipping, quantization and modular sum as the secure protocol, with no
cryptography. It models the protocol's effect on learning (quantization and
clipping error), not its cost; ``bench/secagg_cost.py`` measures that.
"""

from __future__ import annotations

from typing import Any

import tensorflow_federated as tff
from tensorflow_federated.python.core.backends.test import compiler as test_compiler
from tensorflow_federated.python.core.impl.computation import computation_impl


def lower_secure_intrinsics(computation: Any) -> Any:
    """``computation`` with every ``federated_secure_*`` intrinsic replaced by TFF's test-backend body.

    Lowering goes through the serialized form, which forgets Python containers
    (``MeasuredProcessOutput``, the model weights' lists); the original type
    signature is put back so the learning process accepts the result.
    """
    lowered = test_compiler.replace_secure_intrinsics_with_bodies(computation)
    return computation_impl.ConcreteComputation.with_type(lowered, computation.type_signature)


def _lowered(process: Any) -> Any:
    """The same aggregation process with its secure intrinsics lowered."""
    return tff.templates.AggregationProcess(
        lower_secure_intrinsics(process.initialize), lower_secure_intrinsics(process.next)
    )


class _LoweredWeighted(tff.aggregators.WeightedAggregationFactory):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create(self, value_type: Any, weight_type: Any) -> Any:
        return _lowered(self._inner.create(value_type, weight_type))


class _LoweredUnweighted(tff.aggregators.UnweightedAggregationFactory):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create(self, value_type: Any) -> Any:
        return _lowered(self._inner.create(value_type))


def secure_aggregator(*, weighted: bool = True) -> Any:
    """``tff.learning.secure_aggregator`` (zeroing and clipping on), runnable on ``tff_sim.runtime``'s workers."""
    inner = tff.learning.secure_aggregator(zeroing=True, clipping=True, weighted=weighted)
    return _LoweredWeighted(inner) if weighted else _LoweredUnweighted(inner)
