from __future__ import annotations

from pathlib import Path

import numpy as np

from fedkeys.baselines import CentralRunConfig, run_central
from model import CentralConfig
from model.checkpoint import load_checkpoint


def test_run_central_init_from_a_run_directory_starts_from_its_weights(prepared: Path, tmp_path: Path) -> None:
    one_step = CentralConfig(batch_size=16, max_epochs=1, patience=1, max_steps_per_epoch=1, learning_rate=0.05)
    source = tmp_path / "source"
    run_central(prepared, source, CentralRunConfig(preset="tiny", init_seed=3, training=one_step), progress=False)
    # a step of lr 1e-9 from the source: Adam moves every weight by at most about 1e-9
    tiny_step = CentralConfig(batch_size=16, max_epochs=1, patience=1, max_steps_per_epoch=1, learning_rate=1e-9)
    summary = run_central(
        prepared,
        tmp_path / "next",
        CentralRunConfig(preset="tiny", init_seed=0, init_from=source, training=tiny_step),
        progress=False,
    )
    assert summary["init_from"] == str(source)
    _, before = load_checkpoint(source / "checkpoint")
    _, after = load_checkpoint(tmp_path / "next" / "checkpoint")
    assert [w.shape for w in after] == [w.shape for w in before]
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(after, before, strict=True)) < 1e-6
