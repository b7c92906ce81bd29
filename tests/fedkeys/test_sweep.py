"""fedkeys.sweep (the pure parts) and ``fedkeys sim sweep`` end to end on a tiny corpus."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fedkeys.cli import main
from fedkeys.sweep import (
    SweepError,
    SweepResult,
    grid_points,
    last_validation,
    parse_grid,
    point_label,
    rank,
    sweep_table,
)


def test_parse_grid_normalizes_flag_names() -> None:
    assert parse_grid(["--client-lr=0.2,0.5", "local_epochs=1, 2"]) == {
        "client_lr": ["0.2", "0.5"],
        "local_epochs": ["1", "2"],
    }


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["client-lr"], "expected FLAG=V1,V2"),
        (["client-lr="], "expected FLAG=V1,V2"),
        (["client-lr=0.1,,0.2"], "expected FLAG=V1,V2"),
        (["=1,2"], "expected FLAG=V1,V2"),
        (["rounds=1,1"], "a value is repeated"),
        (["rounds=1", "rounds=2"], "rounds is already swept"),
        ([], "give at least one"),
    ],
)
def test_parse_grid_malformed_is_refused(specs: list[str], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_grid(specs)


def test_grid_points_first_flag_varies_slowest() -> None:
    assert grid_points({"a": [1, 2], "b": ["x", "y", "z"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
        {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"},
    ]  # fmt: skip


def test_point_label_is_grid_order() -> None:
    assert point_label({"clients_per_round": 10, "local_epochs": 2}) == "clients_per_round=10,local_epochs=2"


def test_last_validation_skips_unevaluated_rounds() -> None:
    rows = [{"val_recall_at_1": "0.1"}, {"val_recall_at_1": ""}, {"val_recall_at_1": "0.25"}, {"val_recall_at_1": ""}]
    assert last_validation(rows) == 0.25
    assert math.isnan(last_validation([{"val_recall_at_1": ""}]))


def _result(label: str, val: float) -> SweepResult:
    return SweepResult(label, val, test_recall_at_1=0.5, test_perplexity=100.0, tokens=1234, wall_time_s=9.6)


def test_rank_by_validation_nan_last_ties_in_grid_order() -> None:
    ranked = rank([_result("a", 0.1), _result("b", float("nan")), _result("c", 0.3), _result("d", 0.1)])
    assert [r.label for r in ranked] == ["c", "a", "d", "b"]


def test_sweep_table_rows() -> None:
    assert sweep_table([_result("a=1", 0.1), _result("a=2", 0.2)]).splitlines()[2:] == [
        "| a=2 | 0.2000 | 0.5000 | 100.0 | 1,234 | 10 |",
        "| a=1 | 0.1000 | 0.5000 | 100.0 | 1,234 | 10 |",
    ]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("clients-per-round=2,x", "--grid --clients-per-round: expected an integer, got 'x'"),
        ("algorithm=fedavg,sgd", "--grid --algorithm: 'sgd' is not one of"),
        ("out=a,b", "--grid out: not a `sim run` flag that can be swept"),
        ("no-such-flag=1,2", "--grid no_such_flag: not a `sim run` flag that can be swept"),
        ("clients-per-round=2,100000", "--clients-per-round 100000 is more than the"),
    ],
)
def test_sim_sweep_cli_bad_grid_is_one_line_before_training(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], grid: str, message: str
) -> None:
    code = main(["sim", "sweep", "--data", str(prepared), "--out", str(tmp_path / "s"), "--grid", grid])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_sim_sweep_cli_runs_every_point_and_reuses_finished_ones(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    argv = ["sim", "sweep", "--data", str(prepared), "--out", str(out), "--model", "tiny", "--rounds", "1",
            "--eval-every", "1", "--no-progress", "--grid", "clients-per-round=1,2"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "sweep [1/2] clients_per_round=1\n" in printed and "sweep [2/2] clients_per_round=2\n" in printed
    for k in (1, 2):
        assert (out / f"clients_per_round={k}" / "summary.json").is_file()
    table = (out / "sweep.md").read_text().splitlines()
    assert len(table) == 4 and {row.split(" | ")[0] for row in table[2:]} == {
        "| clients_per_round=1",
        "| clients_per_round=2",
    }
    assert main(argv) == 0  # the second time every point is reused, nothing retrains
    assert printed.count("reusing") == 0 and capsys.readouterr().out.count("reusing") == 2
