"""The 1C circuit: opens on UNAVAILABLE, lets exactly one prober through when due, doubles, closes on any answer.

Time is a fake clock shared by all Circuit objects (each object stands for one worker process), so the
doubling is checked exactly; the one-prober race runs against a real redis-server with real threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import fakeredis
import pytest
import redis

from bridge import keys
from bridge.onec.answers import Answer, Outcome
from bridge.onec.circuit import Circuit

T0 = 1_700_000_000.0
DOWN = Answer(Outcome.UNAVAILABLE, 403, "HTTP 403: Начало сеанса с информационной базой запрещено.", "")
TIMEOUT = Answer(Outcome.UNAVAILABLE, None, "no answer from 1C: ReadTimeout: timed out", "")
OK = Answer(Outcome.DELIVERED, 201, "HTTP 201: created", "")


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def circuit(client: redis.Redis, clock: Clock, **kwargs: float) -> Circuit:
    return Circuit(client, min_delay=5, max_delay=60, clock=clock, **kwargs)


def test_starts_closed_and_allows(client: redis.Redis, clock: Clock) -> None:
    c = circuit(client, clock)
    assert c.state().state == "closed"
    assert c.allow() and c.allow()
    assert c.retry_in() == 0


def test_unavailable_opens_with_the_peers_words(client: redis.Redis, clock: Clock) -> None:
    c = circuit(client, clock)
    assert c.record(DOWN) is False
    state = c.state()
    assert state.state == "open"
    assert state.reason == DOWN.reason
    assert state.retry_at == pytest.approx(T0 + 5, abs=0.001)
    assert datetime.fromisoformat(state.since).timestamp() == pytest.approx(T0, abs=1)
    assert state.since.endswith("+00:00")
    assert c.allow() is False
    assert c.retry_in() == pytest.approx(5, abs=0.001)
    # The hash is what /readyz reads.
    stored = client.hgetall(keys.ONEC_CIRCUIT)
    assert stored[b"state"] == b"open"
    assert stored[b"reason"].decode() == DOWN.reason


def test_failed_probes_double_the_delay_up_to_the_maximum(client: redis.Redis, clock: Clock) -> None:
    c = circuit(client, clock)
    c.record(DOWN)
    delays = []
    for _ in range(6):
        clock.now = c.state().retry_at  # the probe is due
        assert c.allow() is True
        c.record(TIMEOUT)
        delays.append(round(c.state().retry_at - clock.now, 3))
    assert delays == [10, 20, 40, 60, 60, 60]
    assert c.state().reason == TIMEOUT.reason
    assert datetime.fromisoformat(c.state().since).timestamp() == pytest.approx(T0, abs=1)  # since stays


def test_calls_already_in_flight_do_not_push_the_probe_out(client: redis.Redis, clock: Clock) -> None:
    c = circuit(client, clock)
    c.record(DOWN)
    clock.now += 2  # a call started before the circuit opened fails too
    c.record(TIMEOUT)
    assert c.state().retry_at == pytest.approx(T0 + 5, abs=0.001)


def test_only_one_caller_gets_the_due_probe(client: redis.Redis, clock: Clock) -> None:
    workers = [circuit(client, clock) for _ in range(5)]
    workers[0].record(DOWN)
    clock.now = T0 + 4.9
    assert [w.allow() for w in workers] == [False] * 5
    clock.now = T0 + 5
    assert sorted(w.allow() for w in workers) == [False, False, False, False, True]
    assert client.exists(keys.ONEC_PROBE)
    assert workers[3].retry_in() == 0  # due, though someone else is probing


def test_a_dead_probers_probe_expires(client: redis.Redis, clock: Clock) -> None:
    c = circuit(client, clock, probe_ttl=0.2)
    c.record(DOWN)
    clock.now = T0 + 5
    assert c.allow() is True
    assert c.allow() is False
    assert 0 < client.pttl(keys.ONEC_PROBE) <= 200  # the prober "dies" here and never records
    _wait_until_gone(client, keys.ONEC_PROBE)
    assert c.allow() is True


@pytest.mark.parametrize("outcome", [Outcome.DELIVERED, Outcome.PERMANENT, Outcome.BUSY])
def test_any_answer_closes_an_open_circuit(client: redis.Redis, clock: Clock, outcome: Outcome) -> None:
    c = circuit(client, clock)
    c.record(DOWN)
    clock.now = T0 + 5
    assert c.allow()
    assert c.record(Answer(outcome, 200, "x", "")) is True
    assert c.state().state == "closed"
    assert c.state().reason is None
    assert not client.exists(keys.ONEC_PROBE)
    assert c.allow()
    assert c.record(OK) is False  # already closed: nothing to bring forward


def test_reopening_starts_from_the_minimum_delay(client: redis.Redis, clock: Clock) -> None:
    c = circuit(client, clock)
    c.record(DOWN)
    for _ in range(3):
        clock.now = c.state().retry_at
        c.allow()
        c.record(DOWN)
    c.record(OK)
    clock.now += 100
    c.record(DOWN)
    assert c.state().retry_at == pytest.approx(clock.now + 5, abs=0.001)


def test_record_unavailable_releases_the_probe(client: redis.Redis, clock: Clock) -> None:
    c = circuit(client, clock)
    c.record(DOWN)
    clock.now = T0 + 5
    assert c.allow()
    c.record(DOWN)
    assert not client.exists(keys.ONEC_PROBE)


# --- against a real redis-server, with real threads ---------------------------------------------------


@pytest.fixture(scope="module")
def _own_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.peers.redis_server import RedisServer

    with RedisServer(Path(tmp_path_factory.mktemp("redis-circuit"))) as server:
        yield server.url


@pytest.fixture
def real_client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    try:
        url = str(request.getfixturevalue("redis_url"))
    except pytest.FixtureLookupError:
        url = str(request.getfixturevalue("_own_redis_server"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_one_prober_among_racing_threads_on_real_redis(real_client: redis.Redis) -> None:
    clock = Clock()
    circuit(real_client, clock).record(DOWN)
    clock.now = T0 + 5
    start = threading.Barrier(12)
    results: list[bool] = []
    guard = threading.Lock()

    def worker() -> None:
        mine = circuit(real_client, clock)  # one Circuit per "process"
        start.wait()
        allowed = mine.allow()
        with guard:
            results.append(allowed)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert len(results) == 12


def test_open_and_close_on_real_redis(real_client: redis.Redis) -> None:
    clock = Clock()
    c = circuit(real_client, clock)
    c.record(DOWN)
    clock.now = T0 + 5
    assert c.allow()
    c.record(TIMEOUT)
    assert c.state().retry_at == pytest.approx(T0 + 15, abs=0.001)
    clock.now = T0 + 15
    assert c.allow()
    assert c.record(OK) is True
    assert c.state().state == "closed"


def _wait_until_gone(client: redis.Redis, key: str) -> None:
    for _ in range(1000):
        if not client.exists(key):
            return
        threading.Event().wait(0.001)
    raise AssertionError(f"{key} did not expire")
