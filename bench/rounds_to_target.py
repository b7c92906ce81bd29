"""Rounds to a validation recall@1 target: FedAvg against FedSGD at equal clients per round.

The FedAvg paper (McMahan et al. 2017) reports FedAvg reaching a fixed accuracy
in 10 to 100 times fewer rounds than FedSGD, its one-gradient-per-client
baseline. This runs ``fedkeys sim run`` for both (real TFF processes, same
corpus, model, seed and K), evaluating on validation users every few rounds.
FedAvg runs first, for its round budget; unless ``--target`` is given, the
target is ``--target-fraction`` of the best validation recall@1 FedAvg reached
(the paper, too, picks targets the better algorithm reaches). FedSGD then runs
until it reaches the target or exhausts its budget, in which case the ratio is
a lower bound.

    .venv/bin/python bench/rounds_to_target.py --data DIR --out runs/bench-rounds \\
        [--model tiny] [--clients 10] [--fedavg-rounds 100] [--fedsgd-rounds 500]
"""

from __future__ import annotations

import argparse
import csv
import signal
import subprocess
import sys
import time
from pathlib import Path


def _rows(metrics: Path) -> list[dict[str, str]]:
    if not metrics.is_file():
        return []
    with metrics.open(newline="") as f:
        return list(csv.DictReader(f))


def _curve(metrics: Path) -> list[tuple[int, float]]:
    """(round, validation recall@1) at every evaluated round."""
    return [(int(r["round"]), float(r["val_recall_at_1"])) for r in _rows(metrics) if r.get("val_recall_at_1")]


def _first_reaching(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((r for r, recall in curve if recall >= target), None)


def _run(
    args: argparse.Namespace, algorithm: str, rounds: int, lr_flags: list[str], target: float | None
) -> tuple[list[tuple[int, float]], float]:
    """Run one simulation; stop it (SIGINT) as soon as ``target`` is reached."""
    out = Path(args.out) / algorithm
    command = [
        sys.executable, "-m", "fedkeys.cli", "sim", "run", "--data", args.data, "--out", str(out), "--overwrite",
        "--algorithm", algorithm, "--rounds", str(rounds), "--clients-per-round", str(args.clients),
        "--model", args.model, "--seed", str(args.seed), "--eval-every", str(args.eval_every),
        "--max-eval-clients", str(args.max_eval_clients), "--checkpoint-every", str(rounds), "--no-progress",
        *lr_flags,
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (Path(args.out) / f"{algorithm}.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(2)
                if target is not None and _first_reaching(_curve(out / "metrics.csv"), target) is not None:
                    proc.send_signal(signal.SIGINT)  # the CLI shuts its TFF worker down and exits 130
                    proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return _curve(out / "metrics.csv"), time.perf_counter() - start


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
    parser.add_argument("--target-fraction", type=float, default=0.95)
    args = parser.parse_args()

    fedavg, fedavg_s = _run(
        args,
        "fedavg",
        args.fedavg_rounds,
        ["--client-lr", str(args.client_lr), "--local-epochs", str(args.local_epochs)],
        args.target,
    )
    if not fedavg:
        sys.exit(f"fedavg logged no evaluation; see {args.out}/fedavg.log")
    target = args.target if args.target is not None else args.target_fraction * max(r for _, r in fedavg)
    fedsgd, fedsgd_s = _run(args, "fedsgd", args.fedsgd_rounds, ["--server-lr", str(args.fedsgd_lr)], target)
    avg_rounds, sgd_rounds = _first_reaching(fedavg, target), _first_reaching(fedsgd, target)

    print(
        f"model {args.model}, K={args.clients}, seed {args.seed}, validation recall@1 target {target:.4f}; "
        f"FedAvg E={args.local_epochs} client lr {args.client_lr}, FedSGD server lr {args.fedsgd_lr}"
    )
    print(f"{'algorithm':<10}{'rounds run':>12}{'best val r@1':>14}{'rounds to target':>18}{'wall s':>9}")
    for name, curve, reached, seconds in (
        ("fedavg", fedavg, avg_rounds, fedavg_s),
        ("fedsgd", fedsgd, sgd_rounds, fedsgd_s),
    ):
        shown = str(reached) if reached is not None else f">{curve[-1][0] if curve else 0}"
        best = max((r for _, r in curve), default=float("nan"))
        print(f"{name:<10}{(curve[-1][0] if curve else 0):>12}{best:>14.4f}{shown:>18}{seconds:>9.0f}")
    if avg_rounds is None:
        print("FedAvg did not reach the target: no ratio")
    elif sgd_rounds is None:
        print(f"FedSGD/FedAvg rounds ratio > {(fedsgd[-1][0] if fedsgd else 0) / avg_rounds:.1f} (lower bound)")
    else:
        print(f"FedSGD/FedAvg rounds ratio = {sgd_rounds / avg_rounds:.1f}")
    print("McMahan et al. 2017: FedAvg needs 10-100x fewer rounds than FedSGD")


if __name__ == "__main__":
    main()
