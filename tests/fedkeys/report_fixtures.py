"""A tiny demo report (three real plots, every template variable) for the report and browser tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedkeys.report_html import render_report
from fedkeys.report_plots import plot_participation, plot_recall_by_round, plot_upload_bytes


def write_report(out: Path, **overrides: Any) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    plot_recall_by_round(out / "recall.png", {"simulation": {0: 0.01, 1: 0.05, 2: 0.08}}, {"central": 0.12})
    plot_upload_bytes(out / "upload_bytes.png", {1: 3_000_000, 2: 1_000_000}, {1: 10, 2: 3}, {2: "abandoned"})
    plot_participation(out / "participation.png", [0, 1, 2], [3, 5, 2], [1, 0, 1], [0.2, 0.5, 0.3], "Mon 00:00 UTC")
    context: dict[str, Any] = {
        "corpus_name": "tiny",
        "corpus": {"train_users": 30, "validation_users": 5, "test_users": 5, "vocab_size": 60, "oov_rate": 0.01},
        "preset": "tiny",
        "parameters": 1234,
        "wall_time_s": 12.0,
        "metric_keys": ["recall_at_1"],
        "test_table": [("central", {"recall_at_1": 0.5})],
        "test_note": "a note",
        "recall_note": "recall note",
        "codec": "quant8",
        "mean_upload_bytes": 1234.0,
        "raw_bytes": 4936,
        "fleet_note": "fleet note",
        "parity": None,
        "suggestion_models": ["central"],
        "suggestions": [("see you", [["at", "soon", "later"]])],
        "deployed_note": "The deployed model: runs/demo/deployed/plan/infer.tflite",
        "phases": [("central", 1.5)],
        "load_note": "load note",
        "settings": "{}",
        **overrides,
    }
    return render_report(out, context)
