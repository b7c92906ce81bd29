"""A run's metrics.csv and TensorBoard log (tff_sim/run_log.py), written without TensorFlow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fresh_interpreter import run_fresh

from tff_sim.run_log import COLUMNS, RunLog

Scalars = dict[str, list[tuple[int, float]]]


def test_run_log_writes_each_number_as_a_scalar_at_its_round(
    tmp_path: Path, tensorboard_scalars: Callable[[Path], Scalars]
) -> None:
    log = RunLog(tmp_path)
    log.append({"round": 1, "loss": 4.25, "train_tokens": 200, "clients": 2, "seconds": 1.5})
    log.append({"round": 2, "loss": 4.0, "val_recall_at_1": 0.125})
    assert tensorboard_scalars(tmp_path / "tensorboard") == {
        "loss": [(1, 4.25), (2, 4.0)], "train_tokens": [(1, 200.0)], "clients": [(1, 2.0)], "seconds": [(1, 1.5)],
        "val_recall_at_1": [(2, 0.125)],
    }  # fmt: skip
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1] == "1,4.25,200,2,,,1.5" + "," * (len(COLUMNS) - 7)


@pytest.mark.parametrize("resume_after", [0, 1])
def test_run_log_resume_keeps_rows_up_to_the_restored_round(tmp_path: Path, resume_after: int) -> None:
    first = RunLog(tmp_path)
    for r in (1, 2):
        first.append({"round": r, "loss": 1.0})
    RunLog(tmp_path, resume_after=resume_after).append({"round": 3, "loss": 0.5})
    rounds = [line.split(",")[0] for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert rounds == (["1", "3"] if resume_after else ["3"])
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one file per writer


def test_run_log_never_imports_tensorflow(tmp_path: Path) -> None:
    script = (
        "from pathlib import Path\n"
        "from tff_sim.run_log import RunLog\n"
        f"RunLog(Path({str(tmp_path)!r})).append({{'round': 1, 'loss': 2.0}})\n"
    )
    assert run_fresh(script).imported == []
