"""Issue 17.2: ``fedkeys admin download-model --out DIR`` writes a run folder ``suggest`` and ``export`` read."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from data_tools import load_prepared
from fedkeys.cli import main
from fedkeys.demo_coordinator import RunningCoordinator, coordinator_process
from fedkeys.deployed_log import COLUMNS
from model import ModelConfig, build_model, load_checkpoint, save_model
from wire.manifest import load_manifest
from wire.provenance import ModelProvenance, TrainedOn

B, T = 4, 8
TRAINED_ON = {"data": "data/proxy", "split": "proxy", "users": 3, "tokens": 120}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCoordinator]:
    with coordinator_process(tmp_path_factory.mktemp("download-coordinator")) as running:
        yield running


@pytest.fixture(scope="module")
def task(server: RunningCoordinator, prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A task created from a tiny run's plan; the run directory it came from."""
    root = tmp_path_factory.mktemp("download-plan")
    run = root / "run"
    config = ModelConfig.from_preset("tiny", vocab_size=load_prepared(prepared).tokenizer.vocab_size)
    save_model(run / "checkpoint", config, build_model(config, seed=5))
    shutil.copyfile(prepared / "tokenizer.model", run / "tokenizer.model")
    (run / "summary.json").write_text(json.dumps({"kind": "central", "trained_on": TRAINED_ON}))
    plan = ["export", "tflite", "--from", str(run), "--out", str(root / "plan"), "--batch-size", str(B)]
    assert main([*plan, "--seq-len", str(T)]) == 0
    admin = ["--coordinator", server.url, "--api-key-file", str(server.log_path.parent / "api_key")]
    create = ["admin", "create-task", *admin, "--population", "kb", "--plan", str(root / "plan")]
    assert main([*create, "--checkpoint", str(run), "--goal", "2", "--codec", "float32"]) == 0
    return run


def test_download_model_writes_a_complete_run_folder(
    server: RunningCoordinator, task: Path, prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deployed"
    admin = ["--coordinator", server.url, "--api-key-file", str(server.log_path.parent / "api_key")]
    assert main(["admin", "download-model", *admin, "--population", "kb", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"model version 0 of kb -> {out}\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint", "metrics.csv", "summary.json", "tensorboard", "tokenizer.model",
    ]  # fmt: skip
    assert (out / "metrics.csv").read_text().splitlines() == [",".join(COLUMNS)]  # no round committed yet
    assert (out / "tokenizer.model").read_bytes() == (prepared / "tokenizer.model").read_bytes()
    config, weights = load_checkpoint(out / "checkpoint")
    original_config, original = load_checkpoint(task / "checkpoint")
    assert config == original_config
    for got, want in zip(weights, original, strict=True):
        np.testing.assert_array_equal(got, want)
    source = json.loads((out / "summary.json").read_text())["source"]
    assert {
        k: source[k] for k in ("coordinator", "population", "task", "model_version", "round", "rounds_committed")
    } == {
        "coordinator": server.url,
        "population": "kb",
        "task": "train",
        "model_version": 0,
        "round": None,  # version 0 is the initial model, not produced by a round
        "rounds_committed": 0,
    }

    # suggest and export tflite read it like any run (today: "tokenizer.model is missing")
    assert main(["suggest", "--model", str(out), "see you"]) == 0
    from_download = capsys.readouterr().out
    assert main(["suggest", "--model", str(task), "see you"]) == 0
    assert from_download == capsys.readouterr().out
    assert main(["export", "tflite", "--from", str(out), "--out", str(tmp_path / "art")]) == 0
    assert (tmp_path / "art" / "infer.tflite").is_file()
    # where it came from: the task started from its plan's own model, so the plan's record is its start
    summary = json.loads((out / "summary.json").read_text())
    plan = {"run": str(task), "kind": "central", "rounds": 0, "trained_on": TRAINED_ON}
    assert (summary["kind"], summary["rounds"], summary["init_from"]) == ("deployed", 0, plan)
    assert summary["plan_provenance"] == plan | {"init_from": None, "pretrained_on": None}
    assert load_manifest(tmp_path / "art").provenance == ModelProvenance(
        str(out), "deployed", 0, None, str(task), TrainedOn(**TRAINED_ON)
    )


def test_download_model_of_a_task_not_started_from_its_plans_model_records_no_start(
    server: RunningCoordinator, task: Path, prepared: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    config = ModelConfig.from_preset("tiny", vocab_size=load_prepared(prepared).tokenizer.vocab_size)
    save_model(other / "checkpoint", config, build_model(config, seed=6))  # same shapes, other weights
    admin = ["--coordinator", server.url, "--api-key-file", str(server.log_path.parent / "api_key")]
    create = ["admin", "create-task", *admin, "--population", "kb2", "--plan", str(task.parent / "plan")]
    assert main([*create, "--checkpoint", str(other), "--goal", "2", "--codec", "float32"]) == 0
    assert main(["admin", "download-model", *admin, "--population", "kb2", "--out", str(tmp_path / "d")]) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["init_from"] is None and summary["plan_provenance"]["run"] == str(task)


def test_download_model_unknown_version_is_one_line(
    server: RunningCoordinator, task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = ["--coordinator", server.url, "--api-key-file", str(server.log_path.parent / "api_key")]
    out = tmp_path / "v7"
    assert main(["admin", "download-model", *admin, "--population", "kb", "--version", "7", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "fedkeys: error: kb has no model version 7 (the latest is 0)\n"
    assert not out.exists()
