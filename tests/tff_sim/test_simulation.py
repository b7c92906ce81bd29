"""fedkeys sim run end to end on the tiny corpus, in real TFF processes."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tff_sim.config import SimConfig
from tff_sim.runtime import RuntimeConfig
from tff_sim.schedules import Schedule
from tff_sim.simulation import DivergedError, SimulationError, divergence, round_learning_rates, run_simulation
from wire.contract import ClientTraining

pytest.importorskip("tensorflow_federated")

SIM = SimConfig(
    algorithm="fedavg",
    rounds=4,
    clients_per_round=4,
    training=ClientTraining(local_epochs=2, learning_rate=1.0, data_seed=3),  # the CLI's --seed is the data seed too
    batch_size=8,
    preset="tiny",
    seed=3,
    eval_every=2,
    checkpoint_every=2,
)


def _weights(run: Path) -> list[np.ndarray]:
    with np.load(run / "checkpoint" / "weights.npz") as data:
        return [data[k] for k in sorted(data.files) if k.startswith("w")]


@pytest.fixture(scope="module")
def full_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sim") / "run"
    summary = run_simulation(prepared, out, SIM, RuntimeConfig(), progress=False, references={"n-gram": 0.5})
    return out, summary


def test_run_simulation_writes_the_run_directory(full_run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = full_run
    for name in ("metrics.csv", "summary.json", "recall.png", "tokenizer.model", "checkpoint/weights.npz"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").iterdir())
    assert summary["algorithm"] == "fedavg" and summary["rounds"] == 4
    assert summary["upload_bytes_per_client"] > 0
    for key in ("recall_at_1", "recall_at_3", "perplexity"):
        assert key in summary["test"]
    assert json.loads((out / "summary.json").read_text())["test"] == summary["test"]
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["round"]) for r in rows] == [1, 2, 3, 4]
    assert all(int(r["clients"]) == 4 and int(r["train_tokens"]) > 0 for r in rows)
    assert [bool(r["val_recall_at_1"]) for r in rows] == [False, True, False, True]


def test_run_simulation_learns(full_run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = full_run
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < losses[0]
    # About 30 words: an untrained model's recall@3 is near 0.1; four rounds learn at least word frequencies.
    assert summary["test"]["recall_at_3"] > 0.2


def test_run_simulation_resume_ends_at_the_same_model(
    full_run: tuple[Path, dict[str, Any]], prepared: Path, tmp_path: Path
) -> None:
    out, _ = full_run
    partial = tmp_path / "run"
    import dataclasses

    run_simulation(prepared, partial, dataclasses.replace(SIM, rounds=2), RuntimeConfig(), progress=False)
    run_simulation(prepared, partial, SIM, RuntimeConfig(), resume=True, progress=False)
    for a, b in zip(_weights(out), _weights(partial), strict=True):
        np.testing.assert_array_equal(a, b)
    with (partial / "metrics.csv").open() as f:
        assert [int(r["round"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]


def _sim_command(prepared: Path, out: Path) -> list[str]:
    """``fedkeys sim run`` with exactly SIM's settings."""
    return [
        sys.executable, "-m", "fedkeys.cli", "sim", "run", "--data", str(prepared), "--out", str(out),
        "--algorithm", SIM.algorithm, "--rounds", str(SIM.rounds), "--clients-per-round", str(SIM.clients_per_round),
        "--local-epochs", str(SIM.training.local_epochs), "--client-lr", str(SIM.training.learning_rate),
        "--batch-size", str(SIM.batch_size), "--model", SIM.preset, "--seed", str(SIM.seed),
        "--eval-every", str(SIM.eval_every), "--checkpoint-every", str(SIM.checkpoint_every), "--no-progress",
    ]  # fmt: skip


def _rounds_logged(out: Path) -> list[int]:
    try:
        with (out / "metrics.csv").open() as f:
            return [int(r["round"]) for r in csv.DictReader(f)]
    except (FileNotFoundError, ValueError, KeyError):
        return []


def test_run_simulation_killed_mid_round_resumes_to_the_same_model(
    full_run: tuple[Path, dict[str, Any]], prepared: Path, tmp_path: Path
) -> None:
    # kill -9 the driver while round 4 runs (round 3 is logged, the last checkpoint is round 2), then --resume.
    out, _ = full_run
    run = tmp_path / "killed"
    command = _sim_command(prepared, run)
    with (tmp_path / "first.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600
            while 3 not in _rounds_logged(run):
                assert proc.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline, "round 3 never finished"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "summary.json").exists() and not (run / "checkpoint").exists()
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr and "after round 2" in resumed.stderr
    for a, b in zip(_weights(out), _weights(run), strict=True):
        np.testing.assert_array_equal(a, b)
    assert _rounds_logged(run) == [1, 2, 3, 4]


def test_run_simulation_resume_before_any_checkpoint_starts_over(prepared: Path, tmp_path: Path) -> None:
    import dataclasses

    run = tmp_path / "run"
    (run / "state").mkdir(parents=True)  # killed before its first checkpoint was written
    summary = run_simulation(
        prepared, run, dataclasses.replace(SIM, rounds=1), RuntimeConfig(), resume=True, progress=False
    )
    assert summary["rounds"] == 1 and _rounds_logged(run) == [1]


def test_divergence_names_each_cause() -> None:
    healthy = {"loss": 3.3, "num_examples": 64, "num_batches": 8}
    assert divergence(healthy, 0) is None
    assert divergence(healthy, 1) == "the aggregated update was not finite"
    assert "dropped them all" in str(divergence({**healthy, "loss": 0.0, "num_examples": 0}, 0))
    assert divergence({**healthy, "loss": float("nan")}, 0) == "the training loss is nan"


def test_run_simulation_diverging_stops_with_a_clear_error(prepared: Path, tmp_path: Path) -> None:
    import dataclasses

    run = tmp_path / "run"
    blown = dataclasses.replace(SIM, training=SIM.training.replace(learning_rate=1e30), rounds=3, checkpoint_every=1)
    expected = r"round \d diverged: .* client lr 1e\+30 .*lower the learning rates"
    with pytest.raises(DivergedError, match=expected) as err:
        run_simulation(prepared, run, blown, RuntimeConfig(), progress=False)
    bad_round = int(str(err.value).split()[1])
    # The blown-up round is neither logged nor checkpointed: the run resumes from the round before it.
    assert _rounds_logged(run) == list(range(1, bad_round))
    with (run / "metrics.csv").open() as f:
        assert all(np.isfinite(float(r["loss"])) for r in csv.DictReader(f))


def test_run_simulation_resume_without_state_is_an_error(prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="nothing to resume"):
        run_simulation(prepared, tmp_path / "none", SIM, RuntimeConfig(), resume=True, progress=False)


def test_run_simulation_existing_out_needs_a_flag(prepared: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SimulationError, match="--resume or --overwrite"):
        run_simulation(prepared, tmp_path, SIM, RuntimeConfig(), progress=False)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_run_simulation_two_workers_same_model(
    full_run: tuple[Path, dict[str, Any]], prepared: Path, tmp_path: Path
) -> None:
    # TFF's mergeable context splits each round's clients over the workers; the model must not change.
    out, _ = full_run
    run_simulation(prepared, tmp_path / "two", SIM, RuntimeConfig(local_workers=2), progress=False)
    for a, b in zip(_weights(out), _weights(tmp_path / "two"), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert len(list((tmp_path / "two" / "logs").glob("tff_worker_*.log"))) == 2


def test_run_simulation_init_from_starts_at_that_model(
    full_run: tuple[Path, dict[str, Any]], prepared: Path, tmp_path: Path
) -> None:
    source, _ = full_run
    # A vanishing learning rate leaves the model where it started: the source run's weights, not the seeded ones.
    training = SIM.training.replace(learning_rate=1e-12)
    sim = dataclasses.replace(SIM, rounds=1, training=training, eval_every=1, checkpoint_every=1)
    summary = run_simulation(prepared, tmp_path / "run", sim, RuntimeConfig(), progress=False, init_from=source)
    for got, want in zip(_weights(tmp_path / "run"), _weights(source), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert summary["init_from"]["run"] == str(source)
    assert summary["init_from"]["kind"] == "simulation"
    assert summary["trained_on"]["split"] == "train"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["init_from"]["run"] == str(source)


def test_run_simulation_init_from_another_model_size_is_refused(
    full_run: tuple[Path, dict[str, Any]], prepared: Path, tmp_path: Path
) -> None:
    source, _ = full_run
    sim = dataclasses.replace(SIM, preset="small", rounds=1)
    with pytest.raises(SimulationError, match="is not this run's"):
        run_simulation(prepared, tmp_path / "run", sim, RuntimeConfig(), progress=False, init_from=source)
    assert not (tmp_path / "run").exists()


def test_run_simulation_schedules_set_each_rounds_rates(prepared: Path, tmp_path: Path) -> None:
    sim = dataclasses.replace(
        SIM,
        rounds=3,
        eval_every=3,
        checkpoint_every=3,
        client_lr_schedule=Schedule(warmup_rounds=2),
        server_lr_schedule=Schedule(decay="linear", final_scale=0.5),
    )
    run_simulation(prepared, tmp_path / "run", sim, RuntimeConfig(), progress=False)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["client_lr"]) for r in rows] == [0.5, 1.0, 1.0]
    assert [float(r["server_lr"]) for r in rows] == [1.0, 0.75, 0.5]


def test_round_learning_rates_scale_both_sides() -> None:
    sim = dataclasses.replace(
        SIM, algorithm="fedadam", rounds=4, client_lr_schedule=Schedule(decay="linear", final_scale=0.25)
    )
    assert round_learning_rates(sim, 1) == (1.0, 0.01)
    assert round_learning_rates(sim, 4) == (0.25, 0.01)
