import pytest

from tff_sim.schedules import Schedule, ScheduleError, scale_at


def test_scale_at_constant_is_one_every_round() -> None:
    assert [scale_at(Schedule(), r, 5) for r in range(1, 6)] == [1.0] * 5


def test_scale_at_warmup_then_cosine_matches_docstring_example() -> None:
    s = Schedule(warmup_rounds=2, decay="cosine", final_scale=0.1)
    assert [round(scale_at(s, r, 6), 6) for r in range(1, 7)] == [0.5, 1.0, 1.0, 0.775, 0.325, 0.1]


def test_scale_at_linear_decay_reaches_final_scale() -> None:
    s = Schedule(decay="linear", final_scale=0.2)
    assert [round(scale_at(s, r, 5), 6) for r in range(1, 6)] == [1.0, 0.8, 0.6, 0.4, 0.2]


def test_scale_at_past_the_planned_rounds_stays_at_final_scale() -> None:
    s = Schedule(decay="cosine", final_scale=0.1)
    assert scale_at(s, 12, 10) == pytest.approx(0.1)


def test_scale_at_single_round_run_after_warmup_is_final_scale() -> None:
    assert scale_at(Schedule(warmup_rounds=1, decay="linear", final_scale=0.5), 2, 2) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_rounds": -1}, "warmup rounds must be a non-negative integer, got -1"),
        ({"decay": "step"}, "decay must be one of"),
        ({"final_scale": 1.5}, "final scale must be in [0, 1], got 1.5"),
    ],
)
def test_schedule_bad_values_name_the_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Schedule(**kwargs)  # type: ignore[arg-type]


def test_scale_at_round_zero_is_refused() -> None:
    with pytest.raises(ScheduleError, match="round must be >= 1, got 0"):
        scale_at(Schedule(), 0, 5)
