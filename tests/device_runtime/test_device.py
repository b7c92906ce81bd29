"""device_runtime.device: one phone against a fake coordinator (happy path, every refusal, errors, restarts)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from device_fakes import (
    BATCH,
    GOOD,
    INITIAL,
    TRAIN_BYTES,
    FakeClock,
    FakeCoordinator,
    FakeTrainer,
    Switch,
    make_device,
    manifest,
    sha,
)

from device_runtime import event_log as ev
from device_runtime.client import CoordinatorClient
from device_runtime.device import DeviceConfig
from device_runtime.eligibility import EligibilityPolicy
from device_runtime.litert_model import LiteRTModelError
from device_runtime.rows import client_rows
from device_runtime.scheduler import RetryPolicy
from device_runtime.timebase import SimClock
from wire.protocol import RetryWindow
from wire.update import decode_update


def test_device_step_trains_uploads_and_reports(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    trainer = FakeTrainer()
    device = make_device(tmp_path, coordinator, trainer=trainer)
    outcome = device.step()
    assert outcome.kind == ev.UPLOADED
    [(session, auth, blob)] = coordinator.uploads
    assert (session, auth) == ("s1", "Bearer token1")
    message = decode_update(blob)
    assert (message.round, message.base_version, message.codec, message.seed) == (7, 3, "float32", 11)
    # the weight is every non-pad target of every batch of both epochs
    rows = client_rows(
        device.examples.examples(1_700_000_000.0), 4, bos_id=2, pad_id=0, seed=5, round_num=7, client=1, max_rows=100
    )
    tokens = int(np.count_nonzero(rows[1]))
    assert message.weight == 2 * tokens
    # and the delta is trained - initial, in the checkpoint's order
    steps_total = sum(int(np.count_nonzero(y)) for _, y in trainer.batches)
    assert steps_total == 2 * tokens
    expected = [np.full(w.shape, 0.5 * steps_total / 100.0) for w in INITIAL]
    for got, want in zip(message.decode_tensors(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5)
    [report] = coordinator.reports
    assert report["status"] == "completed"
    assert report["metrics"]["loss_after"] < report["metrics"]["loss_before"]
    assert report["metrics"]["upload_bytes"] == len(blob)
    assert [e.kind for e in device.events.events()] == [ev.CHECKIN, ev.ACCEPTED, ev.TRAINED, ev.UPLOADED]
    assert coordinator.aborts == []


def test_device_batches_follow_the_contract_order(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    trainer = FakeTrainer()
    device = make_device(tmp_path, coordinator, trainer=trainer, examples=7)
    device.step()
    rows = client_rows(
        device.examples.examples(1_700_000_000.0), 4, bos_id=2, pad_id=0, seed=5, round_num=7, client=1, max_rows=100
    )
    fed = np.concatenate([x for x, _ in trainer.batches])
    expected = np.concatenate([rows[0], rows[0]])
    np.testing.assert_array_equal(fed[: len(expected)], expected)
    assert (fed[len(expected) :] == 0).all() and len(fed) % BATCH == 0


def test_device_interrupted_mid_training_aborts_and_uploads_nothing(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    switch = Switch()
    trainer = FakeTrainer()
    original = trainer.train_step

    def unplug_after_first(inputs: object, targets: object, learning_rate: float) -> float:
        switch.conditions = dataclasses.replace(GOOD, charging=False)  # unplugged during the first batch
        return original(inputs, targets, learning_rate)

    trainer.train_step = unplug_after_first  # type: ignore[method-assign]
    device = make_device(tmp_path, coordinator, conditions=switch, trainer=trainer)
    outcome = device.step()
    assert (outcome.kind, outcome.detail) == (ev.INTERRUPTED, "not_charging")
    assert trainer.steps == 1
    assert coordinator.uploads == [] and coordinator.reports == []
    assert coordinator.aborts == [("s1", "not_charging")]
    assert device.events.events(ev.INTERRUPTED)[0].detail == {"session": "s1", "reason": "not_charging", "batches": 1}
    assert device.state.open_session is None


def test_device_ineligible_does_not_check_in(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    switch = Switch(dataclasses.replace(GOOD, battery=0.1))
    clock = FakeClock()
    device = make_device(tmp_path, coordinator, conditions=switch, clock=clock)
    outcome = device.step()
    assert (outcome.kind, outcome.detail) == ("ineligible", "battery_low")
    assert coordinator.checkins == 0
    assert 900 * 0.8 <= outcome.next_checkin - clock.now <= 900 * 1.2


def test_device_waits_the_minimum_separation_after_participating(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    clock = FakeClock()
    device = make_device(tmp_path, coordinator, clock=clock, eligibility=EligibilityPolicy(min_separation_seconds=500))
    assert device.step().kind == ev.UPLOADED
    clock.now += 100
    outcome = device.step()
    assert (outcome.kind, outcome.detail) == ("ineligible", "too_soon")
    assert clock.now + 399 <= outcome.next_checkin <= clock.now + 401
    assert coordinator.checkins == 1


def test_device_rejected_honours_the_retry_window(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    coordinator.outcome = "rejected"
    clock = FakeClock()
    device = make_device(tmp_path, coordinator, clock=clock)
    delays = [device.step().next_checkin - clock.now for _ in range(20)]
    assert all(100.0 <= d <= 200.0 for d in delays)
    assert len(set(delays)) == 20  # jittered within the window
    assert device.events.counts()[ev.REJECTED] == 20


def _rejected_delays(tmp_path: Path, clock: FakeClock | SimClock, steps: int) -> list[float]:
    coordinator = FakeCoordinator()
    coordinator.outcome, coordinator.retry = "rejected", RetryWindow(min_seconds=30.0, max_seconds=60.0)
    device = make_device(tmp_path, coordinator, clock=clock)
    now = clock.now() if isinstance(clock, SimClock) else clock.now
    return [device.step().next_checkin - now for _ in range(steps)]


def test_device_emulated_at_720x_honours_the_retry_window_in_wall_seconds(tmp_path: Path) -> None:
    # Pace steering's window is the coordinator's wall seconds: [30, 60] s is [6, 12] emulated hours at 720x.
    fake = FakeClock(0.0)  # time 0: next_checkin - now is the delay itself, with no rounding
    emulated = _rejected_delays(tmp_path / "emulated", SimClock(0.0, 720.0, fake, wall=fake), 20)
    assert all(21_600.0 <= d <= 43_200.0 for d in emulated) and len(set(emulated)) == 20
    phone = _rejected_delays(tmp_path / "phone", FakeClock(0.0), 20)  # same seeds, a real phone's clock
    assert all(30.0 <= d <= 60.0 for d in phone)
    assert emulated == [720.0 * d for d in phone]


def test_device_emulated_at_speedup_one_is_a_phone(tmp_path: Path) -> None:
    fake = FakeClock(0.0)
    emulated = _rejected_delays(tmp_path / "emulated", SimClock(0.0, 1.0, fake, wall=fake), 5)
    assert emulated == _rejected_delays(tmp_path / "phone", FakeClock(0.0), 5)


def test_device_reads_its_credential_expiry_on_the_coordinators_clock(tmp_path: Path) -> None:
    # The emulated day runs ahead of the coordinator's: the credential (expires_unix 2e9) is still valid there.
    coordinator = FakeCoordinator()
    coordinator.outcome = "rejected"
    ahead = SimClock(3e9, 720.0, FakeClock(), wall=FakeClock(1_700_000_000.0))
    device = make_device(tmp_path, coordinator, clock=ahead)
    assert [device.step().kind, device.step().kind] == [ev.REJECTED, ev.REJECTED]
    assert coordinator.enrollments == 1 and coordinator.credentials == ["cred1", "cred1"]


def test_device_backs_off_exponentially_while_the_coordinator_fails(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    coordinator.checkin_status = 503
    clock = FakeClock()
    policy = RetryPolicy(transient_initial_seconds=10.0, transient_max_seconds=100.0)
    device = make_device(tmp_path, coordinator, clock=clock, retry=policy)
    delays = []
    for _ in range(6):
        outcome = device.step()
        assert outcome.kind == ev.ERROR
        delays.append(outcome.next_checkin - clock.now)
        clock.now = outcome.next_checkin
    caps = [10, 20, 40, 80, 100, 100]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert device.state.failures == 6
    coordinator.checkin_status = 200
    assert device.step().kind == ev.UPLOADED
    assert device.state.failures == 0


def test_device_unreachable_coordinator_is_a_transient_error(tmp_path: Path) -> None:
    device = make_device(tmp_path, FakeCoordinator())

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    device._client = CoordinatorClient.connect("http://nowhere", transport=httpx.MockTransport(refuse))
    outcome = device.step()
    assert outcome.kind == ev.ERROR and "ConnectError" in outcome.detail
    assert device.state.failures == 1


@pytest.mark.parametrize(("status", "reason"), [(409, "round_closed"), (403, "token_used"), (422, "malformed")])
def test_device_upload_refused_is_permanent(tmp_path: Path, status: int, reason: str) -> None:
    coordinator = FakeCoordinator()
    coordinator.upload_status, coordinator.upload_reason = status, reason
    clock = FakeClock()
    device = make_device(tmp_path, coordinator, clock=clock)
    outcome = device.step()
    assert outcome.kind == ev.ERROR and reason in outcome.detail
    assert 4 * 3600 * 0.8 <= outcome.next_checkin - clock.now <= 4 * 3600 * 1.2
    assert coordinator.reports == []
    assert device.events.events(ev.ERROR)[0].detail["reason"] == reason


def test_device_upload_429_is_transient(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    coordinator.upload_status = 429
    device = make_device(tmp_path, coordinator)
    assert device.step().kind == ev.ERROR
    assert device.state.failures == 1


@pytest.mark.parametrize("what", ["plan", "model", "checkpoint"])
def test_device_refuses_bytes_that_do_not_match_their_hash(tmp_path: Path, what: str) -> None:
    coordinator = FakeCoordinator()
    digest = {"plan": coordinator.plan_sha, "model": sha(TRAIN_BYTES), "checkpoint": coordinator.checkpoint_sha}[what]
    coordinator.tamper[digest] = b"tampered"
    device = make_device(tmp_path, coordinator)
    outcome = device.step()
    assert outcome.kind == ev.REFUSED
    assert coordinator.aborts == [("s1", f"{what}_hash_mismatch")]
    assert coordinator.uploads == []
    assert not any((tmp_path / "device" / "cache").glob(digest))


def test_device_refuses_a_plan_of_unknown_format_version(tmp_path: Path) -> None:
    plan = json.loads(manifest().to_json())
    plan["format_version"] = 99
    coordinator = FakeCoordinator(plan=json.dumps(plan).encode())
    device = make_device(tmp_path, coordinator)
    outcome = device.step()
    assert outcome.kind == ev.REFUSED and "unsupported manifest format version 99" in outcome.detail
    assert coordinator.aborts == [("s1", "unsupported_plan")]


def test_device_refuses_a_model_the_runtime_cannot_run(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()

    def needs_flex(_model: bytes, _manifest: object) -> FakeTrainer:
        raise LiteRTModelError("model bytes: needs custom ops ['FlexAddV2'], which the standalone LiteRT runtime lacks")

    device = make_device(tmp_path, coordinator, factory=needs_flex)
    outcome = device.step()
    assert outcome.kind == ev.REFUSED and "FlexAddV2" in outcome.detail
    assert coordinator.aborts == [("s1", "unsupported_plan")] and coordinator.uploads == []
    assert device.events.events(ev.REFUSED)[0].detail["reason"] == "unsupported_plan"


def test_device_refuses_a_checkpoint_that_does_not_fit_the_plan(tmp_path: Path) -> None:
    from wire.update import encode_weights

    coordinator = FakeCoordinator(checkpoint=encode_weights([np.zeros(3, np.float32)]))
    device = make_device(tmp_path, coordinator)
    assert device.step().kind == ev.REFUSED
    assert coordinator.aborts == [("s1", "bad_checkpoint")]


def test_device_refuses_another_tokenizer(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    device = make_device(tmp_path, coordinator, tokenizer_sha256="1" * 64)
    assert device.step().kind == ev.REFUSED
    assert coordinator.aborts == [("s1", "tokenizer_mismatch")]


def test_device_downloads_each_blob_once(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    device = make_device(tmp_path, coordinator)
    device.step()
    device.step()
    assert len(coordinator.uploads) == 2
    assert sorted(coordinator.fetches) == sorted(coordinator.blobs)


def test_device_carries_on_after_a_restart(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    coordinator.outcome = "rejected"
    clock = FakeClock()
    device = make_device(tmp_path, coordinator, clock=clock)
    next_time = device.step().next_checkin
    device.close()
    again = make_device(tmp_path, coordinator, clock=clock)
    assert again.state.next_checkin == next_time
    assert again.examples.total() == 5  # not added twice
    assert [e.kind for e in again.events.events()] == [ev.CHECKIN, ev.REJECTED]


def test_device_aborts_a_session_left_open_by_a_restart(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    trainer = FakeTrainer()

    def crash(*args: object) -> float:
        raise KeyboardInterrupt  # the emulator is killed mid-training

    trainer.train_step = crash  # type: ignore[method-assign,assignment]
    device = make_device(tmp_path, coordinator, trainer=trainer)
    with pytest.raises(KeyboardInterrupt):
        device.step()
    device.close()
    again = make_device(tmp_path, coordinator)
    assert again.state.open_session == "s1"
    assert again.step().kind == ev.UPLOADED
    assert coordinator.aborts == [("s1", "restarted")]
    assert [s for s, _, _ in coordinator.uploads] == ["s2"]


def test_device_config_rejects_unknown_codec(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="codecs"):
        DeviceConfig(population="p", client=0, directory=tmp_path, codecs=("zip",))


def test_device_diverged_training_is_aborted_not_uploaded(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    trainer = FakeTrainer()

    def explode(inputs: object, targets: object, learning_rate: float) -> float:
        trainer.weights[0][0] = np.inf
        return float("nan")

    trainer.train_step = explode  # type: ignore[method-assign]
    device = make_device(tmp_path, coordinator, trainer=trainer)
    outcome = device.step()
    assert (outcome.kind, outcome.detail) == (ev.INTERRUPTED, "not_finite")
    assert coordinator.uploads == [] and coordinator.aborts == [("s1", "not_finite")]


def test_device_enrolls_once_and_presents_its_credential_across_restarts(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    coordinator.outcome = "rejected"
    clock = FakeClock()
    device = make_device(tmp_path, coordinator, clock=clock)
    device.step()
    clock.now += 1000
    device.step()
    device.close()
    clock.now += 1000
    make_device(tmp_path, coordinator, clock=clock).step()
    assert coordinator.enrollments == 1
    assert coordinator.credentials == ["cred1", "cred1", "cred1"]


def test_device_enrolls_again_after_its_credential_is_refused(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    clock = FakeClock()
    device = make_device(tmp_path, coordinator, clock=clock)
    coordinator.checkin_status = 403  # e.g. the coordinator's credential key changed
    coordinator.checkin_reason = "bad_credential"
    outcome = device.step()
    assert outcome.kind == ev.ERROR and outcome.next_checkin - clock.now < 3600  # soon, not the permanent delay
    coordinator.checkin_status = 200
    clock.now = outcome.next_checkin
    assert device.step().kind == ev.UPLOADED
    assert coordinator.credentials == ["cred1", "cred2"]


def test_device_declares_its_tokens_at_checkin(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    device = make_device(tmp_path, coordinator)
    device.step()
    tokens = sum(len(e) for e in device.examples.examples(1_700_000_000.0))
    [body] = coordinator.checkin_bodies
    assert (body["example_count"], body["token_count"], body["credential"]) == (5, tokens, "cred1")
