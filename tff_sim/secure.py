"""Secure aggregation in the simulation: the deployed secure mean as TFF secure sums, lowered for the C++ workers.

``secure_aggregator`` is what a deployed secure round computes (a fixed L2
clip, then the token-weighted mean), built from TFF's ``SecureSumFactory``,
which clips and quantizes every coordinate to integers and sums them with
``tff.federated_secure_sum_bitwidth`` (Bonawitz et al. 2017 as modelled by TFF).
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

import math
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


def secure_aggregator(*, clip: float, max_weight: float) -> Any:
    """The deployed secure round's mean (``secagg.updates``) in TFF terms, runnable on ``tff_sim.runtime``'s workers.

    A deployed secure round clips each delta to L2 norm ``clip`` (fixed: the
    task's ``secagg_clip``), weights it by its tokens bounded by ``max_weight``
    and opens ``sum w clip(delta) / sum w`` (it masks ``[w, w delta]``, as
    Flower's SecAgg+ does). Here: ``clipping_factory`` at the same fixed norm
    around a token-weighted ``MeanFactory`` whose two sums (``w delta``, whose
    coordinates lie in [-clip max_weight, clip max_weight], and ``w`` in
    [0, max_weight]) are ``SecureSumFactory`` secure sums, as is the clipped
    count. Unlike ``tff.learning.secure_aggregator`` there is no adaptive
    zeroing or clipping: the deployed rounds have none. TFF quantizes each sum
    to 32 bits over its range where the deployed path uses ``secagg_bits`` (16)
    over [-clip, clip]: the same mean, with a little less quantization noise.
    """
    if not (math.isfinite(clip) and clip > 0 and math.isfinite(max_weight) and max_weight > 0):
        raise ValueError(f"secure_aggregator needs a positive clip and max_weight, got {clip!r}, {max_weight!r}")
    mean = tff.aggregators.MeanFactory(
        value_sum_factory=tff.aggregators.SecureSumFactory(upper_bound_threshold=clip * max_weight),
        weight_sum_factory=tff.aggregators.SecureSumFactory(
            upper_bound_threshold=max_weight, lower_bound_threshold=0.0
        ),
    )
    clipped = tff.aggregators.clipping_factory(
        clip,
        mean,
        clipped_count_sum_factory=tff.aggregators.SecureSumFactory(upper_bound_threshold=1, lower_bound_threshold=0),
    )
    return _LoweredWeighted(clipped)
