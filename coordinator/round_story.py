"""One sentence that says what happened in a round, from its record alone.

A report that only says "goal not reached in time" leaves the reader to dig
through logs; the round record already holds the cause. :func:`explain_round`
turns a :class:`wire.protocol.RoundInfo` into e.g. ``round 4 took 120 of 146
s: 7 of 13 assigned devices aborted (ineligible: 7); goal 10 not reached
before the report deadline (3 received)``. Pure: the status page and the
demo report both call it.
"""

from __future__ import annotations

from collections.abc import Mapping

from wire.protocol import RoundInfo


def explain_round(
    info: RoundInfo,
    *,
    span_seconds: float | None = None,
    abort_reasons: Mapping[str, int] | None = None,
    now: float | None = None,
) -> str:
    """What round ``info`` did and, when it did not commit, why.

    ``span_seconds`` (the whole run's length) puts the round's duration in
    proportion; ``abort_reasons`` (reason -> devices, when known) names why
    devices gave up; ``now`` dates a round that is still open.
    """
    parts = [_duration(info, span_seconds, now)]
    if info.aborted:
        reasons = f" ({_counts(abort_reasons)})" if abort_reasons else ""
        parts.append(f"{info.aborted} of {info.assigned} assigned devices aborted{reasons}")
    rejected = sum(info.rejections.values())
    if rejected:
        parts.append(f"{rejected} upload{'s' if rejected != 1 else ''} rejected ({_counts(info.rejections)})")
    parts.append(_outcome(info))
    return f"{parts[0]}: " + "; ".join(parts[1:])


def _duration(info: RoundInfo, span_seconds: float | None, now: float | None) -> str:
    end = info.closed_unix if info.closed_unix is not None else now
    if end is None:
        return f"round {info.round}"
    took = f"{max(0.0, end - info.opened_unix):.0f}"  # a clock set back (tests) must not read "-695 s"
    verb = "took" if info.closed_unix is not None else "has run"
    of = f" of {span_seconds:.0f}" if span_seconds else ""
    return f"round {info.round} {verb} {took}{of} s"


def _outcome(info: RoundInfo) -> str:
    if info.state == "committed":
        return f"committed {info.received} updates (goal {info.goal}, {info.assigned} assigned)"
    if info.state == "abandoned":
        if info.received >= info.goal:
            return f"abandoned with {info.received} of goal {info.goal} received: the commit checks refused the sum"
        if info.assigned < info.goal:
            devices = f"{info.assigned} device{'s were' if info.assigned != 1 else ' was'}"
            return (
                f"goal {info.goal} not reached before the report deadline: only {devices} "
                f"assigned ({info.received} received)"
            )
        return f"goal {info.goal} not reached before the report deadline ({info.received} received)"
    return f"{info.state}: {info.received} of goal {info.goal} received, {info.assigned} of {info.target} assigned"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
