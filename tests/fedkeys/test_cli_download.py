"""Issue 17.2: ``fedkeys admin download-model --out DIR`` writes a run folder ``suggest`` and ``export`` read."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedkeys.cli import main
from fedkeys.demo_coordinator import RunningCoordinator, coordinator_process
from model import ModelConfig, build_model, load_checkpoint, save_model

B, T = 4, 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCoordinator]:
    with coordinator_process(tmp_path_factory.mktemp("download-coordinator")) as running:
        yield running


@pytest.fixture(scope="module")
def task(server: RunningCoordinator, prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A task created from a tiny run's plan; the run directory it came from."""
    from data_tools import load_prepared

    root = tmp_path_factory.mktemp("download-plan")
    run = root / "run"
    config = ModelConfig.from_preset("tiny", vocab_size=load_prepared(prepared).tokenizer.vocab_size)
    save_model(run / "checkpoint", config, build_model(config, seed=5))
    shutil.copyfile(prepared / "tokenizer.model", run / "tokenizer.model")
    (run / "summary.json").write_text("{}\n")
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
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "summary.json", "tokenizer.model"]
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


def test_download_model_unknown_version_is_one_line(
    server: RunningCoordinator, task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = ["--coordinator", server.url, "--api-key-file", str(server.log_path.parent / "api_key")]
    out = tmp_path / "v7"
    assert main(["admin", "download-model", *admin, "--population", "kb", "--version", "7", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "fedkeys: error: kb has no model version 7 (the latest is 0)\n"
    assert not out.exists()
