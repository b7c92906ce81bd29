"""Rounds to a validation target: FedAvg against FedSGD at equal clients per round.

The FedAvg paper (McMahan et al. 2017) reports FedAvg reaching a fixed accuracy
in 10 to 100 times fewer rounds than FedSGD, its one-gradient-per-client
baseline. This runs ``fedkeys sim run`` for both (real TFF processes, same
corpus, model, seed and K), evaluating on validation users every few rounds.
FedAvg runs first, for its round budget. The targets are what FedAvg reached:
``--target-fraction`` of its best validation recall@1 (or ``--target``), and
its best validation perplexity divided by that fraction (the paper, too, picks
targets the better algorithm reaches). Perplexity is reported beside recall@1
because a word model spends its first rounds on the unigram plateau, where
recall@1 is that of always suggesting the most frequent word and cannot tell
two runs apart while perplexity still can. FedSGD then runs until it reaches
both targets or exhausts its budget, in which case a ratio is a lower bound.

    .venv/bin/python bench/rounds_to_target.py --data DIR --out runs/bench-rounds \\
        [--model tiny] [--clients 10] [--fedavg-rounds 100] [--fedsgd-rounds 500]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

_RECALL, _PERPLEXITY = "val_recall_at_1", "val_perplexity"


def _rows(metrics: Path) -> list[dict[str, str]]:
    if not metrics.is_file():
        return []
    with metrics.open(newline="") as f:
        return list(csv.DictReader(f))


def _curve(metrics: Path, column: str) -> list[tuple[int, float]]:
    """(round, validation ``column``) at every evaluated round."""
    return [(int(r["round"]), float(r[column])) for r in _rows(metrics) if r.get(column)]


def _first_reaching(curve: list[tuple[int, float]], target: float, higher_is_better: bool = True) -> int | None:
    return next((r for r, v in curve if (v >= target if higher_is_better else v <= target)), None)


def _reached(metrics: Path, targets: tuple[float, float] | None) -> bool:
    if targets is None:
        return False
    recall = _first_reaching(_curve(metrics, _RECALL), targets[0])
    perplexity = _first_reaching(_curve(metrics, _PERPLEXITY), targets[1], higher_is_better=False)
    return recall is not None and perplexity is not None


def _run(
    args: argparse.Namespace, algorithm: str, rounds: int, lr_flags: list[str], targets: tuple[float, float] | None
) -> tuple[Path, float]:
    """Run one simulation; stop it (SIGTERM) as soon as both ``targets`` (recall@1, perplexity) are reached."""
    out = Path(args.out) / algorithm
    command = [
        sys.executable, "-m", "fedkeys.cli", "sim", "run", "--data", args.data, "--out", str(out), "--overwrite",
        "--algorithm", algorithm, "--rounds", str(rounds), "--clients-per-round", str(args.clients),
        "--model", args.model, "--seed", str(args.seed), "--eval-every", str(args.eval_every),
        "--max-eval-clients", str(args.max_eval_clients), "--checkpoint-every", str(rounds), "--no-progress",
        *lr_flags,
    ]  # fmt: skip
    if args.report_only:
        return out / "metrics.csv", float("nan")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (Path(args.out) / f"{algorithm}.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(2)
                if _reached(out / "metrics.csv", targets):
                    # SIGTERM, not SIGINT: a job started in the background ignores SIGINT (and so would the
                    # run). The run's TFF worker dies with it (parent-death signal).
                    proc.terminate()
                    proc.wait(timeout=120)
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out / "metrics.csv", time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared Shakespeare directory")
    parser.add_argument("--out", default="runs/bench-rounds")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fedavg-rounds", type=int, default=100)
    parser.add_argument("--fedsgd-rounds", type=int, default=500, help="FedSGD's budget")
    parser.add_argument("--client-lr", type=float, default=1.0, help="FedAvg's client SGD rate")
    parser.add_argument("--local-epochs", type=int, default=5, help="FedAvg's E (the paper: 1 or 5)")
    parser.add_argument("--fedsgd-lr", type=float, default=1.0, help="FedSGD's server SGD rate")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--max-eval-clients", type=int, default=60)
    parser.add_argument("--target", type=float, help="validation recall@1 to reach")
    parser.add_argument("--target-perplexity", type=float, help="validation perplexity to reach")
    parser.add_argument("--target-fraction", type=float, default=0.95)
    parser.add_argument("--report-only", action="store_true", help="print the table from the runs already in --out")
    args = parser.parse_args()

    fedavg, fedavg_s = _run(
        args,
        "fedavg",
        args.fedavg_rounds,
        ["--client-lr", str(args.client_lr), "--local-epochs", str(args.local_epochs)],
        None,
    )
    if not _curve(fedavg, _RECALL):
        sys.exit(f"fedavg logged no evaluation; see {args.out}/fedavg.log")
    recall_target = args.target or args.target_fraction * max(v for _, v in _curve(fedavg, _RECALL))
    perplexity_target = args.target_perplexity or min(v for _, v in _curve(fedavg, _PERPLEXITY)) / args.target_fraction
    targets = (recall_target, perplexity_target)
    fedsgd, fedsgd_s = _run(args, "fedsgd", args.fedsgd_rounds, ["--server-lr", str(args.fedsgd_lr)], targets)

    print(
        f"model {args.model}, K={args.clients}, seed {args.seed}; FedAvg E={args.local_epochs} client lr "
        f"{args.client_lr}, FedSGD server lr {args.fedsgd_lr}; validation users, evaluated every {args.eval_every}"
    )
    for column, target, higher in ((_RECALL, recall_target, True), (_PERPLEXITY, perplexity_target, False)):
        print(f"\ntarget {column} {'>=' if higher else '<='} {target:.4f}")
        print(f"{'algorithm':<10}{'rounds run':>12}{'first eval':>12}{'best':>10}{'rounds to target':>18}{'wall s':>9}")
        reached, last_round = {}, {}
        for name, metrics, seconds in (("fedavg", fedavg, fedavg_s), ("fedsgd", fedsgd, fedsgd_s)):
            curve = _curve(metrics, column)
            reached[name] = _first_reaching(curve, target, higher)
            last_round[name] = last = curve[-1][0] if curve else 0
            best = (max if higher else min)((v for _, v in curve), default=float("nan"))
            first = f"{curve[0][1]:.4f}" if curve else "-"
            shown = str(reached[name]) if reached[name] is not None else f">{last}"
            print(f"{name:<10}{last:>12}{first:>12}{best:>10.4f}{shown:>18}{seconds:>9.0f}")
        avg, sgd = reached["fedavg"], reached["fedsgd"]
        if avg is None:
            print("FedAvg did not reach the target: no ratio")
        elif sgd is None:
            bound = last_round["fedsgd"] / avg
            print(f"FedSGD/FedAvg rounds ratio > {bound:.1f} (lower bound: FedSGD's budget ran out)")
        else:
            print(f"FedSGD/FedAvg rounds ratio = {sgd / avg:.1f} (resolution: the evaluation interval)")
    print("\nMcMahan et al. 2017: FedAvg needs 10-100x fewer rounds than FedSGD")


if __name__ == "__main__":
    main()
