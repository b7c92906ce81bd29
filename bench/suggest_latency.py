"""Cold-start time of ``fedkeys suggest``: the exported ``.tflite`` on LiteRT, against its floor and Keras.

Each measurement is a fresh interpreter, timed from outside (what one
``fedkeys suggest`` call costs the user): the CLI on ``--tflite``; the floor,
a Python that only imports what that path cannot do without (numpy,
sentencepiece, the LiteRT interpreter); and, with ``--run``, the CLI on the
Keras run directory. Runs alternate so machine load hits all alike; the ratios
are what to quote (absolute seconds depend on the machine's load). Also reports
which heavy packages the ``.tflite`` path imported (none may be).

    .venv/bin/python bench/suggest_latency.py --tflite runs/plan/infer.tflite [--run runs/central] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

_HEAVY = ("tensorflow", "tensorflow_federated", "keras", "httpx", "pydantic", "secagg", "tqdm")
_CLI = """
import json, sys
from fedkeys.cli import main
code = main(["suggest", "--model", sys.argv[1], "--words-only", "see you at"])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"code": code, "heavy": heavy}))
"""
_FLOOR = "import numpy, sentencepiece; from ai_edge_litert.interpreter import Interpreter"


def _timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflite", required=True, help="ART/infer.tflite from `fedkeys export tflite`")
    parser.add_argument("--run", help="a run directory with checkpoint/ (Keras), for comparison")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    probes = {
        "floor": [python, "-c", _FLOOR],
        "tflite": [python, "-c", _CLI, args.tflite, json.dumps(_HEAVY)],
    }
    if args.run:
        probes["keras"] = [python, "-c", _CLI, args.run, json.dumps(_HEAVY)]
    seconds: dict[str, list[float]] = {name: [] for name in probes}
    outputs: dict[str, str] = {}
    for _ in range(args.repeats):
        for name, argv in probes.items():
            elapsed, outputs[name] = _timed(argv)
            seconds[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, {args.repeats} cold starts each")
    for name, values in seconds.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:>6}: median {median[name]:.3f} s (min {min(values):.3f}; {shown})")
    strip, result = outputs["tflite"].strip().splitlines()[-2:]
    tflite = json.loads(result)
    print(f"tflite path: exit {tflite['code']}, strip {strip!r}, heavy packages imported {tflite['heavy']}")
    ratio = median["tflite"] / median["floor"]
    print(f"tflite / floor: {ratio:.2f}x (fedkeys' cost over importing numpy, sentencepiece and LiteRT)")
    if "keras" in median:
        print(f"keras / tflite: {median['keras'] / median['tflite']:.1f}x")


if __name__ == "__main__":
    main()
