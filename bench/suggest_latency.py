"""Cold-start time of ``fedkeys suggest``: the exported ``.tflite`` on LiteRT against the Keras run directory.

Each measurement is a fresh interpreter (what one ``fedkeys suggest`` call
pays): import, load the model and tokenizer, one strip. Runs alternate
between the two models so machine load hits both alike; the ratio is what
to quote (absolute seconds depend on the machine's load). Also reports
whether TensorFlow was imported (it must not be on the ``.tflite`` path).

    .venv/bin/python bench/suggest_latency.py --run runs/central --tflite runs/plan/infer.tflite [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from fedkeys.suggest import open_model
t1 = time.perf_counter()
s = open_model(sys.argv[1])
t2 = time.perf_counter()
strip = s.strip("see you at", 3)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "strip_s": t3 - t2, "total_s": t3 - t0,
                  "tensorflow": "tensorflow" in sys.modules, "words": strip.words}))
"""


def _once(model: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, model], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run directory with checkpoint/ (Keras)")
    parser.add_argument("--tflite", required=True, help="ART/infer.tflite exported from it")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, object]]] = {"tflite": [], "keras": []}
    for _ in range(args.repeats):
        runs["tflite"].append(_once(args.tflite))
        runs["keras"].append(_once(args.run))
    medians = {}
    for name, results in runs.items():
        keys = ("import_s", "load_s", "strip_s", "total_s")
        medians[name] = {k: statistics.median(float(str(r[k])) for r in results) for k in keys}
        shown = " ".join(f"{k} {v:.3f}" for k, v in medians[name].items())
        print(f"{name:>6}: {shown}  tensorflow imported: {results[0]['tensorflow']}  strip: {results[0]['words']}")
    print(f"keras / tflite total time: {medians['keras']['total_s'] / medians['tflite']['total_s']:.1f}x")


if __name__ == "__main__":
    main()
