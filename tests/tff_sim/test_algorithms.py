"""Every algorithm builds TFF's process and trains one round on the tiny corpus."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from data_tools import load_prepared
from tff_sim.config import ALGORITHMS, DEFAULT_SERVER_LR, SimConfig
from tff_sim.runtime import RuntimeConfig
from tff_sim.simulation import run_simulation

pytest.importorskip("tensorflow_federated")

_TRAIN_CLIENTS = 32  # users of the test corpus's train split (tests/conftest.py's ``prepared``)
_DP_EPSILON = 98.3849150842565  # privacy.dp_epsilon(z=0.2, K=3, N=_TRAIN_CLIENTS, 1 round, delta=N^-1.1), computed once


@pytest.mark.parametrize("algorithm", [a for a in ALGORITHMS if a != "fedavg"])  # fedavg: test_simulation
def test_algorithm_runs_a_round(algorithm: str, prepared: Path, tmp_path: Path) -> None:
    sim = SimConfig(algorithm=algorithm, rounds=1, clients_per_round=2, preset="tiny", batch_size=8)  # type: ignore[arg-type]
    summary = run_simulation(prepared, tmp_path / algorithm, sim, RuntimeConfig(), progress=False)
    assert summary["algorithm"] == algorithm
    assert (
        json.loads((tmp_path / algorithm / "config.json").read_text())["sim"]["server_lr"]
        == DEFAULT_SERVER_LR[algorithm]
    )
    assert 0.0 <= summary["test"]["recall_at_1"] <= 1.0


@pytest.mark.parametrize("aggregator", ["quant8", "quant2", "dp"])
def test_aggregator_runs_a_round(aggregator: str, prepared: Path, tmp_path: Path) -> None:
    sim = SimConfig(
        rounds=1, clients_per_round=3, preset="tiny", batch_size=8, aggregator=aggregator, dp_noise_multiplier=0.2
    )
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


def test_sim_config_bad_values_named() -> None:
    with pytest.raises(ValueError, match="fedmagic"):
        SimConfig(algorithm="fedmagic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clients_per_round"):
        SimConfig(clients_per_round=0)
    with pytest.raises(ValueError, match="quant3"):
        SimConfig(aggregator="quant3")
    with pytest.raises(ValueError, match="fedsgd"):
        SimConfig(algorithm="fedsgd", aggregator="dp")
    with pytest.raises(ValueError, match="needs more than 10 clients per round"):
        SimConfig(aggregator="dp", dp_noise_multiplier=1.0, clients_per_round=10)
    with pytest.raises(ValueError, match="server_momentum"):
        SimConfig(server_momentum=1.0)
    assert dataclasses.replace(SimConfig(), server_lr=0.1).effective_server_lr == 0.1
