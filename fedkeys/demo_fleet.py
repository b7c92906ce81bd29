"""What the demo's emulated fleet did, read back from the phones' own event logs.

Each emulated phone keeps its event log on the device (as a real phone would;
Bonawitz et al. 2019 §2 log on device, not on the server; the emulator keeps
every phone's rows in one ``devices.sqlite``, ``device_runtime.fleet``): when
it was accepted, uploaded (round, bytes) or interrupted. The demo reads those
logs after the fleet stops to plot bytes uploaded per round and participation
over the emulated day, and draws eligibility over the same day from each
phone's habits (``device_runtime.availability``), the very rule the phones
applied.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from device_runtime import EligibilityPolicy, Habits, conditions_at, conditions_block, fleet_database
from device_runtime import event_log as ev
from device_runtime.fleet import FLEET_DATABASE_FILE

_HOUR_S = 3600.0


@dataclasses.dataclass(frozen=True)
class FleetActivity:
    """Per-round uploads and per-emulated-hour activity of a fleet (hours since ``start``)."""

    devices: int
    upload_bytes_by_round: dict[int, int]
    uploads_by_round: dict[int, int]
    hours: tuple[int, ...]
    uploads_by_hour: tuple[int, ...]
    interrupted_by_hour: tuple[int, ...]
    eligible_fraction_by_hour: tuple[float, ...]  # share of the fleet's phones eligible to train in that hour
    emulated_hours: float


def device_users(state_dir: Path) -> list[int]:
    """Training-user indices of the phones in ``state_dir`` (those with examples in the fleet's database)."""
    if not (state_dir / FLEET_DATABASE_FILE).is_file():
        return []
    db = fleet_database(state_dir)
    try:
        return [int(d) for (d,) in db.query("SELECT DISTINCT device FROM examples ORDER BY device")]
    finally:
        db.close()


def read_events(state_dir: Path, user: int) -> list[ev.Event]:
    """Every kept event of one phone, oldest first."""
    db = fleet_database(state_dir)
    try:
        log = ev.EventLog(db, user)
        return log.events(limit=log.max_events)
    finally:
        db.close()


def eligible_fraction(
    availability: str, seed: int, users: Sequence[int], start: float, hours: int, samples_per_hour: int = 6
) -> list[float]:
    """Share of ``users``' phones whose conditions allow training, per hour from ``start`` (sampled)."""
    policy = EligibilityPolicy()
    habits = [Habits.draw(seed, u) for u in users]
    out = []
    for hour in range(hours):
        hits = 0
        for i in range(samples_per_hour):
            t = start + (hour + i / samples_per_hour) * _HOUR_S
            hits += sum(conditions_block(conditions_at(availability, h, t), policy) is None for h in habits)
        out.append(hits / max(len(habits) * samples_per_hour, 1))
    return out


def fleet_activity(state_dir: Path, *, start: float, end: float, availability: str, seed: int) -> FleetActivity:
    """Uploads per round and activity per emulated hour of the fleet in ``state_dir`` (``devices emulate``)."""
    users = device_users(state_dir)
    bytes_by_round: collections.Counter[int] = collections.Counter()
    uploads_by_round: collections.Counter[int] = collections.Counter()
    uploads_by_hour: collections.Counter[int] = collections.Counter()
    interrupted_by_hour: collections.Counter[int] = collections.Counter()
    for user in users:
        for event in read_events(state_dir, user):
            hour = int((event.time - start) // _HOUR_S)
            if event.kind == ev.UPLOADED:
                round_num = int(event.detail["round"])
                bytes_by_round[round_num] += int(event.detail["bytes"])
                uploads_by_round[round_num] += 1
                uploads_by_hour[hour] += 1
            elif event.kind == ev.INTERRUPTED:
                interrupted_by_hour[hour] += 1
    span = max(end - start, 0.0) / _HOUR_S
    hours = tuple(range(max(int(span) + 1, 1)))
    return FleetActivity(
        devices=len(users),
        upload_bytes_by_round=dict(sorted(bytes_by_round.items())),
        uploads_by_round=dict(sorted(uploads_by_round.items())),
        hours=hours,
        uploads_by_hour=tuple(uploads_by_hour[h] for h in hours),
        interrupted_by_hour=tuple(interrupted_by_hour[h] for h in hours),
        eligible_fraction_by_hour=tuple(eligible_fraction(availability, seed, users, start, len(hours))),
        emulated_hours=round(span, 2),
    )
