"""``fedkeys serve`` + ``fedkeys admin ...`` end to end: a task from a plan directory and a checkpoint on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from coordinator_fixtures import API_KEY, TRAIN_TFLITE, Server, initial_weights, manifest_json

from fedkeys.cli import main


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path, workers=1)
    try:
        yield s.start()
    finally:
        s.stop()


def _plan(root: Path) -> Path:
    plan = root / "plan"
    plan.mkdir()
    (plan / "manifest.json").write_bytes(manifest_json())
    (plan / "train.tflite").write_bytes(TRAIN_TFLITE)
    return plan


def _checkpoint(root: Path) -> Path:
    run = root / "run" / "checkpoint"
    run.mkdir(parents=True)
    weights = {f"w{i:03d}": w for i, w in enumerate(initial_weights())}
    np.savez(run / "weights.npz", names=np.array([f"w{i}" for i in range(len(weights))]), **weights)
    return run.parent


def test_cli_admin_create_task_status_pause_download(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEDKEYS_API_KEY", API_KEY)
    url = ["--coordinator", server.url]
    plan, run = _plan(tmp_path), _checkpoint(tmp_path)
    args = ["admin", "create-task", *url, "--population", "kb", "--plan", str(plan), "--checkpoint", str(run)]
    assert main([*args, "--goal", "3", "--codec", "quant8"]) == 0
    assert "created population kb" in capsys.readouterr().out
    assert main(["admin", "status", *url]) == 0
    assert "model v0" in capsys.readouterr().out
    assert main(["admin", "pause", *url, "--population", "kb"]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["admin", "resume", *url, "--population", "kb"]) == 0
    assert main(["admin", "rounds", *url, "--population", "kb"]) == 0
    assert "selecting" in capsys.readouterr().out
    out = tmp_path / "model.npz"
    assert main(["admin", "download-model", *url, "--population", "kb", "--out", str(out)]) == 0
    with np.load(out) as data:
        for i, w in enumerate(initial_weights()):
            np.testing.assert_array_equal(data[f"w{i:03d}"], w)


def test_cli_admin_errors_are_one_line(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--coordinator", server.url]
    monkeypatch.setenv("FEDKEYS_API_KEY", "wrong")
    assert main(["admin", "status", *url]) == 2
    assert "401" in capsys.readouterr().err
    monkeypatch.setenv("FEDKEYS_API_KEY", API_KEY)
    assert main(["admin", "status", *url, "--population", "nope"]) == 2
    assert "unknown_population" in capsys.readouterr().err
    plan = _plan(tmp_path)
    (plan / "train.tflite").write_bytes(b"tampered")
    args = ["admin", "create-task", *url, "--population", "kb", "--plan", str(plan), "--checkpoint", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedkeys: error:") and "sha256" in err
    monkeypatch.delenv("FEDKEYS_API_KEY")
    assert main(["admin", "status", *url]) == 2
    assert "FEDKEYS_API_KEY" in capsys.readouterr().err
