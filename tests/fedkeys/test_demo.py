"""fedkeys demo: the whole pipeline on the tiny fixture through the CLI (tiny settings, not Shakespeare)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fedkeys.cli import main
from fedkeys.demo_config import DemoConfig
from fedkeys.demo_report import SUGGEST_CONTEXTS
from wire.manifest import load_manifest

TINY = ["--model", "tiny", "--seq-len", "8", "--batch-size", "4", "--pretrain-max-steps", "5", "--rounds", "2",
        "--clients-per-round", "3", "--devices", "8", "--availability", "always", "--speedup", "200",
        "--dropout", "0", "--max-rows", "8", "--eval-every", "1", "--parity-clients", "2", "--concurrency", "2",
        "--fleet-timeout-s", "400", "--no-progress"]  # fmt: skip


def test_demo_tiny_end_to_end_writes_the_report(
    prepared_with_proxy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    prepared = prepared_with_proxy
    assert main(["demo", "--out", str(out), "--data", str(prepared), *TINY]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.html'}" in printed
    report = json.loads((out / "report.json").read_text())
    # both federated models were trained and scored with the references' metrics on test users
    assert set(report["test"]) == {
        "3-gram", "pretrained (proxy users)", "central (same tokens)", "simulation, 2 rounds", "deployment, 2 rounds",
    }  # fmt: skip
    assert report["pretrained_on"]["split"] == "proxy" and report["pretrained_on"]["users"] > 0
    assert (out / "sim" / "metrics.csv").read_text().count("\n") == 3  # header + 2 rounds
    # the deployed model is a run folder with its rounds' log and a plan suggest reads, and says where it came from
    deployed = out / "deployed"
    infer = deployed / "plan" / "infer.tflite"
    assert f"deployed model: {deployed} (suggest: fedkeys suggest --model {infer} ...)" in printed
    assert f"tensorboard --logdir {out}" in printed
    with (deployed / "metrics.csv").open(newline="") as f:
        rounds = list(csv.DictReader(f))
    with (out / "sim" / "metrics.csv").open(newline="") as f:
        simulated = list(csv.DictReader(f))
    assert [r["round"] for r in rounds] == ["1", "2"] and all(int(r["clients"]) >= 3 for r in rounds)
    assert all(int(r["upload_bytes"]) > 0 for r in [*rounds, *simulated])  # both logs count the codec's bytes
    assert {p.parent.parent.name for p in out.glob("*/tensorboard/events.out.tfevents.*")} >= {"sim", "deployed"}
    provenance = load_manifest(deployed / "plan").provenance
    assert provenance is not None and provenance.trained_on is None
    assert (provenance.run, provenance.kind, provenance.rounds) == (str(deployed), "deployed", 2)
    assert provenance.init_from == str(out / "pretrained")
    assert provenance.pretrained_on is not None and provenance.pretrained_on.split == "proxy"
    assert set(report["deployed_model"]["export"]["suggestions"]) == set(SUGGEST_CONTEXTS)
    assert main(["suggest", "--model", str(infer), "--words-only", "see you"]) == 0
    assert len(capsys.readouterr().out.strip().split(" | ")) == 3
    for metrics in report["test"].values():
        assert 0.0 <= metrics["recall_at_1"] <= 1.0
    curves = report["validation_recall_at_1_by_round"]
    assert set(curves["simulation (TFF)"]) == {"0", "1", "2"}
    assert set(curves["deployment (devices)"]) == {"0", "1", "2"}
    assert curves["simulation (TFF)"]["0"] == curves["deployment (devices)"]["0"]  # the same pretrained model
    pretrained = json.loads((out / "pretrained" / "summary.json").read_text())
    assert report["test"]["pretrained (proxy users)"]["recall_at_1"] == pytest.approx(
        pretrained["test"]["recall_at_1"], abs=1e-6
    )
    # the fleet uploaded in both rounds; the parity round matched the simulation
    assert sorted(report["fleet"]["upload_bytes_by_round"]) == ["0", "1"]  # JSON keys: the two rounds
    assert all(n >= 3 for n in report["fleet"]["uploads_by_round"].values())
    assert report["parity"]["max_abs_diff"] < 1e-4
    page = (out / "report.html").read_text()
    for image in ("recall.png", "upload_bytes.png", "participation.png"):
        assert (out / image).stat().st_size > 1000
    assert page.count('<img src="data:image/png;base64,') == 3  # embedded: the page stands alone
    assert "parity" in page.lower() and "to be or not to" in page
    # a rerun into the same directory starts over (new coordinator, new fleet) and writes a new report
    rerun = [a if a != "2" else "1" for a in TINY]  # one round
    assert main(["demo", "--out", str(out), "--data", str(prepared), *rerun, "--parity-clients", "0"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["parity"] is None and set(again["test"]) >= {"simulation, 1 rounds", "deployment, 1 rounds"}
    assert list(report["phases_s"]) == ["prepare", "ngram", "pretrain", "simulation", "central", "export", "parity",
                                        "deployment", "export-deployed", "evaluate"]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rounds": 0}, "rounds"),
        ({"vocab_size": -1}, "vocab_size"),
        ({"client_lr": 0.0}, "client_lr"),
        ({"dropout": 2.0}, "dropout"),
        ({"availability": "sometimes"}, "availability"),
        ({"codec": "zip"}, "codec"),
        ({"clients_per_round": 50, "devices": 10}, "clients_per_round"),
        ({"pretrain_max_steps": 0}, "pretrain_max_steps"),
        ({"proxy_fraction": 0.9}, "proxy_fraction"),
        ({"pretrain_lr": 0.0}, "pretrain_lr"),
        ({"parity_clients": -1}, "parity_clients"),
    ],
)
def test_demo_config_bad_values_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoConfig(**fields)  # type: ignore[arg-type]


def test_demo_cli_bad_flag_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--out", str(tmp_path), "--rounds", "0"]) == 2
    err = capsys.readouterr().err
    assert "rounds" in err and "Traceback" not in err


def test_demo_task_fields_commit_at_eighty_percent_of_the_goal() -> None:
    fields = DemoConfig(clients_per_round=10, rounds=8).task_fields()
    assert (fields["goal_count"], fields["min_reports"], fields["max_rounds"]) == (10, 8, 8)
    assert (fields["over_selection"], fields["selection_seconds"], fields["report_seconds"]) == (1.3, 90.0, 120.0)
    assert DemoConfig(clients_per_round=3, devices=10).task_fields()["min_reports"] == 3
