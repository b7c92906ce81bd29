from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fedkeys.cli import main


def test_cli_help_is_fast_and_lists_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "fedkeys.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("data", "central", "ngram", "suggest", "demo"):
        assert command in result.stdout


def test_data_prepare_malformed_json_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "a", "text": "hello there"}\n{"user_id": "b", "text": \n')
    code = main(["data", "prepare", "--corpus", f"jsonl:{bad}", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.jsonl" in err and "line 2" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_data_prepare_unknown_corpus_spec_is_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "prepare", "--corpus", "reddit", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "reddit" in err and "jsonl:" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--length-buckets", "4", "8"], "the last length bucket must be seq_len 20, got (4, 8)"),
        (["--length-buckets", "8", "4", "20"], "CentralConfig.length_buckets must increase from >= 1, got (8, 4, 20)"),
        (["--dropout", "1.5"], "CentralConfig.dropout must be in [0, 1), got 1.5"),
    ],
)
def test_central_train_bad_regularizer_flags_are_one_line(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    out = tmp_path / "r"
    code = main(["central", "train", "--data", str(prepared), "--out", str(out), "--model", "tiny", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_central_train_invalid_epochs_is_clear_error(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "central",
            "train",
            "--data",
            str(prepared),
            "--out",
            str(tmp_path / "r"),
            "--model",
            "tiny",
            "--epochs",
            "0",
            "--no-progress",
        ]
    )
    assert code == 2
    assert "argument --epochs: must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_central_train_missing_data_dir_is_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["central", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--model", "tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope" in err and "Traceback" not in err


def test_central_ngram_suggest_end_to_end(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    central = tmp_path / "central"
    assert (
        main(
            [
                "central",
                "train",
                "--data",
                str(prepared),
                "--out",
                str(central),
                "--model",
                "tiny",
                "--epochs",
                "30",
                "--patience",
                "30",
                "--learning-rate",
                "0.02",
                "--batch-size",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((central / "summary.json").read_text())
    for key in ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "recall_at_3_no_oov", "perplexity"):
        assert summary["test"][key] >= 0.0 or key == "perplexity"
    assert summary["config"]["preset"] == "tiny"
    assert summary["wall_time_s"] > 0
    # The phrases are deterministic after their first word: a trained model must get most of them.
    assert summary["test"]["recall_at_3"] > 0.6
    assert (central / "checkpoint" / "weights.npz").is_file()

    ngram = tmp_path / "ngram"
    assert main(["ngram", "--data", str(prepared), "--out", str(ngram)]) == 0
    ngram_summary = json.loads((ngram / "summary.json").read_text())
    assert ngram_summary["test"]["recall_at_1"] > 0.6
    assert ngram_summary["test"]["tokens"] == summary["test"]["tokens"]  # same test positions

    capsys.readouterr()
    for run in (central, ngram):
        assert main(["suggest", "--model", str(run), "--words-only", "see you at"]) == 0
        words = capsys.readouterr().out.strip().split(" | ")
        assert len(words) == 3
        assert words[0] == "home"


def test_central_train_existing_out_needs_overwrite(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = main(["central", "train", "--data", str(prepared), "--out", str(out), "--model", "tiny", "--no-progress"])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_suggest_not_a_run_dir_is_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["suggest", "--model", str(tmp_path), "hello"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not a fedkeys run directory" in err


def test_sim_run_cli_writes_a_model_suggest_can_use(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    code = main(["sim", "run", "--data", str(prepared), "--out", str(out), "--model", "tiny", "--rounds", "1",
                 "--clients-per-round", "2", "--no-progress"])  # fmt: skip
    assert code == 0
    assert "simulation on test users" in capsys.readouterr().out
    assert main(["suggest", "--model", str(out), "--words-only", "see you"]) == 0
    assert len(capsys.readouterr().out.strip().split(" | ")) == 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "0"], "argument --rounds: must be at least 1, got 0"),
        (["--workers", "nohost"], "host:port"),
        (["--client-lr", "-1"], "argument --client-lr: must be a positive number, got -1"),
    ],
)
def test_sim_run_cli_bad_flags_are_clear_errors(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    code = main(["sim", "run", "--data", str(prepared), "--out", str(tmp_path / "s"), "--model", "tiny", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
