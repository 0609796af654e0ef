"""The latest accepted value wins across the two intakes: a JSON push waiting in the inbox and an exchange import.

A JSON body is stored whole and split into pending entries by the flush; the exchange import stages its items
at once. A body accepted before the import must not overwrite the import's newer value when the flush splits
it later, and a body accepted after the import must win over it. Real redis-server, the shop emulator over
real HTTP, the flush run by a worker in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from bridge import keys
from bridge.errors import TransientError
from bridge.exchange.catalog_import import apply_file
from bridge.exchange.model import FileKind, Header, Offer, Price, PriceType, Record, Warehouse
from bridge.updates import inbox, pending
from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings

RETAIL = "pt-retail-guid"
MAIN = "wh-main-guid"
CATALOG = f'[stores]\n"{MAIN}" = 1\n[price_types]\n"{RETAIL}" = 1\n'


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    shop.add_product(product_id=101, xml_id="chair")
    shop.add_store(store_id=1, title="Main")
    shop.add_price_type(price_type_id=1, name="Retail")
    current = make_env(redis_url, shop, write_mappings(tmp_path / "mappings", CATALOG))
    yield current
    close_env(current)


def offers(amount: str, price: str) -> list[Record]:
    return [
        Header(FileKind.OFFERS, "2.08", False),
        PriceType(RETAIL, "Розничная", "RUB"),
        Warehouse(MAIN, "Основной склад"),
        Offer(
            "chair",
            digest=f"d-{amount}-{price}",
            prices=(Price(RETAIL, Decimal(price)),),
            stock=((MAIN, Decimal(amount)),),
        ),
    ]


def import_offers(env: UpdatesEnv, amount: str, price: str) -> None:
    apply_file(env.rt, offers(amount, price), batch="s1-1", images=None, progress=lambda _t: None)


def test_a_push_accepted_before_an_import_does_not_overwrite_it(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", [{"xml_id": "chair", "store_id": 1, "amount": 3}])
    env.push(
        "prices",
        [{"xml_id": "chair", "price_type_id": 1, "price": 30, "currency": "RUB", "ts": "2026-12-01T10:00:00Z"}],
    )
    assert inbox.count(env.redis, "stock") == 1  # accepted, not split yet
    import_offers(env, "7", "70")
    env.run_jobs()
    assert shop.amount(101, 1) == 7
    assert shop.price_of(101, 1)["price"] == 70


def test_a_push_accepted_after_an_import_wins_over_it(env: UpdatesEnv, shop: Any) -> None:
    import_offers(env, "7", "70")
    env.push("stock", [{"xml_id": "chair", "store_id": 1, "amount": 9}])
    env.run_jobs()
    assert shop.amount(101, 1) == 9
    import_offers(env, "8", "80")  # a later import wins in turn, even after the push was applied
    env.push("prices", [{"xml_id": "chair", "price_type_id": 1, "price": 90, "currency": "RUB"}])
    env.run_jobs()
    assert shop.amount(101, 1) == 8 and shop.price_of(101, 1)["price"] == 90


def test_an_import_applied_first_is_not_undone_by_an_older_body_split_later(env: UpdatesEnv, shop: Any) -> None:
    """The flush that sends the import's value may have split the inbox already; the older body is split first."""
    env.push("stock", [{"xml_id": "chair", "store_id": 1, "amount": 3}])
    import_offers(env, "7", "70")
    assert inbox.count(env.redis, "stock") == 0  # the import split what was accepted before it
    assert env.redis.hlen(pending.pending_key("stock")) == 1
    env.run_jobs()
    assert shop.amount(101, 1) == 7


def test_the_import_waits_for_a_split_in_progress_and_stages_nothing_meanwhile(
    env: UpdatesEnv, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.push("stock", [{"xml_id": "chair", "store_id": 1, "amount": 3}])
    monkeypatch.setattr(inbox, "SPLIT_WAIT", 0.0)
    other = Redis.from_url(redis_url).lock(keys.UPDATES_SPLIT_LOCK.format(kind="stock"), timeout=60, thread_local=False)
    assert other.acquire(blocking=False)  # another worker splitting the stock inbox
    try:
        with pytest.raises(TransientError, match="being split"):
            import_offers(env, "7", "70")
        assert env.redis.hlen(pending.pending_key("stock")) == 0
        assert inbox.count(env.redis, "stock") == 1
    finally:
        other.release()
    import_offers(env, "7", "70")
    assert inbox.count(env.redis, "stock") == 0
    assert env.pending("stock") == 1
