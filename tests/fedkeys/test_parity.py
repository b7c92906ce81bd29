"""fedkeys.parity: one round through ``fedkeys serve`` + LiteRT devices equals one TFF round (real HTTP, real TFF)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedkeys.admin_client import AdminClient, AdminError
from fedkeys.demo_coordinator import RunningCoordinator, coordinator_process
from fedkeys.export import ExportConfig, export_tflite
from fedkeys.parity import ParityConfig, ParityError, deployment_round, max_abs_difference, run_parity
from model import ModelConfig, build_model
from model.checkpoint import save_model
from wire.contract import ClientTraining

B, T = 4, 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCoordinator]:
    with coordinator_process(tmp_path_factory.mktemp("parity-coordinator")) as running:
        yield running


@pytest.fixture(scope="module")
def plan(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    from data_tools import load_prepared

    root = tmp_path_factory.mktemp("parity-plan")
    config = ModelConfig.from_preset("tiny", vocab_size=load_prepared(prepared).tokenizer.vocab_size)
    model = build_model(config, seed=3)
    save_model(root / "run" / "checkpoint", config, model)
    shutil.copyfile(prepared / "tokenizer.model", root / "run" / "tokenizer.model")
    export_tflite(root / "run", root / "art", ExportConfig(batch_size=B, seq_len=T))
    return root / "art", [np.asarray(w, np.float32) for w in model.get_weights()]


def test_max_abs_difference_exact_numbers() -> None:
    a = [np.array([1.0, 2.0], np.float32), np.array([[0.5]], np.float32)]
    b = [np.array([1.0, 2.25], np.float32), np.array([[-0.5]], np.float32)]
    assert max_abs_difference(a, b) == 1.0
    assert max_abs_difference(a, a) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([np.zeros(2)], [], "length"),
        ([np.zeros(2)], [np.zeros(3)], "shape"),
    ],
)
def test_max_abs_difference_mismatched_weights_named(a: list[np.ndarray], b: list[np.ndarray], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        max_abs_difference(a, b)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"clients": ()}, "clients"),
        ({"clients": (1, 1)}, "clients"),
        ({"clients": (-1,)}, "clients"),
        ({"clients": (1,), "training": ClientTraining(max_rows=None)}, "training.max_rows must be set"),
    ],
)
def test_parity_config_bad_values_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParityConfig(**fields)  # type: ignore[arg-type]


def test_parity_deployed_round_equals_tff_round(
    server: RunningCoordinator, plan: tuple[Path, list[np.ndarray]], prepared: Path, tmp_path: Path
) -> None:
    art, initial = plan
    # two epochs, a row cap below some users' rows and a batch that spans the epoch boundary: the whole contract
    training = ClientTraining(learning_rate=0.5, local_epochs=2, max_rows=6, data_seed=7)
    config = ParityConfig(clients=(0, 3, 5, 11), training=training)
    result = run_parity(server.url, server.api_key, art, initial, prepared, config, tmp_path)
    print(f"parity: max |deployed - simulated| = {result.max_abs_diff:.3g} (update up to {result.max_abs_update:.3g})")
    assert result.max_abs_update > 1e-2  # the round really trained
    assert result.max_abs_diff < 1e-4
    assert result.max_abs_diff >= 0.0  # reported as measured (LiteRT and TF kernels add in different orders)


def test_parity_with_another_data_seed_differs(
    server: RunningCoordinator, plan: tuple[Path, list[np.ndarray]], prepared: Path, tmp_path: Path
) -> None:
    """The check can fail: a simulation with the wrong row order does not match the deployment."""
    from fedkeys.parity import simulation_round

    art, initial = plan
    training = ClientTraining(local_epochs=1, max_rows=6, data_seed=7)
    config = ParityConfig(clients=(1, 2), population="seeded", training=training)
    with AdminClient(server.url, server.api_key) as admin:
        deployed = deployment_round(admin, server.url, art, initial, prepared, config, tmp_path / "d")
    same = simulation_round(prepared, art, initial, deployed.round, config, tmp_path / "logs")
    other = simulation_round(
        prepared, art, initial, deployed.round,
        ParityConfig(clients=(1, 2), training=training.replace(data_seed=8)), tmp_path / "logs",
    )  # fmt: skip
    assert max_abs_difference(deployed.weights, same) < 1e-4
    assert max_abs_difference(deployed.weights, other) > 10 * max(max_abs_difference(deployed.weights, same), 1e-6)


def test_parity_quant8_deployed_round_equals_tff_quant8_round(
    server: RunningCoordinator, plan: tuple[Path, list[np.ndarray]], prepared: Path, tmp_path: Path
) -> None:
    """Compressed rounds too: the simulation encodes each client as its phone did (same seed, same levels)."""
    from fedkeys.parity import simulation_round

    art, initial = plan
    training = ClientTraining(learning_rate=0.5, local_epochs=2, max_rows=6, data_seed=7, codec="quant8")
    config = ParityConfig(clients=(0, 3, 5), population="quant8", training=training)
    result = run_parity(server.url, server.api_key, art, initial, prepared, config, tmp_path / "run")
    print(f"quant8 parity: max |deployed - simulated| = {result.max_abs_diff:.3g}")
    assert result.codec == "quant8" and result.max_abs_update > 1e-2
    assert result.max_abs_diff < 1e-4
    # sim run reports the bytes a phone uploads: the same container, up to the decimals of the header's ranges
    assert abs(result.deployed_upload_bytes - result.simulated_upload_bytes) < 16 * len(initial)
    assert result.deployed_upload_bytes < sum(4 * w.size for w in initial) / 2

    # the check can fail: other rounding seeds, or no quantization at all, land visibly elsewhere
    again = ParityConfig(clients=(1, 2), population="quant8-seeds", training=training)
    with AdminClient(server.url, server.api_key) as admin:
        deployed = deployment_round(admin, server.url, art, initial, prepared, again, tmp_path / "d")
    same = simulation_round(prepared, art, initial, deployed.round, again, tmp_path / "l", deployed.codec_seeds)
    shifted = {user: (rotation, rounding + 1) for user, (rotation, rounding) in deployed.codec_seeds.items()}
    wrong = simulation_round(prepared, art, initial, deployed.round, again, tmp_path / "l", shifted)
    float32 = ParityConfig(clients=(1, 2), training=training.replace(codec="float32"))
    exact = simulation_round(prepared, art, initial, deployed.round, float32, tmp_path / "l")
    close = max(max_abs_difference(deployed.weights, same), 1e-7)
    assert max_abs_difference(deployed.weights, wrong) > 10 * close
    assert max_abs_difference(deployed.weights, exact) > 10 * close


def test_parity_unknown_client_is_named(
    server: RunningCoordinator, plan: tuple[Path, list[np.ndarray]], prepared: Path, tmp_path: Path
) -> None:
    art, initial = plan
    with AdminClient(server.url, server.api_key) as admin, pytest.raises(ParityError, match="99999"):
        deployment_round(
            admin, server.url, art, initial, prepared, ParityConfig(clients=(99999,), population="nobody"), tmp_path
        )


def test_admin_api_refusal_is_named(server: RunningCoordinator) -> None:
    with AdminClient(server.url, "wrong-key") as admin, pytest.raises(AdminError, match="40"):
        admin.status("parity")
