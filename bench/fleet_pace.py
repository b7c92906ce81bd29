"""Does an emulated fleet waste its check-ins? The demo's deployment, counted (issue 13 §5).

Runs the deployment part of ``fedkeys demo`` and nothing else: ``fedkeys
serve`` as a child process (``fedkeys.demo_coordinator``), the demo's task
(goal 10, over-selection 1.3, selection 90 s, report 120 s, ``--rounds``
rounds, quant8) and its fleet (``fedkeys.emulate``: ``--devices`` phones,
diurnal availability, dropout 0.1, concurrency 2, ``--speedup``, the emulated
day starting Monday 00:00 UTC) until the rounds are committed. Then it reads the
phones' own event logs back the way the demo's report does
(``fedkeys.demo_fleet.fleet_activity``) and prints one JSON line: check-ins,
rejections (and their reasons), uploads, rounds committed, real and emulated
time, and the emulated hours in which some phones were eligible yet no phone
uploaded.

Inputs are a prepared corpus, an exported plan and its checkpoint run:

    fedkeys data prepare --corpus shakespeare --vocab-size 5000 --proxy-fraction 0.4 --out D
    fedkeys central train --data D --split proxy --out R --epochs 1 --max-steps-per-epoch 20 --learning-rate 3e-3
    fedkeys export tflite --from R --out P --batch-size 16 --seq-len 20
    nice -n 10 .venv/bin/python bench/fleet_pace.py --data D --plan P --checkpoint R --out W
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

START_UNIX = 1_767_571_200.0  # Monday 2026-01-05 00:00 UTC, the demo's emulated start


def _rejection_reasons(state_dir: Path) -> dict[str, int]:
    from device_runtime import event_log as ev
    from fedkeys.demo_fleet import device_users, read_events

    reasons: collections.Counter[str] = collections.Counter()
    for user in device_users(state_dir):
        reasons.update(str(e.detail.get("reason")) for e in read_events(state_dir, user) if e.kind == ev.REJECTED)
    return dict(reasons.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared corpus")
    parser.add_argument("--plan", type=Path, required=True, help="an exported plan directory")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the run directory the plan was exported from")
    parser.add_argument("--out", type=Path, required=True, help="work directory (replaced)")
    parser.add_argument("--devices", type=int, default=120)
    parser.add_argument("--speedup", type=float, default=720.0)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600.0, help="real seconds before the fleet gives up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--selection-seconds", type=float, help="override the demo task's selection window")
    parser.add_argument("--report-seconds", type=float, help="override the demo task's report window")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from device_runtime import FleetConfig, SimClock
    from device_runtime.emulator import EmulatorConfig
    from fedkeys.admin_client import AdminClient
    from fedkeys.demo_config import POPULATION, DemoConfig
    from fedkeys.demo_coordinator import coordinator_process
    from fedkeys.demo_fleet import fleet_activity
    from fedkeys.emulate import StopRule, emulate, log_status
    from model.checkpoint import load_checkpoint

    demo = DemoConfig(devices=args.devices, speedup=args.speedup, rounds=args.rounds, seed=args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    _, loaded = load_checkpoint(args.checkpoint / "checkpoint")
    weights = [np.asarray(w, np.float32) for w in loaded]
    fleet = FleetConfig(availability=demo.availability, dropout=demo.dropout, concurrency=demo.concurrency,
                        seed=demo.seed)  # fmt: skip
    emulator = EmulatorConfig(population=POPULATION, state_dir=args.out / "devices", devices=demo.devices,
                              fleet=fleet, shared_cache=True)  # fmt: skip
    with coordinator_process(args.out / "coordinator") as server, AdminClient(server.url, server.api_key) as admin:
        overrides = {"selection_seconds": args.selection_seconds, "report_seconds": args.report_seconds}
        fields = demo.task_fields() | {k: v for k, v in overrides.items() if v is not None}
        admin.create_task(args.plan, weights, **fields)
        clock = SimClock(START_UNIX, demo.speedup)
        started, load = time.monotonic(), os.getloadavg()[0]  # a shared machine: slower training, longer sessions
        result = emulate(args.data, server.url, emulator, clock, StopRule(rounds=demo.rounds, duration=args.timeout),
                         api_key=server.api_key, on_update=log_status(demo.devices))  # fmt: skip
        real_s = time.monotonic() - started
        states = collections.Counter(r.state for r in admin.rounds(POPULATION))
    activity = fleet_activity(args.out / "devices", start=result.start, end=result.end,
                              availability=demo.availability, seed=demo.seed)  # fmt: skip
    idle = [h for h, n, f in zip(activity.hours, activity.uploads_by_hour, activity.eligible_fraction_by_hour,
                                 strict=True) if n == 0 and f > 0]  # fmt: skip
    eligible = [f for f in activity.eligible_fraction_by_hour if f > 0]
    stats = result.stats
    print(json.dumps({
        "speedup": demo.speedup, "devices": demo.devices, "rounds_committed": result.rounds_committed,
        "round_states": dict(states), "real_s": round(real_s, 1), "emulated_hours": activity.emulated_hours,
        "load_average_1m": [round(load, 1), round(os.getloadavg()[0], 1)],
        "checkins": stats["checkins"], "rejected": stats["rejected"],
        "rejected_share": round(stats["rejected"] / max(stats["checkins"], 1), 3),
        "rejection_reasons": _rejection_reasons(args.out / "devices"), "uploads": stats["uploads"],
        "interrupted": stats["interrupted"], "errors": stats["errors"], "ineligible_steps": stats["ineligible"],
        "hours": len(activity.hours), "hours_eligible_without_upload": len(idle),
        "eligible_share_range": [round(min(eligible), 3), round(max(eligible), 3)] if eligible else None,
        "uploads_by_hour": list(activity.uploads_by_hour),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
