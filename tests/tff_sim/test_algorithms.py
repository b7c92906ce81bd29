"""Every algorithm builds TFF's process and trains one round on the tiny corpus."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from data_tools import load_prepared
from tff_sim.config import ALGORITHMS, DEFAULT_SERVER_LR, SimConfig, split_aggregator
from tff_sim.runtime import RuntimeConfig, tff_runtime
from tff_sim.simulation import run_simulation
from wire.contract import ClientTraining

pytest.importorskip("tensorflow_federated")

_TRAIN_CLIENTS = 32  # users of the test corpus's train split (tests/conftest.py's ``prepared``)
_DP_EPSILON = 98.3849150842565  # privacy.dp_epsilon(z=0.2, K=3, N=_TRAIN_CLIENTS, 1 round, delta=N^-1.1), computed once


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sim_config_records_each_algorithms_default_server_lr(algorithm: str) -> None:
    assert SimConfig(algorithm=algorithm).to_dict()["server_lr"] == DEFAULT_SERVER_LR[algorithm]  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_algorithm_loss_falls_on_a_repeated_batch_and_weights_move(algorithm: str, prepared: Path) -> None:
    """Three rounds on the same two clients' rows: each algorithm must learn them, not just run."""
    import numpy as np

    from tff_sim.algorithms import build_process, model_fn_for
    from tff_sim.client_datasets import round_datasets
    from tff_sim.simulation import sim_model_config

    train = load_prepared(prepared).train
    sim = SimConfig(algorithm=algorithm, rounds=3, clients_per_round=2, preset="tiny", batch_size=8)  # type: ignore[arg-type]
    config = sim_model_config(load_prepared(prepared).tokenizer.vocab_size, "tiny")
    datasets, _ = round_datasets(
        train, [0, 1], config, sim.seq_len, sim.batch_size, epochs=1, seed=0, round_num=1, max_rows=16
    )
    process = build_process(sim, model_fn_for(config, sim.seq_len, sim.seed))
    with tff_runtime(RuntimeConfig(), default_num_clients=2):
        state = process.initialize()
        start = [np.asarray(w) for w in process.get_model_weights(state).trainable]
        losses = []
        for _ in range(3):
            result = process.next(state, datasets)
            state = result.state
            losses.append(float(result.metrics["client_work"]["train"]["loss"]))
        end = [np.asarray(w) for w in process.get_model_weights(state).trainable]
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(end, start, strict=True)) > 1e-4


@pytest.mark.parametrize("aggregator", ["quant8", "quant2", "dp"])
def test_aggregator_runs_a_round(aggregator: str, prepared: Path, tmp_path: Path) -> None:
    server, codec = split_aggregator(aggregator)
    sim = SimConfig(
        rounds=1, clients_per_round=3, preset="tiny", batch_size=8, aggregator=server, dp_noise_multiplier=0.2,
        training=ClientTraining(codec=codec),
    )  # fmt: skip
    summary = run_simulation(prepared, tmp_path / aggregator, sim, RuntimeConfig(), progress=False)
    assert summary["aggregator"] == aggregator
    if aggregator == "dp":
        assert summary["upload_bytes_per_client"] == summary["float32_bytes_per_client"]
        population = load_prepared(prepared).train.num_clients
        assert population == _TRAIN_CLIENTS
        # the run's own K=3 of N, 1 round, z=0.2, delta=N^-1.1: a doubled or halved z at the accountant moves it
        assert summary["privacy"]["delta"] == pytest.approx(_TRAIN_CLIENTS**-1.1, rel=1e-12)
        assert summary["privacy"]["epsilon"] == pytest.approx(_DP_EPSILON, rel=1e-9)
    else:
        assert summary["upload_bytes_per_client"] < summary["float32_bytes_per_client"] / 3
    assert 0.0 <= summary["test"]["recall_at_1"] <= 1.0


@pytest.mark.parametrize(("algorithm", "codec"), [("fedsgd", "quant4"), ("fedprox", "quant8"), ("fedadam", "quant8")])
def test_codec_process_trains_for_every_client_work(algorithm: str, codec: str, prepared: Path) -> None:
    """FedSGD's and FedProx's client work take the codec seeds too: one round moves the weights, loss finite."""
    import numpy as np

    from data_tools import load_prepared
    from tff_sim.algorithms import build_process, model_fn_for
    from tff_sim.runtime import tff_runtime
    from tff_sim.simulation import sampled_round, sim_model_config

    sim = SimConfig(algorithm=algorithm, clients_per_round=2, preset="tiny", batch_size=8,  # type: ignore[arg-type]
                    training=ClientTraining(codec=codec))  # fmt: skip
    corpus = load_prepared(prepared)
    config = sim_model_config(corpus.tokenizer.vocab_size, sim.preset)
    process = build_process(sim, model_fn_for(config, sim.seq_len, sim.seed))
    with tff_runtime(RuntimeConfig(), default_num_clients=2):
        state = process.initialize()
        before = [np.asarray(w) for w in process.get_model_weights(state).trainable]
        result = process.next(state, sampled_round(corpus.train, sim, config, 1).datasets)
        after = [np.asarray(w) for w in process.get_model_weights(result.state).trainable]
    assert np.isfinite(float(result.metrics["client_work"]["train"]["loss"]))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(after, before, strict=True)) > 0


def test_sim_config_bad_values_named() -> None:
    with pytest.raises(ValueError, match="fedmagic"):
        SimConfig(algorithm="fedmagic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clients_per_round"):
        SimConfig(clients_per_round=0)
    with pytest.raises(ValueError, match="quant3"):
        SimConfig(aggregator="quant3")
    with pytest.raises(ValueError, match="aggregator must be one of \\('mean', 'dp', 'secure'\\), got 'quant8'"):
        SimConfig(aggregator="quant8")  # a codec, not an aggregator: split_aggregator maps the CLI's name
    with pytest.raises(ValueError, match="codec 'quant8' works with aggregator 'mean', not 'dp'"):
        SimConfig(aggregator="dp", dp_noise_multiplier=0.5, training=ClientTraining(codec="quant8"))
    with pytest.raises(ValueError, match="clip_norm is applied by the device codec"):
        SimConfig(training=ClientTraining(clip_norm=1.0))
    assert split_aggregator("quant4") == ("mean", "quant4") and split_aggregator("dp") == ("dp", "float32")
    with pytest.raises(ValueError, match="fedsgd"):
        SimConfig(algorithm="fedsgd", aggregator="dp")
    with pytest.raises(ValueError, match="needs more than 10 clients per round"):
        SimConfig(aggregator="dp", dp_noise_multiplier=1.0, clients_per_round=10)
    with pytest.raises(ValueError, match="server_momentum"):
        SimConfig(server_momentum=1.0)
    assert dataclasses.replace(SimConfig(), server_lr=0.1).effective_server_lr == 0.1
