"""``BRIDGE_POLL_START``: where the first poll of ``sale.order.list`` starts, and the forms the setting takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from redis import Redis

from bridge import keys
from bridge.orders import poll_start
from bridge.orders.polling import poll_orders
from bridge.runtime import Runtime
from bridge.settings import Settings
from tests.ops_helpers import emulator_settings

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("0", NOW),
        ("0h", NOW),
        ("90m", NOW - timedelta(minutes=90)),
        ("1h30m", NOW - timedelta(minutes=90)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(days=14)),
        (" 45S ", NOW - timedelta(seconds=45)),
        ("2026-12-01T00:00:00+03:00", datetime(2026, 11, 30, 21, 0, tzinfo=UTC)),
        ("2026-12-01T05:00:00", datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),  # no offset: UTC
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T05:00:00Z", datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
    ],
)
def test_each_form_names_the_first_polls_start(text: str, since: datetime) -> None:
    assert poll_start.first_since(Settings(poll_start=text).poll_start, NOW) == since


def test_the_default_is_a_day_back_as_before() -> None:
    assert poll_start.first_since(Settings().poll_start, NOW) == NOW - timedelta(hours=24)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("yesterday", "must be a duration such as 24h, 90m, 7d or 0, or an ISO date-time"),
        ("24 h", "must be a duration"),
        ("-1h", "must be a duration"),
        ("1.5h", "must be a duration"),
        ("", "must be a duration"),
        ("2026-13-01", "must be a duration"),
        ("99999w", "more than ten years"),
    ],
)
def test_a_bad_value_is_refused_in_plain_words(text: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(poll_start=text)
    (error,) = caught.value.errors()
    assert error["loc"] == ("poll_start",)
    assert words in error["msg"]


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def orders_at(shop: Any, *ages: timedelta) -> list[dict[str, Any]]:
    """Orders last changed the given time ago, by the shop's clock."""
    real = shop.clock
    made = []
    try:
        for age in ages:
            moment = real() - age
            shop.clock = lambda moment=moment: moment
            made.append(shop.add_order())
    finally:
        shop.clock = real
    return made


def test_a_look_back_sends_only_the_orders_changed_within_it(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    orders_at(shop, timedelta(hours=3), timedelta(hours=1))
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec, poll_start="2h"), redis)
    assert poll_orders(rt) == 1


def test_a_date_time_sends_only_the_orders_changed_since(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    orders_at(shop, timedelta(days=3), timedelta(days=2), timedelta(hours=5))
    start = (datetime.now(UTC) - timedelta(days=2, hours=12)).isoformat()
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec, poll_start=start), redis)
    assert poll_orders(rt) == 2


def test_zero_sends_nothing_old_and_keeps_its_start_for_the_next_poll(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    orders_at(shop, timedelta(hours=1), timedelta(minutes=10))  # older than the polls' 2-minute overlap
    before = datetime.now(UTC).replace(microsecond=0)
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec, poll_start="0"), redis)
    assert poll_orders(rt) == 0
    # The start is kept as the watermark: the next poll starts there, not at its own "now", so an order
    # changed between two polls is not missed.
    watermark = redis.get(keys.POLL_WATERMARK)
    assert watermark is not None
    assert before <= datetime.fromisoformat(watermark.decode()) <= datetime.now(UTC)
    orders_at(shop, -timedelta(seconds=30))  # changed after the first poll
    assert poll_orders(rt) == 1
    assert shop.count("sale.order.list") == 2


def test_the_setting_only_decides_the_first_poll(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    orders_at(shop, timedelta(hours=3))
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec), redis)
    assert poll_orders(rt) == 1  # the default day back
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec, poll_start="2026-01-01"), redis)
    orders_at(shop, timedelta(days=30))  # changed long before the watermark
    assert poll_orders(rt) == 0
