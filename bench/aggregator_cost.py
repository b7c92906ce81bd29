"""What each ``--aggregator`` costs: upload bytes per client against float32, and test recall.

Runs ``fedkeys sim run`` once per aggregator (real TFF processes) with the same
corpus, model, seed, clients and rounds, and prints each run's bytes a client
uploads per round, its ratio to float32, and its test recall@1/@3 against the
plain mean's (``mean`` is the reference, so it always runs). With ``dp`` the
privacy spent (epsilon at the run's delta) is printed as well.

    .venv/bin/python bench/aggregator_cost.py --data DIR --out runs/bench-aggregators \\
        [--model tiny] [--clients 10] [--rounds 50] [--aggregators mean quant8 quant4 quant2 dp]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace, aggregator: str) -> tuple[dict[str, Any] | None, float]:
    out = Path(args.out) / aggregator
    command = [
        sys.executable, "-m", "fedkeys.cli", "sim", "run", "--data", args.data, "--out", str(out), "--overwrite",
        "--aggregator", aggregator, "--rounds", str(args.rounds), "--clients-per-round", str(args.clients),
        "--model", args.model, "--seed", str(args.seed), "--client-lr", str(args.client_lr),
        "--eval-every", str(args.rounds), "--checkpoint-every", str(args.rounds), "--no-progress",
        "--dp-noise-multiplier", str(args.dp_noise_multiplier), "--algorithm", args.algorithm,
        "--local-epochs", str(args.local_epochs), "--max-eval-clients", "60",
        *(["--server-lr", str(args.server_lr)] if args.server_lr is not None else []),
    ]  # fmt: skip
    Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (Path(args.out) / f"{aggregator}.log").open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(f"{aggregator}: exit {done.returncode}, see {args.out}/{aggregator}.log")
        return None, seconds
    return json.loads((out / "summary.json").read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default="runs/bench-aggregators")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--client-lr", type=float, default=1.0)
    parser.add_argument("--algorithm", default="fedavg", help="any --algorithm of `fedkeys sim run` that DP allows")
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--server-lr", type=float, help="default: the algorithm's")
    parser.add_argument("--dp-noise-multiplier", type=float, default=0.5, help="must be < 0.1 x clients")
    parser.add_argument("--aggregators", nargs="+", default=["mean", "quant8", "quant4", "quant2", "dp"])
    args = parser.parse_args()

    names = ["mean", *[a for a in args.aggregators if a != "mean"]]
    results = {name: _run(args, name) for name in names}
    reference = results["mean"][0]
    if reference is None:
        sys.exit("the float32 mean run failed; nothing to compare against")
    ref = reference["test"]
    print(
        f"model {args.model}, {args.algorithm} E={args.local_epochs}, K={args.clients}, {args.rounds} rounds, "
        f"seed {args.seed}, test users"
    )
    print(
        f"{'aggregator':<11}{'bytes/client':>14}{'vs float32':>11}{'recall@1':>10}{'vs mean':>9}"
        f"{'recall@3':>10}{'vs mean':>9}{'perplexity':>12}{'wall s':>8}"
    )
    for name, (summary, seconds) in results.items():
        if summary is None:
            continue
        test = summary["test"]
        ratio = summary["float32_bytes_per_client"] / summary["upload_bytes_per_client"]
        print(
            f"{name:<11}{summary['upload_bytes_per_client']:>14,}{ratio:>10.2f}x"
            f"{test['recall_at_1']:>10.4f}{test['recall_at_1'] / ref['recall_at_1']:>9.3f}"
            f"{test['recall_at_3']:>10.4f}{test['recall_at_3'] / ref['recall_at_3']:>9.3f}"
            f"{test['perplexity']:>12.1f}{seconds:>8.0f}"
        )
        if "privacy" in summary:
            p = summary["privacy"]
            eps, delta = p["epsilon"], p["delta"]
            print(f"{'':<11}DP: noise multiplier {p['noise_multiplier']}, epsilon {eps:.2f} at delta {delta:.1e}")


if __name__ == "__main__":
    main()
