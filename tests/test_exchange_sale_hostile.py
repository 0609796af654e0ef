"""Hostile input on the order side of 1C's exchange (``type=sale``): the catalogue side's attacks on the XML
reader, calls out of order, forged sessions. Each answers ``failure`` (or is harmless), never a 5xx, and
nothing reaches the shop: after each, the queues are worked and the shop emulator must have had no write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.exchange.sale import offers
from tests.exchange_env import PASSWORD, USER, exchange_env
from tests.peers.onec_exchange_sale import OnecSaleExchange
from tests.test_exchange_hostile import LAUGHS, XXE
from tests.test_exchange_sale_documents import documents_file
from tests.updates_env import UpdatesEnv, close_env


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    current = exchange_env(redis_url, shop, tmp_path)
    yield current
    close_env(current)


@pytest.fixture
def onec(env: UpdatesEnv) -> OnecSaleExchange:
    exchange = OnecSaleExchange(env.client, USER, PASSWORD, on_progress=env.run_jobs)
    exchange.checkauth("sale")
    exchange.init("sale")
    return exchange


def nothing_written(env: UpdatesEnv, shop: Any) -> None:
    env.run_jobs()
    writes = [method for method, _params in shop.commands if method.split(".")[-1] not in ("list", "get")]
    assert writes == []


GOOD = documents_file({"Ид": "g", "Номер": "1", "ХозОперация": "Заказ товара", "requisites": {"Отменен": "true"}})


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (XXE, "DOCTYPE"),
        (LAUGHS, "DOCTYPE"),
        (GOOD[:-40], "строке"),  # cut short: the line is named
        (b"<not-commerceml/>", "корневой"),
        (b"\xff\xfe\x00garbage", ""),
        (b"", ""),
    ],
    ids=["xxe", "billion-laughs", "truncated", "unknown-root", "binary", "empty"],
)
def test_documents_the_reader_refuses_fail_and_change_nothing(
    env: UpdatesEnv, onec: OnecSaleExchange, shop: Any, content: bytes, words: str
) -> None:
    reply = onec.documents("documents___x.xml", content)
    assert reply.readable and reply.status == "failure" and words in reply.message, reply.text
    assert "root:" not in reply.text  # /etc/passwd never echoed
    nothing_written(env, shop)


def test_an_import_of_documents_never_uploaded_fails(env: UpdatesEnv, onec: OnecSaleExchange, shop: Any) -> None:
    reply = onec.call("sale", "import", filename="documents___never.xml")
    assert reply.status == "failure" and "не был загружен" in reply.message
    nothing_written(env, shop)


def test_success_without_query_confirms_nothing(env: UpdatesEnv, onec: OnecSaleExchange, shop: Any) -> None:
    order = shop.add_order()
    offers.note(env.redis, str(order["id"]), offers.stamp_of(order))
    assert onec.success().status == "failure"
    assert offers.waiting_count(env.redis) == 1


@pytest.mark.parametrize("mode", ["query", "success", "info", "file", "import"])
def test_a_forged_cookie_gets_failure(env: UpdatesEnv, onec: OnecSaleExchange, shop: Any, mode: str) -> None:
    order = shop.add_order()
    offers.note(env.redis, str(order["id"]), offers.stamp_of(order))
    onec.cookie = (onec.cookie[0] if onec.cookie else "bridge_exchange", "forged")
    reply = onec.call("sale", mode, filename="d.xml", body=GOOD if mode == "file" else None)
    assert reply.status_code == 200 and reply.status == "failure", reply.text
    assert offers.waiting_count(env.redis) == 1
    nothing_written(env, shop)
