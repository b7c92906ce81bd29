"""``fedkeys central train`` and ``fedkeys ngram``: the references every federated result is judged against."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fedkeys._cli_common import (
    PRESETS,
    add_command,
    add_group,
    add_output,
    build,
    non_negative_int,
    positive_float,
    positive_int,
    print_table,
)


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The test metrics and wall time of a run's summary, for the closing table."""
    test = summary["test"]
    keys = ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "recall_at_3_no_oov", "perplexity", "tokens")
    return {k: test[k] for k in keys} | {"wall_time_s": summary["wall_time_s"]}


def _cmd_central_train(args: argparse.Namespace) -> int:
    from fedkeys.baselines import CentralRunConfig, run_central
    from model import CentralConfig

    training = build(
        CentralConfig,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        learning_rate=args.learning_rate,
        patience=args.patience,
        shuffle_seed=args.shuffle_seed,
        max_steps_per_epoch=args.max_steps_per_epoch,
        dropout=args.dropout,
        length_buckets=tuple(args.length_buckets),
    )
    run = build(
        CentralRunConfig,
        preset=args.model,
        cell=args.cell,
        seq_len=args.seq_len,
        init_seed=args.init_seed,
        split=args.split,
        training=training,
    )
    summary = run_central(Path(args.data), Path(args.out), run, progress=not args.no_progress, overwrite=args.overwrite)
    print_table(f"central ({args.model}) on test users -> {args.out}", headline(summary))
    return 0


def _cmd_ngram(args: argparse.Namespace) -> int:
    from fedkeys.baselines import NgramRunConfig, run_ngram

    config = build(NgramRunConfig, order=args.order)
    summary = run_ngram(Path(args.data), Path(args.out), config, overwrite=args.overwrite)
    print_table(f"{args.order}-gram Kneser-Ney on test users -> {args.out}", headline(summary))
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    central = add_group(
        sub,
        "central",
        help="the centrally trained reference",
        example="fedkeys central train --data data/shakespeare --out runs/central",
    )
    train = add_command(
        central,
        "train",
        help="train on pooled training users, early-stop on validation users",
        example="fedkeys central train --data data/shakespeare --out runs/central --epochs 3",
        func=_cmd_central_train,
    )
    train.add_argument("--data", required=True, help="a prepared data directory")
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--model", choices=PRESETS, default="small", help="model size preset")
    train.add_argument("--cell", choices=("cifg", "lstm"), help="override the preset's recurrent cell")
    train.add_argument("--epochs", type=positive_int, default=10, help="maximum epochs")
    train.add_argument("--batch-size", type=positive_int, default=64, help="rows a training step")
    train.add_argument("--learning-rate", type=positive_float, default=1e-3, help="Adam's learning rate")
    train.add_argument("--patience", type=non_negative_int, default=1, help="early-stopping patience in epochs")
    train.add_argument("--seq-len", type=positive_int, default=20, help="words a training row")
    train.add_argument(
        "--length-buckets",
        type=positive_int,
        nargs="*",
        default=[],
        help="row widths to bucket rows by length, the last --seq-len (e.g. 4 8 12 16 20): batches of short "
        "messages skip their padding, ~2x faster on chat; the same loss (default: none)",
    )
    train.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="share of the embedding's and recurrent outputs dropped while training, in [0, 1): regularizes "
        "pretraining on a few million words (default 0: none)",
    )
    train.add_argument("--init-seed", type=non_negative_int, default=0, help="seed of the initial weights")
    train.add_argument("--shuffle-seed", type=non_negative_int, default=0, help="seed of the batch order")
    train.add_argument("--max-steps-per-epoch", type=positive_int, help="cap on steps an epoch (default: all rows)")
    train.add_argument(
        "--split",
        choices=("train", "proxy"),
        default="train",
        help="train on the training users (the central reference) or on the proxy users (pretraining for "
        "`sim run --init-from`)",
    )
    add_output(train)

    ngram = add_command(
        sub,
        "ngram",
        help="the Kneser-Ney n-gram reference",
        func=_cmd_ngram,
        example="fedkeys ngram --data data/shakespeare --out runs/ngram --order 3",
    )
    ngram.add_argument("--data", required=True, help="a prepared data directory")
    ngram.add_argument("--out", required=True, help="run directory to write")
    ngram.add_argument("--order", type=positive_int, default=3, help="n of the n-gram")
    add_output(ngram, progress=False)
