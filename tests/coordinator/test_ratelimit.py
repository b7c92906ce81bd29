"""coordinator.ratelimit: exact verdicts of the in-memory limits."""

from __future__ import annotations

from coordinator.ratelimit import MinInterval, TokenBucket, Verdict


def test_min_interval_allows_one_event_per_interval_and_refusals_do_not_reset() -> None:
    limit = MinInterval(2.0)
    assert limit.attempt("a", 10.0) == Verdict(True, 0.0)
    assert limit.attempt("a", 11.5) == Verdict(False, 0.5)
    assert limit.attempt("b", 11.5) == Verdict(True, 0.0)
    assert limit.attempt("a", 12.0) == Verdict(True, 0.0)


def test_min_interval_forgets_least_recent_keys_past_its_size() -> None:
    limit = MinInterval(100.0, max_keys=2)
    for key in ("a", "b", "c"):
        limit.attempt(key, 0.0)
    assert limit.attempt("a", 1.0).allowed  # forgotten
    assert not limit.attempt("c", 1.0).allowed


def test_token_bucket_bursts_then_refills() -> None:
    bucket = TokenBucket(2, 60.0)  # one a second
    assert [bucket.attempt("ip", 0.0).allowed for _ in range(3)] == [True, True, False]
    assert bucket.attempt("ip", 0.5) == Verdict(False, 0.5)
    assert bucket.attempt("ip", 1.0).allowed
    assert bucket.attempt("other", 1.0).allowed
