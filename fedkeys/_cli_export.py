"""The ``fedkeys`` subcommands of the export area (registered by ``fedkeys.cli``).

``fedkeys export tflite --from RUN --out ART``: the on-device training plan
and the quantized suggestion model (see ``fedkeys.export``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fedkeys._cli_common import add_alias, add_command, add_group, build, positive_float, positive_int


def _cmd_export_tflite(args: argparse.Namespace) -> int:
    from fedkeys.export import ExportConfig, export_tflite

    config = build(
        ExportConfig,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        learning_rate=args.client_lr,
        quantization=args.quantization,
    )
    summary = export_tflite(Path(args.source), Path(args.out), config, overwrite=args.overwrite)
    print(f"exported {args.source} -> {args.out}")
    for key, value in summary.items():
        if key != "out":
            print(f"  {key:<26} {json.dumps(value)}")
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    from fedkeys.export import DEFAULT_QUANTIZATION, ExportConfig

    defaults = ExportConfig()
    export = add_group(
        sub,
        "export",
        help="on-device artifacts",
        example="fedkeys export tflite --from runs/central --out runs/central-plan",
    )
    tflite = add_command(
        export,
        "tflite",
        func=_cmd_export_tflite,
        help="a run's checkpoint -> train.tflite, infer.tflite, tokenizer and manifest for LiteRT",
        example="fedkeys export tflite --from runs/central --out runs/plan --batch-size 16 --client-lr 0.5",
    )
    tflite.add_argument("--from", dest="source", required=True, help="a run directory with a checkpoint")
    tflite.add_argument("--out", required=True, help="artifact directory to write")
    tflite.add_argument(
        "--batch-size", type=positive_int, default=defaults.batch_size, help="static training batch size"
    )
    tflite.add_argument("--seq-len", type=positive_int, default=defaults.seq_len, help="static sequence length")
    tflite.add_argument(
        "--client-lr",
        type=positive_float,
        default=defaults.learning_rate,
        help="client SGD learning rate written in the manifest",
    )
    add_alias(tflite, "--learning-rate", "--client-lr", "client_lr", positive_float)
    tflite.add_argument(
        "--quantization",
        choices=("int8", "float16", "none"),
        default=DEFAULT_QUANTIZATION,
        help="weight quantization of infer.tflite",
    )
    tflite.add_argument("--overwrite", action="store_true", help="replace an existing artifact directory")
