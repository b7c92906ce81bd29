"""wire.protocol: the task's settings, the assignment and the client-training contract are the same record."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from wire.contract import ClientTraining
from wire.protocol import (
    MAX_MESSAGE_BYTES,
    TASK_TRAINING,
    Assignment,
    CheckinRequest,
    Hyperparameters,
    Resource,
    TaskCreate,
    task_training_fields,
)

_SHA = "0" * 64


def _task(**fields: object) -> TaskCreate:
    return TaskCreate(population="p", plan_sha256=_SHA, checkpoint_sha256=_SHA, goal_count=2, **fields)  # type: ignore[arg-type]


def test_task_training_round_trips_through_the_task_fields() -> None:
    training = ClientTraining(
        local_epochs=3, learning_rate=0.25, max_rows=9, data_seed=11, codec="quant4", clip_norm=2.0
    )
    assert _task(**task_training_fields(training)).training == training


def test_task_defaults_are_the_task_contract() -> None:
    assert _task().training == TASK_TRAINING == ClientTraining(codec="quant8")


def test_assignment_training_is_the_tasks() -> None:
    training = ClientTraining(local_epochs=2, learning_rate=0.1, max_rows=7, data_seed=4, codec="quant2", clip_norm=1.5)
    assignment = Assignment(
        session_id="s", population="p", task="t", round=1, model_version=0,
        plan=Resource(url="/b", sha256=_SHA), checkpoint=Resource(url="/b", sha256=_SHA), upload_token="x",
        deadline_unix=1.0, hyperparameters=Hyperparameters.of(training), codec=training.codec,
        clip_norm=training.clip_norm, seed=3, rotation_seed=4,
    )  # fmt: skip
    assert assignment.training == training


def test_hyperparameters_of_an_uncapped_contract_is_refused() -> None:
    with pytest.raises(ValueError, match="a deployed task needs max_rows"):
        Hyperparameters.of(ClientTraining(max_rows=None))


def test_hyperparameters_no_longer_carry_the_plans_shapes() -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        Hyperparameters(local_epochs=1, learning_rate=0.5, max_rows=4, batch_size=16)  # type: ignore[call-arg]


def test_checkin_request_largest_valid_body_fits_the_bound() -> None:
    largest = CheckinRequest(
        client_version="\u2603" * 64,
        runtime="\u2603" * 64,
        codecs=["\u2603" * 32] * 16,
        example_count=10**9,
        token_count=10**12,
        credential="A" * 512,
    )
    escaped = json.dumps(largest.model_dump(), ensure_ascii=True).encode()  # every non-ASCII char as \uXXXX
    assert len(escaped) < MAX_MESSAGE_BYTES
    assert CheckinRequest.model_validate_json(escaped) == largest
