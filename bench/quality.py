"""Does the federated keyboard model beat the n-gram it replaces? (issue 13's quality bench)

One command, one corpus: it trains (or reuses, when a run's summary.json
exists) a central model with Adam, FedAvg, FedAdam and FedYogi from scratch,
and federated training from a model pretrained on proxy users (Xu et al. 2023;
Nguyen et al. 2023) -- ``pretrained``, then ``pretrained_more``: ``--more-rounds``
further rounds from that run's model with new clients and a cosine client lr --
and, as their reference, ``pretrained_central``: Adam from the same pretrained
model on the federated users' pooled rows, scored every ``--curve-steps`` steps;
scores the 3-gram Kneser-Ney model, and writes

- ``quality.png``: validation recall@1 against training tokens and against
  wall seconds, the 3-gram as a line;
- ``quality.md``: one row a run (test recall@1/@3, perplexity, tokens, wall
  seconds, ratio to the 3-gram, and to central on the same test users with the tokens each saw), and
  validation recall@1 against central's at equal tokens (``at_equal_tokens``): the pretrained runs
  against ``pretrained_central`` (same start, same users), the others against ``central``.

The federated runs train on the ``train`` users; the central run on the same
users (so federated/central compares equal data); the pretrained run first
trains centrally on the ``proxy`` users (prepare with ``--proxy-fraction``),
which are never evaluated on. Test users are never trained on by any run.

    .venv/bin/fedkeys data prepare --corpus shakespeare --proxy-fraction 0.4 --out D
    .venv/bin/python bench/quality.py --data D --out R --rounds 150 --central-epochs 5
    .venv/bin/python bench/quality.py --data D --out R --report-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import numpy as np

FEDERATED = ("fedavg", "fedadam", "fedyogi")
PRETRAINED = ("pretrained", "pretrained_more", "pretrained_central")
RUNS = ("ngram", "central", *FEDERATED, *PRETRAINED)
CENTRAL = ("central", "pretrained_central")
COLORS = {
    "central": "black",
    "fedavg": "tab:blue",
    "fedadam": "tab:orange",
    "fedyogi": "tab:green",
    "pretrained": "tab:red",
    "pretrained_more": "tab:purple",
    "pretrained_central": "grey",
}


def _summary(run: Path) -> dict[str, Any] | None:
    path = run / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _sim_config(args: argparse.Namespace, algorithm: Any) -> Any:
    from tff_sim.config import SimConfig

    recipe = SimConfig()
    return dataclasses.replace(
        recipe,
        algorithm=algorithm,
        server_lr=None,  # the algorithm's measured default
        rounds=args.rounds,
        clients_per_round=args.clients,
        preset=args.model,
        eval_every=args.eval_every,
        checkpoint_every=args.eval_every,
        max_eval_clients=args.max_eval_clients,
    )


def _train(args: argparse.Namespace, name: str) -> None:
    from fedkeys.baselines import CentralRunConfig, NgramRunConfig, run_central, run_ngram
    from model import CentralConfig
    from tff_sim.runtime import RuntimeConfig
    from tff_sim.schedules import Schedule
    from tff_sim.simulation import run_simulation

    out = args.out / name
    if _summary(out) is not None:
        logging.info("%s: reusing %s", name, out)
        return
    central = CentralConfig(
        max_epochs=args.central_epochs,
        learning_rate=args.central_lr,
        patience=args.central_epochs,
        length_buckets=tuple(args.length_buckets),
    )
    pretraining = dataclasses.replace(
        central,
        max_epochs=args.pretrain_epochs or args.central_epochs,
        patience=args.pretrain_patience,
        dropout=args.pretrain_dropout,
    )
    if name == "ngram":
        run_ngram(args.data, out, NgramRunConfig(order=3), overwrite=True)
    elif name == "central":
        run_central(
            args.data,
            out,
            CentralRunConfig(preset=args.model, curve=True, training=central),
            progress=False,
            overwrite=True,
        )
    elif name in FEDERATED:
        run_simulation(args.data, out, _sim_config(args, name), RuntimeConfig(), overwrite=True, progress=False)
    else:  # pretrained (and pretrained_more): central on proxy users, then the default recipe from there
        pre = args.out / "pretrain"
        if _summary(pre) is None:
            run_central(
                args.data,
                pre,
                CentralRunConfig(preset=args.model, split="proxy", curve=True, training=pretraining),
                progress=False,
                overwrite=True,
            )
        if name == "pretrained_central":  # the reference: central from the same start on the same users
            steps = dataclasses.replace(
                central, max_epochs=args.curve_points, patience=args.curve_points, max_steps_per_epoch=args.curve_steps
            )
            run_central(
                args.data,
                out,
                CentralRunConfig(preset=args.model, curve=True, init_from=pre, training=steps),
                progress=False,
                overwrite=True,
            )
            return
        sim = _sim_config(args, args.pretrained_algorithm)
        if name == "pretrained":
            run_simulation(args.data, out, sim, RuntimeConfig(), overwrite=True, progress=False, init_from=pre)
            return
        # pretrained_more: --more-rounds after the pretrained run's, from its model (FedAvg's server step keeps no
        # state), new clients (seed 1) and the client lr decaying on a cosine to a tenth
        more = dataclasses.replace(
            sim,
            rounds=args.more_rounds,
            seed=1,
            training=dataclasses.replace(sim.training, data_seed=1),
            client_lr_schedule=Schedule(decay="cosine"),
        )
        start = args.out / "pretrained"
        run_simulation(args.data, out, more, RuntimeConfig(), overwrite=True, progress=False, init_from=start)


def _federated_curve(run: Path) -> dict[str, list[float]]:
    import csv

    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    tokens = np.cumsum([float(r["train_tokens"] or 0) for r in rows])
    seconds = np.cumsum([float(r["seconds"] or 0) for r in rows])
    scored = [i for i, r in enumerate(rows) if r["val_recall_at_1"]]
    return {
        "tokens": [float(tokens[i]) for i in scored],
        "seconds": [float(seconds[i]) for i in scored],
        "recall": [float(rows[i]["val_recall_at_1"]) for i in scored],
    }


def _central_curve(summary: dict[str, Any]) -> dict[str, list[float]]:
    points = summary.get("curve") or []
    return {
        "tokens": [float(p["tokens"]) for p in points],
        "seconds": [float(p["seconds"]) for p in points],
        "recall": [float(p["val_recall_at_1"]) for p in points],
    }


def at_equal_tokens(run: dict[str, list[float]], central: dict[str, list[float]]) -> tuple[float, float] | None:
    """(run's validation recall@1 / central's, tokens) where both curves reach the same tokens, else None.

    Issue 13 asks for federated/central at equal tokens: each curve is read by linear interpolation at the
    largest token count both cover (never extrapolated), so a run that saw more data than central is not
    credited for it. Example: run (100, 0.1), (300, 0.3); central (200, 0.4), (400, 0.5) -> at 300 tokens
    0.3 / 0.45 = 0.667.
    """
    if not run["tokens"] or not central["tokens"]:
        return None
    tokens = min(run["tokens"][-1], central["tokens"][-1])
    if tokens < max(run["tokens"][0], central["tokens"][0]):
        return None
    mine = float(np.interp(tokens, run["tokens"], run["recall"]))
    theirs = float(np.interp(tokens, central["tokens"], central["recall"]))
    return mine / theirs, tokens


def report(args: argparse.Namespace) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ngram = _summary(args.out / "ngram")
    central = _summary(args.out / "central")
    central_curve = _central_curve(central) if central else None
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    rows = []
    ngram_r1 = float(ngram["test"]["recall_at_1"]) if ngram else float("nan")
    pretrained_reference: dict[str, list[float]] | None = None
    for name in ("central", *FEDERATED, "pretrained_central", "pretrained", "pretrained_more"):
        summary = _summary(args.out / name)
        if summary is None:
            continue
        curve = _central_curve(summary) if name in CENTRAL else _federated_curve(args.out / name)
        if name.startswith("pretrained"):  # the pretraining's tokens and seconds come first, then the rounds'
            pre = _summary(args.out / "pretrain") or {}
            offset_tokens = float((pre.get("trained_on") or {}).get("tokens", 0)) * int(pre.get("epochs_run", 1))
            offset_seconds = float(pre.get("wall_time_s", 0.0))
            before = _central_curve(pre)
            if name == "pretrained_more" and _summary(args.out / "pretrained") is not None:
                first = _federated_curve(args.out / "pretrained")
                before = {
                    "tokens": before["tokens"] + [t + offset_tokens for t in first["tokens"]],
                    "seconds": before["seconds"] + [t + offset_seconds for t in first["seconds"]],
                    "recall": before["recall"] + first["recall"],
                }
                offset_tokens = before["tokens"][-1]
                offset_seconds = before["seconds"][-1]
                before = {k: v[-1:] for k, v in before.items()}  # drawn from where the pretrained run ends
            shifted = {
                "tokens": [t + offset_tokens for t in curve["tokens"]],
                "seconds": [t + offset_seconds for t in curve["seconds"]],
                "recall": curve["recall"],
            }
            curve = {k: before[k] + shifted[k] for k in shifted}
            if name == "pretrained_central":
                pretrained_reference = curve
        style = {"color": COLORS.get(name, "tab:red"), "marker": "o", "markersize": 3, "label": name}
        axes[0].plot(curve["tokens"], curve["recall"], **style)
        axes[1].plot(curve["seconds"], curve["recall"], **style)
        test = summary["test"]
        tokens = (curve["tokens"] or [0.0])[-1]  # pretraining counts too
        ratio = equal = None
        if name != "central" and central is not None and central_curve and central_curve["tokens"]:
            # test users are the same for every run (validation curves may score a sample of users)
            ratio = (test["recall_at_1"] / central["test"]["recall_at_1"], tokens / central_curve["tokens"][-1])
        reference = pretrained_reference if name in PRETRAINED and pretrained_reference else central_curve
        if name not in CENTRAL and reference:
            equal = at_equal_tokens(curve, reference)
        rows.append(
            f"| {name} | {test['recall_at_1']:.4f} | {test['recall_at_3']:.4f} | {test['perplexity']:.1f} | "
            f"{tokens:,.0f} | {summary.get('wall_time_s', 0):,.0f} | "
            f"{test['recall_at_1'] / ngram_r1:.3f} | {'' if ratio is None else f'{ratio[0]:.3f} ({ratio[1]:.2f}x)'} | "
            f"{'' if equal is None else f'{equal[0]:.3f} ({equal[1]:,.0f})'} |"
        )
    for ax, xlabel in zip(axes, ("training tokens", "wall seconds"), strict=True):
        if ngram:
            ax.axhline(float(ngram["validation"]["recall_at_1"]), color="grey", linestyle=":", label="3-gram")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation recall@1")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{args.data.name}: {args.model} model")
    fig.tight_layout()
    fig.savefig(args.out / "quality.png", dpi=110)
    header = (
        "| run | test recall@1 | recall@3 | perplexity | training tokens | wall s | / 3-gram | "
        "/ central (its tokens: this run's / central's) | validation / central's at equal tokens (tokens; "
        "pretrained runs: / pretrained_central) |"
        "\n|---|---|---|---|---|---|---|---|---|"
    )
    ngram_row = (
        f"| 3-gram | {ngram_r1:.4f} | {ngram['test']['recall_at_3']:.4f} | {ngram['test']['perplexity']:.1f} "
        f"| {(ngram.get('trained_on') or {}).get('tokens', '')} | | 1.000 | | |"
        if ngram
        else ""
    )
    table = "\n".join([header, ngram_row, *rows])
    (args.out / "quality.md").write_text(table + "\n")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a prepared corpus (with --proxy-fraction)")
    parser.add_argument("--out", type=Path, required=True, help="one run directory per run, plus the outputs")
    parser.add_argument("--model", default="small", help="model preset (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=150, help="federated rounds (default %(default)s)")
    parser.add_argument("--clients", type=int, default=10, help="clients per round (default %(default)s)")
    parser.add_argument("--eval-every", type=int, default=10, help="validation every R rounds (default %(default)s)")
    parser.add_argument(
        "--max-eval-clients",
        type=int,
        help="validation users sampled for federated curves (default: all)",
    )
    parser.add_argument("--central-epochs", type=int, default=5, help="central epochs (default %(default)s)")
    parser.add_argument("--central-lr", type=float, default=3e-3, help="central Adam lr (default %(default)s)")
    parser.add_argument("--pretrain-epochs", type=int, help="pretraining epochs on proxy users (default: central's)")
    parser.add_argument(
        "--length-buckets",
        type=int,
        nargs="*",
        default=[],
        help="central runs: row widths to bucket rows by length, the last the row width (e.g. 4 8 12 16 20; "
        "default: none)",
    )
    parser.add_argument("--pretrain-dropout", type=float, default=0.0, help="pretraining dropout (default %(default)s)")
    parser.add_argument(
        "--pretrain-patience",
        type=int,
        default=1,
        help="stop pretraining after this many epochs without a better validation loss (default %(default)s)",
    )
    parser.add_argument(
        "--curve-steps", type=int, default=100, help="pretrained_central: steps between its points (%(default)s)"
    )
    parser.add_argument("--curve-points", type=int, default=8, help="pretrained_central: points (%(default)s)")
    parser.add_argument("--pretrained-algorithm", default="fedavg", help="recipe after pretraining (%(default)s)")
    parser.add_argument(
        "--more-rounds",
        type=int,
        default=100,
        help="pretrained_more: federated rounds after the pretrained run's, client lr on a cosine (%(default)s)",
    )
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS), help="which runs (default all)")
    parser.add_argument("--report-only", action="store_true", help="only redraw the outputs from the runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for name in args.runs:
            _train(args, name)
    print(report(args))


if __name__ == "__main__":
    main()
