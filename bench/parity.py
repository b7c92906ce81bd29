"""Simulation vs deployment: the largest weight difference after one float32 round on both sides.

Starts ``fedkeys serve`` (SQLite, a temporary directory), creates a float32 task from PLAN and the initial
weights of RUN's checkpoint, lets one real LiteRT device per client train and upload over HTTP, runs one
TFF FedAvg round over the same clients, data seed and round, and prints the figure (``fedkeys.parity``).

    .venv/bin/python bench/parity.py --data runs/demo/data --plan runs/demo/plan --run runs/demo/initial \
        --clients 5 --epochs 2 --max-rows 32
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a prepared corpus")
    parser.add_argument("--plan", required=True, help="an exported plan (fedkeys export tflite)")
    parser.add_argument("--run", required=True, help="a run directory whose checkpoint holds the initial weights")
    parser.add_argument("--clients", type=int, default=5, help="training users 0..N-1 take part")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-rows", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--codec", default="float32", help="the devices' upload codec (float32, quant8, ...)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from fedkeys.demo_coordinator import coordinator_process
    from fedkeys.parity import ParityConfig, run_parity
    from model.checkpoint import load_checkpoint
    from wire.contract import ClientTraining

    initial = [np.asarray(w, np.float32) for w in load_checkpoint(Path(args.run) / "checkpoint")[1]]
    training = ClientTraining(
        local_epochs=args.epochs,
        max_rows=args.max_rows,
        learning_rate=args.learning_rate,
        data_seed=args.seed,
        codec=args.codec,
    )
    config = ParityConfig(clients=tuple(range(args.clients)), training=training)
    with tempfile.TemporaryDirectory(prefix="fedkeys-parity-") as tmp, coordinator_process(Path(tmp)) as server:
        result = run_parity(server.url, server.api_key, Path(args.plan), initial, Path(args.data), config, Path(tmp))
    parameters = sum(w.size for w in initial)
    ratio = result.max_abs_diff / result.max_abs_update
    print(json.dumps(result.to_dict() | {"parameters": int(parameters)}, indent=1))
    print(
        f"max |deployed - simulated| = {result.max_abs_diff:.3g} over {parameters} weights "
        f"(the round moved weights by up to {result.max_abs_update:.3g}; ratio {ratio:.2g})"
    )


if __name__ == "__main__":
    main()
