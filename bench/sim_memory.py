"""Resident memory of a long TFF simulation: does it stay flat round after round?

TFF users report RAM growing when client datasets are rebuilt every round.
This runs FedAvg rounds exactly as ``fedkeys sim run`` builds them and prints
the resident memory of the driver and of its worker_binary at chosen rounds,
with the growth relative to the first checkpoint.

    .venv/bin/python bench/sim_memory.py --data DIR [--model tiny] [--clients 10] [--at 10 100 300]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # see fedkeys.cli


from data_tools import load_prepared
from tff_sim.algorithms import build_process, model_fn_for
from tff_sim.config import SimConfig
from tff_sim.runtime import RuntimeConfig, running_worker_pids, tff_runtime
from tff_sim.simulation import sampled_round, sim_model_config
from wire.contract import ClientTraining


def _rss_mib(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--at", type=int, nargs="+", default=[10, 100, 300])
    args = parser.parse_args()
    corpus = load_prepared(Path(args.data))
    config = sim_model_config(corpus.tokenizer.vocab_size, args.model)
    sim = SimConfig(clients_per_round=args.clients, preset=args.model, training=ClientTraining(local_epochs=1))
    process = build_process(sim, model_fn_for(config, sim.seq_len, sim.seed))
    workers_before = running_worker_pids()
    print(f"model {args.model}, K={args.clients}")
    print(f"{'round':>6}{'driver MiB':>12}{'worker MiB':>12}{'total vs first':>16}")
    first = None
    with tff_runtime(RuntimeConfig(log_dir=Path("/tmp")), default_num_clients=args.clients):
        worker = sorted(running_worker_pids() - workers_before)[0]
        state = process.initialize()
        for round_num in range(1, max(args.at) + 1):
            datasets = sampled_round(corpus.train, sim, config, round_num).datasets
            state = process.next(state, datasets).state
            if round_num in args.at:
                driver, work = _rss_mib("self"), _rss_mib(worker)
                first = first or driver + work
                print(f"{round_num:>6}{driver:>12.0f}{work:>12.0f}{(driver + work) / first:>16.2f}", flush=True)


if __name__ == "__main__":
    main()
