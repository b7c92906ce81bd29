"""``fedkeys demo``: the main job, from a fresh machine to compared models.

For now: fetch and prepare the Shakespeare corpus (one client per play role),
train the central reference and fit the n-gram reference, evaluate both on the
same held-out users and print the comparison. Later issues add the federated
simulation, the on-device export, the coordinator and the device fleet.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from data_tools import PrepareConfig, prepare_corpus
from fedkeys.baselines import CentralRunConfig, NgramRunConfig, run_central, run_ngram
from fedkeys.suggest import suggest
from model import CentralConfig

logger = logging.getLogger(__name__)

_SUGGEST_CONTEXTS = ("to be or not to", "my lord i", "what is the")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    preset: str = "small"
    max_epochs: int = 3
    vocab_size: int = 10000
    seq_len: int = 20
    ngram_order: int = 3


def run_demo(out: Path, config: DemoConfig, *, cache_dir: Path, progress: bool = True) -> str:
    """Run every step into ``out`` and return a printable report."""
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    if (data_dir / "stats.json").is_file():
        logger.info("demo: reusing the prepared corpus in %s", data_dir)
        stats = json.loads((data_dir / "stats.json").read_text())
    else:
        logger.info("demo: step 1/3, preparing the Shakespeare corpus")
        stats = prepare_corpus(
            "shakespeare", data_dir, PrepareConfig(vocab_size=config.vocab_size), cache_dir=cache_dir, progress=progress
        )
    logger.info("demo: step 2/3, n-gram reference")
    ngram = run_ngram(data_dir, out / "ngram", NgramRunConfig(order=config.ngram_order), overwrite=True)
    logger.info("demo: step 3/3, central reference (%s model, up to %d epochs)", config.preset, config.max_epochs)
    central = run_central(
        data_dir,
        out / "central",
        CentralRunConfig(
            preset=config.preset, seq_len=config.seq_len, training=CentralConfig(max_epochs=config.max_epochs)
        ),
        progress=progress,
        overwrite=True,
    )
    report = {
        "corpus": {k: stats[k] for k in ("users", "train_users", "test_users", "words", "vocab_size", "oov_rate")},
        "central": central["test"],
        "ngram": ngram["test"],
        "recall_at_1_ratio_central_over_ngram": central["test"]["recall_at_1"]
        / max(ngram["test"]["recall_at_1"], 1e-12),
        "suggestions": {c: suggest(out / "central", c) for c in _SUGGEST_CONTEXTS},
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return _render(report, out)


def _render(report: dict[str, Any], out: Path) -> str:
    c, n = report["central"], report["ngram"]
    lines = [
        "",
        f"fedkeys demo: Shakespeare, {report['corpus']['train_users']} training roles, "
        f"{report['corpus']['test_users']} test roles never trained on",
        f"{'':<22}{'central LSTM':>14}{'3-gram KN':>12}",
    ]
    for key in ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "perplexity"):
        lines.append(f"{key:<22}{c[key]:>14.4f}{n[key]:>12.4f}")
    lines.append(f"recall@1 central / n-gram: {report['recall_at_1_ratio_central_over_ngram']:.2f}")
    for context, words in report["suggestions"].items():
        lines.append(f"suggest {context!r:<22} -> {' | '.join(words)}")
    lines.append(f"report: {out / 'report.json'} ({report['wall_time_s']} s)")
    return "\n".join(lines)
