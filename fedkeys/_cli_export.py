"""The ``fedkeys`` subcommands of the export area (registered by ``fedkeys.cli``).

``fedkeys export tflite --from RUN --out ART``: the on-device training plan
and the quantized suggestion model (see ``fedkeys.export``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _cmd_export_tflite(args: argparse.Namespace) -> int:
    from fedkeys.export import ExportConfig, export_tflite

    config = ExportConfig(
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        learning_rate=args.learning_rate,
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
    export = sub.add_parser("export", help="on-device artifacts").add_subparsers(dest="action", required=True)
    tflite = export.add_parser(
        "tflite", help="a run's checkpoint -> train.tflite, infer.tflite, tokenizer and manifest for LiteRT"
    )
    tflite.add_argument("--from", dest="source", required=True, help="a run directory with a checkpoint")
    tflite.add_argument("--out", required=True, help="artifact directory to write")
    tflite.add_argument("--batch-size", type=int, default=defaults.batch_size, help="static training batch size")
    tflite.add_argument("--seq-len", type=int, default=defaults.seq_len, help="static sequence length")
    tflite.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="client SGD rate in the manifest"
    )
    tflite.add_argument(
        "--quantization",
        choices=("int8", "float16", "none"),
        default=DEFAULT_QUANTIZATION,
        help="weight quantization of infer.tflite",
    )
    tflite.add_argument("--overwrite", action="store_true", help="replace an existing artifact directory")
    tflite.set_defaults(func=_cmd_export_tflite)


def domain_errors() -> tuple[type[BaseException], ...]:
    """This area's errors that mean bad input (shown as one line, exit 2)."""
    from device_runtime.litert_model import LiteRTModelError
    from wire.manifest import ManifestError

    return (ManifestError, LiteRTModelError)
