"""Central LSTM against the Kneser-Ney n-gram on Shakespeare, measured in one run.

Gboard (Hard et al. 2018) reported recall@1 of 16.5% for the server-trained
CIFG against 13.0% for its production n-gram model (a ratio of 1.27). This
prepares Shakespeare (cached), trains the central model with the given preset
to early stopping, fits the 3-gram model, and prints both on the same test
users with their ratio.

    .venv/bin/python bench/baselines.py --out runs/bench-baselines [--model small] [--epochs 10] [--corpus irc:DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from data_tools import PrepareConfig, default_cache_dir, prepare_corpus
from fedkeys.baselines import CentralRunConfig, NgramRunConfig, run_central, run_ngram
from model import CentralConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-baselines")
    parser.add_argument("--model", default="small")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--corpus", default="shakespeare", help="any `fedkeys data prepare` spec, e.g. irc:DIR")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    data = out / "data"
    if not (data / "stats.json").is_file():
        prepare_corpus(
            args.corpus, data, PrepareConfig(vocab_size=args.vocab_size), cache_dir=default_cache_dir(os.environ)
        )
    ngram = run_ngram(data, out / "ngram", NgramRunConfig(order=3), overwrite=True)
    central = run_central(
        data,
        out / f"central-{args.model}",
        CentralRunConfig(preset=args.model, training=CentralConfig(max_epochs=args.epochs)),
        overwrite=True,
    )
    c, n = central["test"], ngram["test"]
    print(f"{args.corpus} test users, vocab {args.vocab_size}, {c['tokens']:.0f} next-word positions")
    print(f"{'metric':<22}{'central ' + args.model:>16}{'3-gram KN':>12}{'ratio':>8}")
    for key in ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "recall_at_3_no_oov", "perplexity"):
        print(f"{key:<22}{c[key]:>16.4f}{n[key]:>12.4f}{c[key] / n[key]:>8.2f}")
    print(
        f"central: {central['epochs_run']} epochs (best {central['best_epoch']}), {central['wall_time_s']:.0f} s; "
        f"n-gram: {ngram['wall_time_s']:.0f} s"
    )
    print("Gboard (Hard et al. 2018): recall@1 16.5% vs 13.0%, ratio 1.27")


if __name__ == "__main__":
    main()
