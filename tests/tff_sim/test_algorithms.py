"""Every algorithm builds TFF's process and trains one round on the tiny corpus."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tff_sim.config import ALGORITHMS, DEFAULT_SERVER_LR, SimConfig
from tff_sim.runtime import RuntimeConfig
from tff_sim.simulation import run_simulation

pytest.importorskip("tensorflow_federated")


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


def test_sim_config_bad_values_named() -> None:
    with pytest.raises(ValueError, match="fedmagic"):
        SimConfig(algorithm="fedmagic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clients_per_round"):
        SimConfig(clients_per_round=0)
    with pytest.raises(ValueError, match="server_momentum"):
        SimConfig(server_momentum=1.0)
    assert dataclasses.replace(SimConfig(), server_lr=0.1).effective_server_lr == 0.1
