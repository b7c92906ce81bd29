"""fedkeys.admin_client: task settings are judged before any upload; a missing key is refused up front."""

from __future__ import annotations

import pytest

from fedkeys.admin_client import AdminClient, AdminError, check_task_settings


def test_check_task_settings_accepts_good_settings() -> None:
    check_task_settings({"population": "kb", "goal_count": 3, "min_reports": 2, "learning_rate": 0.5})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"population": "kb", "goal_count": 0},
            "task setting goal_count: Input should be greater than or equal to 1 (got 0)",
        ),
        ({"population": "Bad Name", "goal_count": 1}, "task setting population: String should match pattern"),
        (
            {"population": "kb", "goal_count": 3, "min_reports": 5},
            "task settings: Value error, min_reports 5 > goal_count 3",
        ),
    ],
)
def test_check_task_settings_names_the_bad_setting(fields: dict[str, object], message: str) -> None:
    with pytest.raises(AdminError) as info:
        check_task_settings(fields)
    assert str(info.value).startswith(message)


def test_admin_client_without_a_key_is_refused() -> None:
    with pytest.raises(AdminError, match="the admin key is needed: set FEDKEYS_API_KEY or pass --api-key-file"):
        AdminClient("http://127.0.0.1:1", None)
