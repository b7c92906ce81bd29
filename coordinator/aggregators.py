"""How a round's updates become one sum: the plain and the secure path behind one interface.

The coordinator runs two aggregation mechanisms. A plain round adds each
validated update to the coordinator processes' in-memory partial sums
(``coordinator.partials``; Bonawitz et al. 2019 §4.2); a secure round never
sees an update, only the ring sum its devices' masked inputs unmask to
(Bonawitz et al. 2017 with the SecAgg+ graph of Bell et al. 2020; phases in
``coordinator.secure_rounds``). Everything else about a round (counting,
deadlines, the commit and its checks) is the same, so the round clock, the
check-in and the upload route ask a :class:`RoundAggregator` and never which
mechanism it is. Its life: ``open`` with the round, ``assign`` each device,
``settle`` once the round or the mechanism is due, which yields a
:class:`Settlement`: the round's weighted sum (``commit_round`` turns it into
the next model, whatever its source), an abandoned round, or not yet.

:func:`for_task` is the one place that reads ``secure_aggregation`` for this.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.aggregation import WeightedSum
from coordinator.db import rounds
from coordinator.errors import UpdateRejected
from coordinator.logs import event
from coordinator.partials import Gathered, RoundPartials
from coordinator.records import TaskRow
from coordinator.secure_records import assign_device, due, load_record, open_secure_round, round_params, store_record
from secagg import phases
from secagg.bounds import mean_l2_bound
from secagg.errors import SecAggError
from secagg.messages import RoundParams
from secagg.ring import RingSpec
from secagg.updates import mean_from_ring
from wire.codec import CodecSpec, round_rotation_seed
from wire.protocol import SecureAggregation, TaskCreate

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Settlement:
    """What settling a round came to: its weighted sum to commit, abandoned, or neither yet (``waiting``).

    ``total`` is the round's whole unrotated ``sum_i w_i delta_i`` with its weight; the round row's
    ``received`` and ``weight_sum`` count what it sums. An abandoned round's reason was logged already.
    """

    total: WeightedSum | None = None
    abandoned: bool = False

    def __post_init__(self) -> None:
        if self.abandoned and self.total is not None:
            raise ValueError("an abandoned round has no sum to commit")

    @property
    def waiting(self) -> bool:
        return self.total is None and not self.abandoned


WAIT = Settlement()
ABANDON = Settlement(abandoned=True)


class RoundAggregator(Protocol):
    """One aggregation mechanism. Stateless: ``partials`` is the calling process's share of plain sums.

    Every method that takes ``conn`` runs inside the caller's transaction; ``pending`` and ``settle``
    are called by the round clock holding the task and round locks (``coordinator.db``'s order).
    """

    def open(self, conn: Connection, task: TaskRow, round_id: int, number: int, now: float) -> None:
        """Set up the mechanism's state of a round that just opened."""

    def assign(
        self, conn: Connection, task: TaskRow, round_id: int, number: int, session_id: str, index: int
    ) -> SecureAggregation | None:
        """Record the session's place (``index``: its 0-based assignment order); what the device must know."""

    def upload_refusal(self) -> UpdateRejected | None:
        """Why a plain upload is refused in this mechanism's rounds (None: uploads are how it aggregates)."""

    def phase_params(self, task: TaskRow, number: int) -> RoundParams | None:
        """The public ``secagg`` parameters of round ``number`` (None: the round runs no secagg phases)."""

    def update_bound(self, config: TaskCreate, length: int, devices: int, weight_units: float) -> float:
        """The L2 norm no mean of ``devices`` validated updates (weight ``weight_units``) can exceed."""

    def pending(self, conn: Connection, partials: RoundPartials, round_row: sa.Row[Any], now: float) -> bool:
        """Whether the open round needs settling now, whatever its own deadlines say."""

    def settle(
        self, conn: Connection, partials: RoundPartials, task: TaskRow, round_row: sa.Row[Any], now: float
    ) -> Settlement:
        """The round's sum, or that it must be abandoned, or WAIT; called when pending or due to commit."""

    def forget(self, partials: RoundPartials, round_id: int) -> None:
        """Drop what this process holds of a round that closed."""


class PlainAggregator:
    """Devices upload updates; each process sums the ones it accepts in memory, one process gathers them."""

    def open(self, conn: Connection, task: TaskRow, round_id: int, number: int, now: float) -> None:
        return None  # a process's partial starts with its first counted update (``RoundPartials.begin``)

    def assign(
        self, conn: Connection, task: TaskRow, round_id: int, number: int, session_id: str, index: int
    ) -> SecureAggregation | None:
        return None

    def upload_refusal(self) -> UpdateRejected | None:
        return None

    def phase_params(self, task: TaskRow, number: int) -> RoundParams | None:
        return None

    def update_bound(self, config: TaskCreate, length: int, devices: int, weight_units: float) -> float:
        """Every update was clipped or refused above ``norm_bound`` S: so is their weighted mean (convexity)."""
        return float(config.norm_bound)

    def pending(self, conn: Connection, partials: RoundPartials, round_row: sa.Row[Any], now: float) -> bool:
        """A process that held part of the sum is gone (a crash): the round cannot commit its mean."""
        return partials.lost(conn, round_row._mapping["id"], now)

    def settle(
        self, conn: Connection, partials: RoundPartials, task: TaskRow, round_row: sa.Row[Any], now: float
    ) -> Settlement:
        r = round_row._mapping
        rotated = CodecSpec.parse(task.config.codec).bits is not None
        rotation = round_rotation_seed(task.config.seed, r["number"]) if rotated else None
        gathered = partials.gather(conn, task, round_row, rotation, now)
        if gathered is Gathered.WAIT:
            return WAIT
        if gathered is Gathered.LOST:
            event(
                logger,
                "round_sum_lost",
                logging.WARNING,
                population=task.population,
                round=r["number"],
                received=r["received"],
            )
            return ABANDON
        return Settlement(total=gathered)

    def forget(self, partials: RoundPartials, round_id: int) -> None:
        partials.forget(round_id)


class SecureAggregator:
    """Devices run the four ``secagg`` phases; the server learns only the sum of at least ``threshold`` inputs."""

    def open(self, conn: Connection, task: TaskRow, round_id: int, number: int, now: float) -> None:
        open_secure_round(conn, task, round_id, number, now)

    def assign(
        self, conn: Connection, task: TaskRow, round_id: int, number: int, session_id: str, index: int
    ) -> SecureAggregation | None:
        return assign_device(conn, task, round_id, number, session_id, index)

    def upload_refusal(self) -> UpdateRejected | None:
        return UpdateRejected("secure_round", "this task takes masked inputs only: POST .../secagg/masked_input")

    def phase_params(self, task: TaskRow, number: int) -> RoundParams | None:
        return round_params(task, number)[0]

    def update_bound(self, config: TaskCreate, length: int, devices: int, weight_units: float) -> float:
        """Clipped to ``secagg_clip``, then rounded on the ring's grid (``commit_checks`` says why)."""
        spec = RingSpec(bits=config.secagg_bits, clip=config.secagg_clip)
        return mean_l2_bound(spec, devices, weight_units, length)

    def pending(self, conn: Connection, partials: RoundPartials, round_row: sa.Row[Any], now: float) -> bool:
        """A phase deadline passed, or the protocol ended."""
        return due(conn, round_row._mapping["id"], now)

    def settle(
        self, conn: Connection, partials: RoundPartials, task: TaskRow, round_row: sa.Row[Any], now: float
    ) -> Settlement:
        """Close a due phase; the round's sum once unmasked and checked (``secagg.bounds``), else WAIT or ABANDON.

        The secure row is locked last (after the caller's task and round locks). On a sum, the round row's
        ``received`` and ``weight_sum`` are set to what it sums (a secure round counts nothing before).
        """
        r = round_row._mapping
        record = load_record(conn, r["id"], lock=True)
        moved = phases.advance(record, now)
        if moved is not record:
            store_record(conn, r["id"], moved)
        if moved.phase is phases.Phase.ABANDONED:
            return _abandoned(task, r["number"], moved)
        if moved.phase is not phases.Phase.DONE or moved.total is None or moved.state is None:
            return WAIT
        count = len(moved.state.received)
        if count < (task.config.min_reports or task.config.goal_count):
            return ABANDON
        _, spec = round_params(task, r["number"])
        try:
            mean = mean_from_ring(moved.total, count, task.shapes, spec)  # checks the sum first (secagg.bounds)
        except SecAggError as err:  # a sum no in-range inputs could make: abandon, never commit it
            refused = dataclasses.replace(
                moved, phase=phases.Phase.ABANDONED, total=None, reason=f"{err.reason}: {err}"
            )
            store_record(conn, r["id"], refused)
            return _abandoned(task, r["number"], refused)
        acc = WeightedSum(task.shapes)
        acc.add(mean.tensors, mean.weight)  # the token-weighted mean, as a plain round's
        conn.execute(sa.update(rounds).where(rounds.c.id == r["id"]).values(received=count, weight_sum=mean.weight))
        return Settlement(total=acc)

    def forget(self, partials: RoundPartials, round_id: int) -> None:
        return None  # nothing of a secure round is held in memory


def _abandoned(task: TaskRow, number: int, record: phases.SecureRound) -> Settlement:
    """The secure record keeps the reason (devices see it); the log names it too."""
    logger.warning("secure round %d of %s abandoned: %s", number, task.population, record.reason)
    return ABANDON


_PLAIN = PlainAggregator()
_SECURE = SecureAggregator()


def for_config(config: TaskCreate) -> RoundAggregator:
    """The aggregation mechanism of a task's config: the one place that reads ``secure_aggregation``."""
    return _SECURE if config.secure_aggregation else _PLAIN


def for_task(task: TaskRow) -> RoundAggregator:
    """The aggregation mechanism of ``task``'s rounds."""
    return for_config(task.config)


def update_bound(config: TaskCreate, length: int, *, devices: int = 1, weight_units: float = 1.0) -> float:
    """The L2 norm no mean of the task's validated updates can exceed (``coordinator.commit_checks``).

    ``length`` is the model's coordinate count P; ``devices`` averaged with total weight
    ``weight_units`` (their weight / the task's max weight) matter to secure rounds only.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    return for_config(config).update_bound(config, length, devices, weight_units)
