"""Dead letters: a refused order shows in the failed list in words, and a retry after the fix delivers it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from redis import Redis
from rq import Queue

from bridge.ops import synclog
from bridge.orders.job import pending_key, queue_order
from bridge.queue import CRASH_RETRY, ORDERS_QUEUE, deadletters
from bridge.queue.work import SYNC_ORDER
from bridge.runtime import Runtime
from tests.ops_helpers import emulator_settings, run_jobs


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def refused_order(redis_url: str, redis: Redis, shop: Any, onec: Any) -> tuple[Any, dict[str, Any]]:
    settings = emulator_settings(redis_url, shop, onec)
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    queue_order(Runtime.from_settings(settings, redis), str(order["id"]))
    run_jobs(settings, redis)
    return settings, order


def test_a_refused_order_is_listed_with_what_why_when_and_attempts(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    _settings, order = refused_order(redis_url, redis, shop, onec)
    letters = deadletters.list_failed(redis)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.queue == ORDERS_QUEUE
    assert letter.what == f"order {order['id']} (save)"
    assert letter.why == f"1C refused order {order['accountNumber']}: HTTP 422: Не заполнено поле Контрагент"
    assert letter.attempts == 1
    assert letter.when is not None and abs(letter.when.timestamp() - time.time()) < 60
    assert (letter.entity, letter.entity_id) == ("order", str(order["id"]))
    table = deadletters.format_table(letters)
    assert table[0].split()[:2] == ["ID", "WHAT"]
    assert letter.id in table[1] and "Не заполнено поле Контрагент" in table[1]


def test_retry_after_the_fix_delivers_and_the_log_tells_the_story(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    settings, order = refused_order(redis_url, redis, shop, onec)
    [letter] = deadletters.list_failed(redis)
    onec.accept()
    report = deadletters.retry(redis, [letter.id, "no-such-job"])
    assert [d.id for d in report.requeued] == [letter.id]
    assert report.missing == ["no-such-job"]
    assert deadletters.list_failed(redis) == []
    run_jobs(settings, redis)
    assert order["accountNumber"] in onec.documents
    outcomes = [
        (e.peer, e.operation, e.outcome) for e in synclog.read(redis, entity="order", entity_id=str(order["id"]))
    ]
    assert outcomes[0] == ("bridge", "order.save", "delivered")  # newest first
    assert ("bridge", "retry", "requeued") in outcomes
    assert ("bridge", "order.save", "failed") in outcomes
    assert ("1c", "orders", "permanent") in outcomes
    assert ("shop", "sale.order.get", "ok") in outcomes  # filed under the order through the context


def test_retry_all_takes_every_failed_job_and_a_second_retry_finds_nothing(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    settings = emulator_settings(redis_url, shop, onec)
    onec.reject(400, "Неверный формат документа")
    rt = Runtime.from_settings(settings, redis)
    orders = [shop.add_order() for _ in range(3)]
    for order in orders:
        queue_order(rt, str(order["id"]))
    run_jobs(settings, redis)
    assert deadletters.count(redis) == 3
    report = deadletters.retry_all(redis)
    assert len(report.requeued) == 3 and report.missing == []
    assert deadletters.count(redis) == 0
    assert deadletters.retry(redis, [d.id for d in report.requeued]).missing == [d.id for d in report.requeued]


def test_a_retried_job_starts_a_fresh_retry_window(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    settings = emulator_settings(redis_url, shop, onec)
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    queue = Queue(ORDERS_QUEUE, connection=redis)
    queue.enqueue(SYNC_ORDER, str(order["id"]), "save", attempt=7, first_seen=1.0, failure_ttl=3600)
    run_jobs(settings, redis)
    [letter] = deadletters.list_failed(redis)
    assert letter.attempts == 8
    deadletters.retry(redis, [letter.id])
    from rq.job import Job

    job = Job.fetch(letter.id, connection=redis)
    assert job.kwargs == {}
    assert job.retries_left == CRASH_RETRY.max
    assert list(job.args) == [str(order["id"]), "save"]


@pytest.mark.parametrize(
    ("trace", "expected"),
    [
        (
            'Traceback (most recent call last):\n  File "x.py", line 1\nbridge.errors.PermanentError: 1C refused order 7: HTTP 422: no',
            "1C refused order 7: HTTP 422: no",
        ),
        ("Traceback …\nbridge.shop.errors.ShopPermanentError: ACCESS_DENIED: no rights", "ACCESS_DENIED: no rights"),
        ("Traceback …\nKeyError: 'statusId'", "KeyError: 'statusId'"),
        ("Traceback …\nrq.exceptions.AbandonedJobError", "AbandonedJobError"),
        ("", "no reason recorded"),
        (None, "no reason recorded"),
    ],
)
def test_why_is_the_last_line_in_plain_words(trace: str | None, expected: str) -> None:
    assert deadletters.why(trace) == expected


def test_as_dict_has_an_iso_time() -> None:
    letter = deadletters.DeadLetter("a", "q", "order 1 (save)", "x", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), 1)
    assert letter.as_dict()["when"] == "2026-01-02T03:04:05Z"


def test_an_order_that_gives_up_waiting_leaves_no_marker_behind(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    settings = emulator_settings(redis_url, shop, onec, retry_hours=1e-9)  # the retry window is over at once
    rt = Runtime.from_settings(settings, redis)
    onec.lock("Ведутся технические работы")
    order = shop.add_order()
    queue_order(rt, str(order["id"]))
    run_jobs(settings, redis)
    [letter] = deadletters.list_failed(redis)
    assert letter.why.startswith("gave up after 0.0 h of retries; last failure: 1C did not take order")
    assert redis.get(pending_key(str(order["id"]))) is None
    assert queue_order(rt, str(order["id"])) is True  # a later event is queued, not swallowed by a stale marker


def test_an_order_refused_by_two_jobs_is_one_dead_letter_the_newest(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    # A webhook and a poll may each queue a job for the same order version; both fail for the same reason.
    settings, order = refused_order(redis_url, redis, shop, onec)
    [first] = deadletters.list_failed(redis)
    other = shop.add_order()  # a different order's dead letter must stay
    rt = Runtime.from_settings(settings, redis)
    queue_order(rt, str(other["id"]))
    queue_order(rt, str(order["id"]))
    run_jobs(settings, redis)
    letters = deadletters.list_failed(redis)
    assert sorted(d.entity_id for d in letters) == sorted([str(order["id"]), str(other["id"])])
    [newest] = [d for d in letters if d.entity_id == str(order["id"])]
    assert newest.id != first.id
    assert not redis.exists(f"rq:job:{first.id}")  # the replaced job is gone, not just unlisted


def test_replacing_dead_letters_matches_the_whole_entity_not_a_prefix_of_it(redis: Redis) -> None:
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    registry = FailedJobRegistry(ORDERS_QUEUE, connection=redis)
    ids = ["order-30-aaaaaaaaaaaa", "order-302-bbbbbbbbbbbb", "order-30-cccccccccccc", "flush-stock-dddddddddddd"]
    for job_id in ids:
        job = Job.create(SYNC_ORDER, args=("x",), id=job_id, connection=redis)
        job.save()
        registry.add(job, ttl=600)
    dropped = deadletters.drop_superseded(redis, "order-30-eeeeeeeeeeee")
    assert sorted(dropped) == ["order-30-aaaaaaaaaaaa", "order-30-cccccccccccc"]
    assert sorted(registry.get_job_ids()) == ["flush-stock-dddddddddddd", "order-302-bbbbbbbbbbbb"]
