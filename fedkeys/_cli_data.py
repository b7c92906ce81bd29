"""``fedkeys data prepare``: a corpus of users' messages -> a per-user federated dataset."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from fedkeys._cli_common import (
    add_command,
    add_group,
    add_output,
    build,
    fraction,
    non_negative_int,
    positive_int,
    print_table,
)

_STATS = (
    "users",
    "dropped_users",
    "train_users",
    "validation_users",
    "test_users",
    "examples",
    "words",
    "vocab_size",
    "oov_rate",
)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from data_tools import PrepareConfig, default_cache_dir, prepare_corpus

    config = build(
        PrepareConfig,
        min_words=args.min_words,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        proxy_fraction=args.proxy_fraction,
        split_seed=args.split_seed,
        vocab_size=args.vocab_size,
        skip_bad=args.skip_bad,
    )
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir(os.environ)
    stats = prepare_corpus(
        args.corpus, Path(args.out), config, cache_dir=cache, progress=not args.no_progress, overwrite=args.overwrite
    )
    print_table(f"prepared {args.corpus} -> {args.out}", {k: stats[k] for k in _STATS if k in stats})
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    data = add_group(
        sub,
        "data",
        help="prepare user-typing corpora",
        example="fedkeys data prepare --corpus shakespeare --out data/shakespeare",
    )
    prep = add_command(
        data,
        "prepare",
        help="corpus -> per-user federated dataset",
        func=_cmd_prepare,
        example="fedkeys data prepare --corpus jsonl:chats.jsonl.gz --out data/chats --skip-bad",
    )
    prep.add_argument("--corpus", required=True, help="shakespeare | jsonl:PATH[.gz] | irc:DIR")
    prep.add_argument("--out", required=True, help="output directory")
    prep.add_argument("--vocab-size", type=positive_int, default=10000, help="words in the vocabulary")
    prep.add_argument("--min-words", type=non_negative_int, default=20, help="drop users with fewer words")
    prep.add_argument("--validation-fraction", type=fraction, default=0.1, help="share of users held out to tune")
    prep.add_argument("--test-fraction", type=fraction, default=0.1, help="share of users held out to test")
    prep.add_argument(
        "--proxy-fraction",
        type=fraction,
        default=0.0,
        help="share of users set aside as public/proxy data for `central train --split proxy` (pretraining)",
    )
    prep.add_argument("--split-seed", type=non_negative_int, default=0, help="seed of the user hash split")
    prep.add_argument("--skip-bad", action="store_true", help="skip and count bad lines instead of failing")
    prep.add_argument("--cache-dir", help="download cache (default $FEDKEYS_CACHE or ~/.cache/fedkeys)")
    add_output(prep)
