"""Devices run secure sessions in threads against ``secagg.phases`` in memory (the HTTP routes' stand-in)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from device_runtime.secure_session import SecureAssignment, run_secure_session
from secagg import phases
from secagg.errors import SecAggError
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse
from secagg.ring import RingSpec
from secagg.updates import mean_from_ring

SHAPES = [(4, 3), (3,)]
PARAMS = RoundParams(round=1, round_seed=5, n=8, length=16, threshold=5)  # 15 coordinates + the weight
SPEC = RingSpec(bits=16, clip=1.0, max_weight=80.0)
ORDER = list(phases.Phase)  # ADVERTISE .. UNMASK, DONE, ABANDONED
DEADLINES = phases.PhaseDeadlines(advertise_s=10, share_s=10, input_s=10, unmask_s=10)


class DeviceGone(Exception):
    pass


class LocalCoordinator:
    """One ``SecureRound`` behind a lock. A phase's deadline passes (on a fake clock) exactly when every device
    still running is waiting for the next phase: no real-time timeouts, so the test cannot race."""

    def __init__(self) -> None:
        self.round = phases.open_round(PARAMS, DEADLINES, now=0.0)
        self.cond = threading.Condition()
        self.running = PARAMS.n
        self.waiting_for: list[phases.Phase] = []  # the phase each blocked device waits for

    def apply(self, fn: Callable[[phases.SecureRound, float], phases.SecureRound]) -> None:
        with self.cond:
            self.round = fn(self.round, self.round.closes_at - 1.0)
            self.cond.notify_all()

    def leave(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify_all()

    def _reached(self, phase: phases.Phase) -> bool:
        return ORDER.index(self.round.phase) >= ORDER.index(phase)  # a fast round may be past it

    def wait(self, phase: phases.Phase) -> phases.SecureRound:
        with self.cond:
            self.waiting_for.append(phase)
            try:
                while not self._reached(phase):
                    if sum(not self._reached(p) for p in self.waiting_for) == self.running:
                        # every device still running is blocked: nobody else will answer, the deadline passes
                        self.round = phases.advance(self.round, self.round.closes_at)
                        self.cond.notify_all()
                    else:
                        self.cond.wait()
                if self.round.phase is phases.Phase.ABANDONED:
                    raise SecAggError("wrong_phase", "round ended: abandoned")
                return self.round
            finally:
                self.waiting_for.remove(phase)


class Transport:
    def __init__(self, server: LocalCoordinator) -> None:
        self.server = server

    def send_advert(self, advert: AdvertiseKeys) -> None:
        self.server.apply(lambda r, now: phases.submit_advert(r, advert, now))

    def wait_adverts(self) -> list[AdvertiseKeys]:
        state = self.server.wait(phases.Phase.SHARE).state
        assert state is not None
        return list(state.adverts.values())

    def send_shares(self, device: int, shares: Sequence[EncryptedShare]) -> None:
        self.server.apply(lambda r, now: phases.submit_shares(r, device, shares, now))

    def wait_inbox(self, device: int) -> list[EncryptedShare]:
        state = self.server.wait(phases.Phase.INPUT).state
        assert state is not None
        return list(state.inbox[device])

    def send_input(self, item: MaskedInput) -> None:
        self.server.apply(lambda r, now: phases.submit_input(r, item, now))

    def wait_unmask_request(self) -> UnmaskRequest:
        return self.server.wait(phases.Phase.UNMASK).request

    def send_unmask(self, response: UnmaskResponse) -> None:
        self.server.apply(lambda r, now: phases.submit_unmask(r, response, now))


def _deltas(i: int) -> list[np.ndarray]:
    rng = np.random.default_rng([9, i])
    return [(rng.normal(size=s) * 0.05).astype(np.float32) for s in SHAPES]


def _weight(i: int) -> float:
    return 10.0 * (i + 1)


def _run_fleet(gone: set[int]) -> tuple[phases.SecureRound, list[BaseException]]:
    server = LocalCoordinator()
    errors: list[BaseException] = []

    def device(i: int) -> None:
        def train() -> tuple[list[np.ndarray], float]:
            if i in gone:
                raise DeviceGone(i)
            return _deltas(i), _weight(i)

        try:
            run_secure_session(Transport(server), SecureAssignment(PARAMS, SPEC, i), train, np.random.default_rng(i))
        except DeviceGone:
            pass
        except BaseException as err:  # reported to the test thread
            errors.append(err)
        finally:
            server.leave()

    threads = [threading.Thread(target=device, args=(i,)) for i in range(PARAMS.n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return server.round, errors


def test_secure_session_fleet_sum_is_weighted_mean_of_survivors() -> None:
    final, errors = _run_fleet(gone={2, 6})
    assert not errors
    assert final.phase is phases.Phase.DONE and final.total is not None
    result = mean_from_ring(final.total, 6, SHAPES, SPEC)
    kept = [i for i in range(8) if i not in {2, 6}]
    assert result.weight == pytest.approx(sum(_weight(i) for i in kept), rel=1e-4)
    for k in range(len(SHAPES)):
        plain = np.sum([_weight(i) * _deltas(i)[k] for i in kept], axis=0) / result.weight
        np.testing.assert_allclose(result.tensors[k], plain, atol=2 * 2.0 / SPEC.top)


def test_secure_session_too_many_dropouts_abandoned() -> None:
    final, errors = _run_fleet(gone={0, 1, 2, 3})
    assert final.phase is phases.Phase.ABANDONED and final.total is None
    assert all(isinstance(e, SecAggError) for e in errors)  # survivors learn the round ended, nothing more


def test_secure_assignment_bad_values_refused() -> None:
    with pytest.raises(SecAggError, match="not in this round"):
        SecureAssignment(PARAMS, SPEC, 8)
    with pytest.raises(SecAggError, match="overflow"):
        SecureAssignment(RoundParams(round=1, round_seed=1, n=300, length=4, threshold=2), RingSpec(bits=24), 0)
