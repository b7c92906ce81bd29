from data_tools.split import (
    assign_split,
    drop_small_users,
    split_users,
    user_hash_unit,
)

USERS = [f"user{i}" for i in range(2000)]


def _split(users: list[str], seed: int = 0) -> dict[str, list[str]]:
    groups = split_users(users, seed=seed, validation_fraction=0.1, test_fraction=0.1)
    return {name: list(ids) for name, ids in groups.items()}


def test_user_hash_unit_in_unit_interval_and_seeded() -> None:
    values = [user_hash_unit(u, 0) for u in USERS]
    assert all(0.0 <= v < 1.0 for v in values)
    assert values == [user_hash_unit(u, 0) for u in USERS]
    assert values != [user_hash_unit(u, 1) for u in USERS]


def test_split_users_deterministic() -> None:
    assert _split(USERS) == _split(list(reversed(USERS)))


def test_split_users_seed_changes_assignment() -> None:
    assert _split(USERS, seed=0) != _split(USERS, seed=1)


def test_split_users_stable_when_users_added() -> None:
    before = _split(USERS[:1000])
    after = _split(USERS)
    for name, ids in before.items():
        assert set(ids) <= set(after[name])


def test_split_users_fractions_roughly_respected() -> None:
    groups = _split(USERS)
    assert sum(len(v) for v in groups.values()) == len(USERS)
    assert 140 <= len(groups["test"]) <= 260
    assert 140 <= len(groups["validation"]) <= 260


def test_assign_split_zero_fractions_all_train() -> None:
    assert {assign_split(u, seed=0, validation_fraction=0.0, test_fraction=0.0) for u in USERS} == {"train"}


def test_drop_small_users_threshold_inclusive() -> None:
    kept, dropped = drop_small_users({"b": 20, "a": 19, "c": 100}, 20)
    assert kept == ["b", "c"]
    assert dropped == ["a"]


def test_split_users_proxy_taken_from_training_users_only() -> None:
    plain = split_users(USERS, seed=0, validation_fraction=0.1, test_fraction=0.1)
    with_proxy = split_users(USERS, seed=0, validation_fraction=0.1, test_fraction=0.1, proxy_fraction=0.3)
    assert with_proxy["test"] == plain["test"] and with_proxy["validation"] == plain["validation"]
    assert sorted(with_proxy["proxy"] + with_proxy["train"]) == plain["train"]
    assert plain["proxy"] == []
    assert 500 <= len(with_proxy["proxy"]) <= 700  # about 0.3 of 2,000


def test_assign_split_proxy_band_follows_validation() -> None:
    unit = user_hash_unit("user7", 0)
    # with bands test [0, .1), validation [.1, .2), proxy [.2, .5): the user lands where its unit falls
    expected = "test" if unit < 0.1 else "validation" if unit < 0.2 else "proxy" if unit < 0.5 else "train"
    got = assign_split("user7", seed=0, validation_fraction=0.1, test_fraction=0.1, proxy_fraction=0.3)
    assert got == expected
