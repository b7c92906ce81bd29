"""Two ``fedkeys serve`` on two hosts (network namespaces) sharing one PostgreSQL, devices spread over both.

Issue 15 point 5. Each coordinator runs in a namespace of its own and reaches
PostgreSQL (127.0.0.1 in the root namespace) through a TCP relay on its
link's root-side address; the test plays the devices from the root namespace,
alternating between the hosts as a load balancer would. Exactly the target is
assigned and exactly the goal accepted, the committed model is the weighted
mean, pace steering sees the check-ins of both processes, and kill -9 of one
host's coordinator mid-round loses nothing: the committed model is unchanged
and the other host finishes the round with every accepted update.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from coordinator_fixtures import (
    PG_ADMIN_URL,
    SHAPES,
    PostgresSchema,
    Server,
    admin_headers,
    checkin_body,
    create_task,
    free_port,
    initial_weights,
    postgres_available,
)
from netns_hosts import netns_hosts, netns_unavailable, tcp_forward

from wire.update import decode_weights, encode_update

_NETNS = netns_unavailable()
pytestmark = [
    pytest.mark.skipif(_NETNS is not None, reason=f"no network namespaces to stand in for hosts: {_NETNS}"),
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL at 127.0.0.1:5432 is not reachable"),
    pytest.mark.skipif(shutil.which("socat") is None, reason="socat (the relay to PostgreSQL) is not installed"),
]

GOAL, TARGET, SELECTION_SECONDS = 20, 30, 120


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Server, Server, str]]:
    """(coordinator on host A, coordinator on host B, the schema's root-namespace URL)."""
    with PostgresSchema() as schema, netns_hosts(2) as hosts:
        relay = free_port()
        with tcp_forward([(h.gateway, relay) for h in hosts], ("127.0.0.1", 5432)):
            servers = []
            try:
                for host in hosts:  # one after the other: the first creates the tables
                    url = schema.url.replace("127.0.0.1:5432", f"{host.gateway}:{relay}")
                    workdir = tmp_path / host.name
                    workdir.mkdir()
                    server = Server(url, workdir, workers=1, host=host.address, prefix=tuple(host.command([])))
                    servers.append(server.start())
                yield servers[0], servers[1], schema.url
            finally:
                for server in servers:
                    server.stop()


def _delta(i: int) -> list[np.ndarray]:
    rng = np.random.default_rng([15, i])
    return [(0.1 * rng.normal(size=s)).astype(np.float32) for s in SHAPES]


def _checkin(url: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/populations/keyboard/checkin", json=checkin_body(httpx, base=url), timeout=60)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _upload(url: str, a: dict[str, Any], i: int) -> int:
    blob = encode_update(
        _delta(i), codec=a["codec"], round=a["round"], base_version=a["model_version"], weight=1.0 + i % 5,
        seed=a["seed"],
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {a['upload_token']}"}
    r = httpx.put(f"{url}/v1/sessions/{a['session_id']}/update", content=blob, headers=headers, timeout=60)
    return r.status_code


def _spread_checkins(urls: list[str], n: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` concurrent check-ins, alternating hosts; (host url, answer) of each."""
    targets = list(itertools.islice(itertools.cycle(urls), n))
    with ThreadPoolExecutor(max_workers=24) as pool:
        return list(zip(targets, pool.map(_checkin, targets), strict=True))


def _mean_model(base: list[np.ndarray], accepted: list[int]) -> list[np.ndarray]:
    total = sum(1.0 + i % 5 for i in accepted)
    out = []
    for t, w0 in enumerate(base):
        weighted = sum((1.0 + i % 5) * _delta(i)[t].astype(np.float64) for i in accepted)
        out.append((w0.astype(np.float64) + weighted / total).astype(np.float32))
    return out


def _model(url: str, version: int) -> bytes:
    with httpx.Client(base_url=url, headers=admin_headers(), timeout=60) as admin:
        r = admin.get(f"/v1/admin/populations/keyboard/models/{version}")
        r.raise_for_status()
        return r.content


def _round(url: str, number: int) -> dict[str, Any]:
    with httpx.Client(base_url=url, headers=admin_headers(), timeout=60) as admin:
        rounds: list[dict[str, Any]] = admin.get("/v1/admin/populations/keyboard/rounds").json()
    return next(r for r in rounds if r["round"] == number)


def _wait_round(url: str, number: int, done: Callable[[dict[str, Any]], bool], seconds: float = 90.0) -> dict[str, Any]:
    """The round's record once ``done`` holds (commits and lease expiries run on the round clock's ticks)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            r = _round(url, number)
        except StopIteration:
            r = {}
        if r and done(r):
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"round {number} is {r.get('state')!r} after {seconds:.0f} s")
        time.sleep(0.5)


def _arrivals(schema_url: str) -> tuple[int, int]:
    """(check-ins shared in fk_arrivals, processes that shared them), read directly from PostgreSQL."""
    search_path = schema_url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_ADMIN_URL) as conn:
        sql = f'SELECT COALESCE(SUM(count), 0), COUNT(DISTINCT process) FROM "{search_path}".fk_arrivals'
        total, processes = conn.execute(sql).fetchall()[0]
    return int(total), int(processes)


def test_two_hosts_one_postgres_exact_target_goal_and_weighted_mean(two_hosts: tuple[Server, Server, str]) -> None:
    a, b, schema_url = two_hosts
    urls = [a.url, b.url]
    with httpx.Client(base_url=a.url, timeout=60) as client:
        create_task(client, goal_count=GOAL, over_selection=TARGET / GOAL, selection_seconds=SELECTION_SECONDS,
                    report_seconds=600)  # fmt: skip
    answers = _spread_checkins(urls, 80)
    assigned = [(url, r["assignment"]) for url, r in answers if r["outcome"] == "accepted"]
    assert len(assigned) == TARGET  # never more, though two processes on two hosts assign at once
    assert {url for url, _ in assigned} == set(urls)  # both hosts assigned some
    assert {r["reason"] for _, r in answers if r["outcome"] == "rejected"} == {"round_full"}

    # pace steering sees the population: after a second every process has shared its counts
    time.sleep(1.1)
    _checkin(a.url)
    last = _checkin(b.url)
    assert _arrivals(schema_url) == (82, 2)
    window = last["retry_window"]
    demand = TARGET / SELECTION_SECONDS
    assert window["max_seconds"] - window["min_seconds"] == pytest.approx(SELECTION_SECONDS * (82 / 60) / demand)

    # uploads go to either host (the load balancer need not be sticky)
    index = {x["session_id"]: i for i, (_, x) in enumerate(assigned)}
    jobs = [(urls[(i + 1) % 2], x) for i, (_, x) in enumerate(assigned)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(lambda job: _upload(job[0], job[1], index[job[1]["session_id"]]), jobs))
    accepted = [index[x["session_id"]] for (_, x), code in zip(jobs, codes, strict=True) if code == 200]
    assert len(accepted) == GOAL and sorted(set(codes)) == [200, 409]
    r0 = _wait_round(b.url, 0, lambda r: r["state"] == "committed")  # the claiming host gathers both partials
    assert (r0["assigned"], r0["received"], r0["state"]) == (TARGET, GOAL, "committed")
    got = decode_weights(_model(b.url, 1))
    for w, want in zip(got, _mean_model(initial_weights(), accepted), strict=True):
        np.testing.assert_allclose(w, want, rtol=0, atol=1e-6)

    # round 1: half the goal reaches host A, then A is killed -9. The open round's sum lives in the processes'
    # memory (nothing on disk may differ by one update), so A's half is gone: the round is abandoned after the
    # lease, never committed short or wrong, and nothing committed is lost.
    committed_v1 = _model(a.url, 1)
    round1 = [(url, r["assignment"]) for url, r in _spread_checkins(urls, 40) if r["outcome"] == "accepted"]
    assert len(round1) == TARGET and {x["round"] for _, x in round1} == {1}
    first = [_upload(a.url, x, 100 + i) for i, (_, x) in enumerate(round1[: GOAL // 2])]
    assert first == [200] * (GOAL // 2)
    a.kill()
    rest = [_upload(b.url, x, 100 + i) for i, (_, x) in enumerate(round1) if i >= GOAL // 2]
    assert rest.count(200) == GOAL - GOAL // 2
    r1 = _wait_round(b.url, 1, lambda r: r["state"] in ("committed", "abandoned"))
    assert r1["state"] == "abandoned"
    assert _model(b.url, 1) == committed_v1  # byte for byte

    # round 2 on the surviving host commits its own exact mean on top of v1
    round2 = [(url, r["assignment"]) for url, r in _spread_checkins([b.url], 40) if r["outcome"] == "accepted"]
    assert {x["round"] for _, x in round2} == {2}
    codes2 = [_upload(b.url, x, 200 + i) for i, (_, x) in enumerate(round2)]
    accepted2 = [200 + i for i, code in enumerate(codes2) if code == 200]
    assert len(accepted2) == GOAL
    assert _wait_round(b.url, 2, lambda r: r["state"] == "committed")["received"] == GOAL
    for w, want in zip(decode_weights(_model(b.url, 2)), _mean_model(got, accepted2), strict=True):
        np.testing.assert_allclose(w, want, rtol=0, atol=1e-6)
