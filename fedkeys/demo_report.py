"""The demo's report: ``report.json``, ``report.html`` (plots, suggestions, parity, timings) and the printed summary.

:func:`write_report` is the last of ``fedkeys.demo.STEPS``: it reads what the
earlier steps left in the :class:`~fedkeys.demo.DemoRun`, draws the plots
(``fedkeys.report_plots``) and renders the page (``fedkeys.report_html``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedkeys.demo_fleet import fleet_activity
from fedkeys.report_html import render_report, stalled_round_captions
from fedkeys.report_plots import plot_participation, plot_recall_by_round, plot_upload_bytes
from fedkeys.suggest import suggest
from wire.manifest import INFER_FILE

if TYPE_CHECKING:
    from fedkeys.demo import DemoRun

SUGGEST_CONTEXTS = ("to be or not to", "my lord i", "what is the", "i pray you")
METRIC_KEYS = ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "perplexity")
_CORPUS_KEYS = (
    "corpus", "users", "train_users", "proxy_users", "validation_users", "test_users", "words", "vocab_size",
    "oov_rate",
)  # fmt: skip


def write_report(run: DemoRun) -> None:
    """report.json and report.html: every model's test metrics, the curves, the fleet, parity and timings."""
    out, config, stats, scores = run.out, run.config, run.stats, run.scores
    assert run.phases is not None and run.fleet_clock is not None, "the report is the last step"
    phases = run.phases
    fleet_wall_s = run.fleet_clock.wall_seconds(run.fleet_span[1] - run.fleet_span[0])
    activity = fleet_activity(
        out / "devices", start=run.fleet_span[0], end=run.fleet_span[1], availability=config.availability,
        seed=config.seed,
    )  # fmt: skip
    runs = {
        "pretrained": run.pretrained_dir,
        "n-gram": out / "ngram",
        "simulation": out / "sim",
        "deployment": run.deployed_dir,
    }
    suggestions = [(c, [suggest(r, c) for r in runs.values()]) for c in SUGGEST_CONTEXTS]
    # round 0 of both curves is the pretrained model on the same users; the n-gram line is on all validation users
    references = {f"{config.ngram_order}-gram (validation)": float(run.ngram["validation"]["recall_at_1"])}
    plot_recall_by_round(out / "recall.png", scores["curves"], references)
    states = {int(r["round"]): str(r["state"]) for r in run.deployed_rounds}
    plot_upload_bytes(out / "upload_bytes.png", activity.upload_bytes_by_round, activity.uploads_by_round, states)
    plot_participation(
        out / "participation.png", activity.hours, activity.uploads_by_hour, activity.interrupted_by_hour,
        activity.eligible_fraction_by_hour, time.strftime("%a %H:%M UTC", time.gmtime(run.fleet_span[0])),
    )  # fmt: skip
    uploads = sum(activity.uploads_by_round.values())
    trained_on = run.pretrained.get("trained_on") or {}
    report: dict[str, Any] = {
        "corpus": {k: stats.get(k) for k in _CORPUS_KEYS},
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()},
        "test": scores["test"],
        "pretrained_on": trained_on or str(run.pretrained_dir),
        "validation_recall_at_1_by_round": {k: {str(r): v for r, v in c.items()} for k, c in scores["curves"].items()},
        "references_validation_recall_at_1": references,
        "fleet": dataclasses.asdict(activity),
        "deployed_rounds": [
            {k: r[k] for k in ("round", "state", "assigned", "target", "received", "goal", "aborted")}
            for r in run.deployed_rounds
        ],
        "parity": run.parity,
        "export": run.exported,
        "deployed_model": {
            "run": str(run.deployed_dir),
            "infer_tflite": str(run.deployed_dir / "plan" / INFER_FILE),
            "export": run.deployed_export,
        },
        "simulation_rounds": run.sim_rows,
        "validation_users_scored": scores["validation_users"],
        "load_average_1m": {"start": run.load_start, "end": round(os.getloadavg()[0], 2)},
        "suggestions": {c: dict(zip(runs, words, strict=True)) for c, words in suggestions},
        "phases_s": phases.seconds,
    }
    report["wall_time_s"] = phases.total()
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    pretrained_note = (
        f"Pretrained centrally (Adam) on {trained_on.get('users')} proxy users ({trained_on.get('tokens')} words), "
        "users never trained on federated and never evaluated on"
        if trained_on.get("split") == "proxy"
        else f"Started from {run.pretrained_dir}"
    )
    page = render_report(
        out,
        {
            "corpus_name": str(stats.get("corpus", config.corpus)),
            "corpus": stats,
            "preset": config.preset,
            "parameters": run.exported["parameters"],
            "wall_time_s": report["wall_time_s"],
            "metric_keys": METRIC_KEYS,
            "test_table": list(scores["test"].items()),
            "test_note": f"{pretrained_note}. Simulation and deployment start from that model on the other "
            f"training users: {config.clients_per_round} clients a round, {config.local_epochs} local epoch(s), "
            f"client lr {config.client_lr}, at most {config.max_rows} rows a client; deployment uses codec "
            f"{config.codec}. Central: the pretrained model trained on the same users' pooled text for as many "
            f"tokens as the simulation. The n-gram model saw every training and proxy user. Vocabulary "
            f"{config.vocab_size} words (smaller than data prepare's default, for time).",
            "recall_note": f"Every point is recall@1 on the same {scores['validation_users']} validation users "
            "(a fixed sample), scored by the same Keras evaluator; dotted lines are the references on all "
            "validation users. Round 0 is the shared pretrained model, so the rise after it is what federated "
            "training added. The deployed fleet samples devices "
            "by availability and arrival, the simulation uniformly, so the curves agree in trend, not point for "
            "point (the parity section shows the exact agreement under identical clients).",
            "codec": config.codec,
            "mean_upload_bytes": sum(activity.upload_bytes_by_round.values()) / max(uploads, 1),
            "raw_bytes": 4 * int(run.exported["parameters"]),
            "fleet_note": f"{activity.devices} emulated phones ({config.availability} availability, dropout "
            f"{config.dropout}), {activity.emulated_hours} emulated hours at {config.speedup:g}x; the line is the "
            "share of phones idle, charging and on Wi-Fi (their local night), bars are sessions from the phones' "
            f"own event logs. Deployed rounds: {sum(st == 'committed' for st in states.values())} committed, "
            f"{sum(st == 'abandoned' for st in states.values())} abandoned (goal not reached in time).",
            "parity": run.parity,
            "round_stories": stalled_round_captions(run.deployed_rounds, span_seconds=fleet_wall_s),
            "suggestion_models": list(runs),
            "suggestions": suggestions,
            "deployed_note": f"The deployed model, as phones and fedkeys suggest run it: "
            f"{run.deployed_dir / 'plan' / INFER_FILE} (try: fedkeys suggest --model "
            f'{run.deployed_dir / "plan" / INFER_FILE} "{SUGGEST_CONTEXTS[0]}"). Round by round metrics of both '
            f"runs: tensorboard --logdir {out}.",
            "phases": list(phases.seconds.items()),
            "load_note": f"Load average (1 min) {run.load_start} at the start and {report['load_average_1m']['end']} "
            f"at the end on {os.cpu_count()} CPUs: on a shared machine the times above include other work.",
            "settings": json.dumps(report["config"]),
        },
    )
    run.report = summary_text(report, page)


def summary_text(report: dict[str, Any], page: Path) -> str:
    """What the demo prints last: test metrics of every model, parity, where the deployed model and report are."""
    lines = ["", f"fedkeys demo ({report['wall_time_s']} s): test users"]
    lines.append(f"{'':<28}" + "".join(f"{k:>20}" for k in METRIC_KEYS))
    for name, metrics in report["test"].items():
        lines.append(f"{name:<28}" + "".join(f"{float(metrics[k]):>20.4f}" for k in METRIC_KEYS))
    if report["parity"]:
        lines.append(f"parity: max |deployed - simulated| weight = {report['parity']['max_abs_diff']:.3g}")
        if report["parity"].get("compressed"):
            compressed = report["parity"]["compressed"]
            lines.append(
                f"parity ({compressed['codec']}): max |deployed - simulated| weight = "
                f"{compressed['max_abs_diff']:.3g}, {compressed['deployed_upload_bytes']} bytes a phone uploaded, "
                f"{compressed['simulated_upload_bytes']} bytes the simulation reports"
            )
    deployed = report["deployed_model"]
    lines.append(f"deployed model: {deployed['run']} (suggest: fedkeys suggest --model {deployed['infer_tflite']} ...)")
    lines.append(f"round by round: tensorboard --logdir {page.parent}")
    lines.append(f"report: {page}")
    return "\n".join(lines)
