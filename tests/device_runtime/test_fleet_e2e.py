"""End to end: ``fedkeys serve`` + ``fedkeys devices emulate`` on the tiny corpus commit several rounds,
and the committed model's recall on held-out (test) users beats the initial model's; the same with a task
created with ``--secure-aggregation`` (the coordinator sees only masked vectors and their sum)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from data_tools import load_prepared
from device_runtime.litert_model import EvalCounts, LiteRTTrainer
from device_runtime.rows import evaluation_batches
from fedkeys.cli import main
from model import ModelConfig, build_model, make_sequences
from model.checkpoint import load_checkpoint, save_model

API_KEY = "e2e-test-key"
B, T = 4, 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("coordinator")
    (work / "key").write_text(API_KEY)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEYS_")}
    cmd = [sys.executable, "-m", "fedkeys.cli", "serve", "--db", f"sqlite:///{work / 'db.sqlite'}", "--port",
           str(port), "--api-key-file", str(work / "key"), "--tick-seconds", "0.2"]  # fmt: skip
    with (work / "server.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (work / "server.log").read_text()[-2000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            pytest.fail("coordinator did not start: " + (work / "server.log").read_text()[-2000:])
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _recall(art: Path, weights: list[np.ndarray], prepared: Path) -> float:
    corpus = load_prepared(prepared)
    config = ModelConfig.from_dict(load_checkpoint(art.parent / "run" / "checkpoint")[0].to_dict())
    rows = make_sequences(corpus.test.all_examples(), T, bos_id=config.bos_id, pad_id=config.pad_id)
    trainer = LiteRTTrainer(art / "train.tflite")
    trainer.set_weights(weights)
    total = EvalCounts(0.0, 0, 0, 0)
    for x, y in evaluation_batches(rows, B, pad_id=config.pad_id):
        total = total.plus(trainer.evaluate(x, y))
    return total.correct_at_1 / total.tokens


def _train_fleet(
    coordinator: str,
    prepared: Path,
    tmp_path: Path,
    *,
    population: str,
    rounds: int,
    devices: int,
    task_flags: list[str],
    emulate_flags: list[str],
) -> tuple[dict[str, Any], float, float]:
    """Export a tiny plan, create the task, run the fleet: (population status, recall before, recall after)."""
    corpus = load_prepared(prepared)
    run, art = tmp_path / "run", tmp_path / "art"
    config = ModelConfig.from_preset("tiny", vocab_size=corpus.tokenizer.vocab_size)
    save_model(run / "checkpoint", config, build_model(config, seed=0))
    shutil.copyfile(prepared / "tokenizer.model", run / "tokenizer.model")
    assert main(["export", "tflite", "--from", str(run), "--out", str(art), "--batch-size", str(B),
                 "--seq-len", str(T)]) == 0  # fmt: skip
    (tmp_path / "key").write_text(API_KEY)
    admin = ["--coordinator", coordinator, "--api-key-file", str(tmp_path / "key")]
    assert main(["admin", "create-task", *admin, "--population", population, "--plan", str(art),
                 "--checkpoint", str(run / "checkpoint"), "--codec", "quant8", "--local-epochs", "2",
                 "--client-lr", "0.5", "--max-rounds", str(rounds), *task_flags]) == 0  # fmt: skip
    n = min(devices, corpus.train.num_clients)
    assert main(["devices", "emulate", "--coordinator", coordinator, "--population", population,
                 "--data", str(prepared), "--devices", str(n), "--speedup", "20", "--min-separation", "0",
                 "--state-dir", str(tmp_path / "devices"), "--shared-cache", "--api-key-file", str(tmp_path / "key"),
                 "--rounds", str(rounds), "--no-progress", *emulate_flags]) == 0  # fmt: skip
    status = httpx.get(
        f"{coordinator}/v1/admin/populations/{population}", headers={"X-API-Key": API_KEY}, timeout=10
    ).json()
    assert main(["admin", "download-model", *admin, "--population", population, "--out",
                 str(tmp_path / "final.npz")]) == 0  # fmt: skip
    with np.load(tmp_path / "final.npz") as npz:
        final = [npz[k] for k in sorted(npz.files)]
    initial = load_checkpoint(run / "checkpoint")[1]
    return status, _recall(art, initial, prepared), _recall(art, final, prepared)


def test_fleet_e2e_commits_rounds_and_recall_improves(coordinator: str, prepared: Path, tmp_path: Path) -> None:
    status, before, after = _train_fleet(
        coordinator, prepared, tmp_path, population="keyboard", rounds=4, devices=12,
        task_flags=["--goal", "4", "--over-selection", "1.5", "--selection-seconds", "10", "--report-seconds", "60"],
        emulate_flags=["--dropout", "0.2", "--concurrency", "3", "--duration", "400"],
    )  # fmt: skip
    assert status["rounds_committed"] >= 4, status
    print(f"recall@1 on test users: initial {before:.3f} -> after {status['rounds_committed']} rounds {after:.3f}")
    assert after > before + 0.05, (before, after)


def test_fleet_secure_e2e_rounds_commit_and_recall_improves(coordinator: str, prepared: Path, tmp_path: Path) -> None:
    # A task created with --secure-aggregation: the coordinator sees only masked vectors and their sum.
    status, before, after = _train_fleet(
        coordinator, prepared, tmp_path, population="keyboard-secure", rounds=3, devices=10,
        task_flags=["--goal", "3", "--over-selection", "1.0", "--min-reports", "2", "--selection-seconds", "10",
                    "--report-seconds", "90", "--secure-aggregation", "--secagg-threshold", "2",
                    "--secagg-clip", "10"],
        # concurrency above the round size: devices of a round wait for each other between phases
        emulate_flags=["--dropout", "0.0", "--concurrency", "4", "--duration", "600"],
    )  # fmt: skip
    assert status["rounds_committed"] >= 3, status
    rounds = httpx.get(
        f"{coordinator}/v1/admin/populations/keyboard-secure/rounds", headers={"X-API-Key": API_KEY}, timeout=10
    ).json()
    assert all(r["rejections"].get("secure_round", 0) == 0 for r in rounds)  # no plain update was ever sent
    print(f"secure rounds: recall@1 on test users {before:.3f} -> {after:.3f} after {status['rounds_committed']}")
    assert after > before + 0.05, (before, after)
