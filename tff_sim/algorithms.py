"""The TFF learning processes fedkeys simulates: TFF's own, configured.

- ``fedavg``: FedAvg (McMahan et al. 2017), client SGD, server SGD at rate 1,
  clients weighted by their tokens (non-pad next-word targets).
- ``fedsgd``: the FedAvg paper's baseline, one gradient per client per round.
- ``fedavgm``: FedAvg with server momentum (Hsu et al. 2019).
- ``fedadam`` / ``fedyogi``: adaptive server optimizers (Reddi et al. 2021,
  "Adaptive Federated Optimization"), epsilon ``SimConfig.server_epsilon``.
- ``fedprox``: FedAvg plus a proximal term (Li et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff
from tensorflow_federated.python.learning.algorithms import fed_sgd
from tensorflow_federated.python.learning.templates import proximal_client_work

from model import MaskedCrossEntropy, ModelConfig, build_model, keyboard_metrics
from tff_sim.aggregators import SECURE_MAX_WEIGHT, build_aggregator
from tff_sim.aggregators_codec import DeviceCodecFactory, with_codec_seeds
from tff_sim.client_datasets import element_spec
from tff_sim.config import SimConfig
from wire.codec import CodecSpec

# Clients iterate their dataset in a tf.while_loop, not in ``dataset.reduce``
# (TFF's default): on TFF's C++ worker the reduce loop runs the model step as a
# tf.data function, measured 2.25x slower per round here (1,113 against 2,501
# tokens/s, tiny model, K=10, same batches and the same resulting model).
_LOOP = tff.learning.LoopImplementation.DATASET_ITERATOR


def model_fn_for(config: ModelConfig, seq_len: int, init_seed: int, *, with_metrics: bool = False) -> Callable[[], Any]:
    """A TFF model constructor whose clients are weighted by tokens, not rows.

    Training needs only the loss: ranking every position against the whole
    vocabulary for recall@k costs about a third of a CPU training step, so the
    keyboard metrics are built only ``with_metrics`` (federated evaluation).
    """

    def model_fn() -> Any:
        model = tff.learning.models.from_keras_model(
            build_model(config, seed=init_seed),
            loss=MaskedCrossEntropy(config.pad_id),
            input_spec=element_spec(seq_len),
            metrics=keyboard_metrics(config) if with_metrics else None,
        )
        rows_forward_pass = model.forward_pass

        def forward_pass(batch: Any, training: bool = True) -> Any:
            output = rows_forward_pass(batch, training=training)
            tokens = tf.reduce_sum(tf.cast(tf.not_equal(batch[1], config.pad_id), tf.int64))
            # FedAvg weights each client by the sum of num_examples over its batches.
            return output._replace(num_examples=tokens)

        model.forward_pass = forward_pass
        return model

    return model_fn


def _server_optimizer(sim: SimConfig) -> Any:
    lr = sim.effective_server_lr
    if sim.algorithm == "fedavgm":
        return tff.learning.optimizers.build_sgdm(learning_rate=lr, momentum=sim.server_momentum)
    if sim.algorithm == "fedadam":
        return tff.learning.optimizers.build_adam(learning_rate=lr, epsilon=sim.server_epsilon)
    if sim.algorithm == "fedyogi":
        return tff.learning.optimizers.build_yogi(learning_rate=lr, epsilon=sim.server_epsilon)
    return tff.learning.optimizers.build_sgdm(learning_rate=lr)


def _codec_process(sim: SimConfig, model_fn: Callable[[], Any], server: Any, bits: int) -> Any:
    """FedAvg-family process whose clients take ``aggregators_codec.client_input`` and upload as phones do.

    TFF's FedAvg composed from its own parts (``build_weighted_fed_avg`` does
    the same), with the client work wrapped to pass each client's codec seed to
    ``DeviceCodecFactory``.
    """
    client = tff.learning.optimizers.build_sgdm(learning_rate=sim.training.learning_rate)
    weighting = tff.learning.ClientWeighting.NUM_EXAMPLES

    @tff.tensorflow.computation
    def initial_weights() -> Any:
        return tff.learning.models.ModelWeights.from_model(model_fn())

    weights_type = initial_weights.type_signature.result
    if sim.algorithm == "fedsgd":  # TFF builds FedSGD's client work only inside build_fed_sgd
        work = fed_sgd._build_fed_sgd_client_work(
            model_fn, tff.learning.metrics.sum_then_finalize, loop_implementation=_LOOP
        )
    elif sim.algorithm == "fedprox":
        work = proximal_client_work.build_model_delta_client_work(
            model_fn, client, weighting, delta_l2_regularizer=sim.prox_strength, loop_implementation=_LOOP
        )
    else:
        work = tff.learning.templates.build_model_delta_client_work(
            model_fn, client, weighting, loop_implementation=_LOOP
        )
    work = with_codec_seeds(work)
    update_type = work.next.type_signature.result.result.member.update
    aggregator = DeviceCodecFactory(bits, sim.training.clip_norm).create(update_type, tff.TensorType(np.float32))
    return tff.learning.templates.compose_learning_process(
        initial_weights,
        tff.learning.templates.build_broadcast_process(weights_type),
        work,
        aggregator,
        tff.learning.templates.build_apply_optimizer_finalizer(server, weights_type),
    )


def uses_codec_seeds(sim: SimConfig) -> bool:
    """Whether ``build_process(sim, ...)`` takes ``aggregators_codec.client_input`` per client."""
    return CodecSpec(sim.training.codec).bits is not None


def build_process(sim: SimConfig, model_fn: Callable[[], Any]) -> Any:
    """The iterative learning process for ``sim.algorithm`` with ``sim.aggregator`` and the clients' codec."""
    server = _server_optimizer(sim)
    bits = CodecSpec(sim.training.codec).bits
    if bits is not None:
        return _codec_process(sim, model_fn, server, bits)
    aggregator = build_aggregator(
        sim.aggregator,
        clients_per_round=sim.clients_per_round,
        noise_multiplier=sim.dp_noise_multiplier,
        secure_clip=sim.secure_clip,
        max_weight=sim.max_client_weight or SECURE_MAX_WEIGHT,
    )
    if sim.algorithm == "fedsgd":
        return tff.learning.algorithms.build_fed_sgd(
            model_fn, server_optimizer_fn=server, model_aggregator=aggregator, loop_implementation=_LOOP
        )
    client = tff.learning.optimizers.build_sgdm(learning_rate=sim.training.learning_rate)
    if sim.aggregator == "dp":
        # DP bounds each user's influence, so every client counts the same (unweighted mean).
        return tff.learning.algorithms.build_unweighted_fed_avg(
            model_fn,
            client_optimizer_fn=client,
            server_optimizer_fn=server,
            model_aggregator=aggregator,
            loop_implementation=_LOOP,
        )
    if sim.algorithm == "fedprox":
        return tff.learning.algorithms.build_weighted_fed_prox(
            model_fn,
            proximal_strength=sim.prox_strength,
            client_optimizer_fn=client,
            server_optimizer_fn=server,
            client_weighting=tff.learning.ClientWeighting.NUM_EXAMPLES,
            model_aggregator=aggregator,
            loop_implementation=_LOOP,
        )
    return tff.learning.algorithms.build_weighted_fed_avg(
        model_fn,
        client_optimizer_fn=client,
        server_optimizer_fn=server,
        client_weighting=tff.learning.ClientWeighting.NUM_EXAMPLES,
        model_aggregator=aggregator,
        loop_implementation=_LOOP,
    )


def build_evaluation(model_fn: Callable[[], Any]) -> Any:
    """TFF federated evaluation with the keyboard metrics, summed over clients."""
    return tff.learning.algorithms.build_fed_eval(model_fn, loop_implementation=_LOOP)
