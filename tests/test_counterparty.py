"""1C's counterparties: the buyer found by TIN, else e-mail, created when asked, remembered, never twice.

In-process order jobs against the 1C emulator over real HTTP and a real redis-server; the race between two
real worker processes and a maintenance lock during the lookup are in tests/faults/test_counterparty_faults.py.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry

from bridge import runtime
from bridge.mappings import DEFAULTS_DIR, MappingError, describe, load_mappings
from bridge.onec.answers import Outcome
from bridge.onec.client import OnecClient
from bridge.orders.job import queue_order, sync_order
from bridge.queue import ORDERS_QUEUE
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.worker import build_worker
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator

TIN = "7712345678"
EMAIL = "Buyer@Example.ru"


def counterparty_mappings(folder: Path, mode: str) -> Path:
    """The packaged mappings with ``[counterparty] mode`` set."""
    shutil.copytree(DEFAULTS_DIR, folder)
    order = folder / "order.toml"
    text = order.read_text(encoding="utf-8")
    assert 'mode = "off"' in text
    order.write_text(text.replace('mode = "off"', f'mode = "{mode}"'), encoding="utf-8")
    return folder


def make_runtime(redis_url: str, shop: Any, onec: Any, mappings: Path, **overrides: Any) -> Runtime:
    options: dict[str, Any] = {
        "redis_url": redis_url,
        "shop_url": shop.url,
        "onec_url": onec.url,
        "onec_user": onec.user,
        "onec_password": onec.password,
        "mappings_dir": mappings,
        "retry_min_delay": 5,
        "retry_max_delay": 60,
    }
    options.update(overrides)
    return Runtime.from_settings(Settings(**options), Redis.from_url(redis_url))


@pytest.fixture
def installed() -> Iterator[list[Runtime]]:
    """Install the runtime a test builds (``installed.append``) and uninstall it afterwards."""
    holder: list[Runtime] = []
    yield holder
    runtime.install(None)


def install(
    installed: list[Runtime], tmp_path: Path, redis_url: str, shop: Any, onec: Any, mode: str, **overrides: Any
) -> Runtime:
    mappings = counterparty_mappings(tmp_path / f"mappings-{len(installed)}", mode)
    rt = make_runtime(redis_url, shop, onec, mappings, **overrides)
    installed.append(rt)
    runtime.install(rt)
    return rt


def buyer_order(shop: ShopEmulator, *, tin: str = "", email: str = EMAIL, name: str = "ООО Ромашка") -> dict[str, Any]:
    return shop.add_order(properties={"INN": tin, "EMAIL": email, "COMPANY": name})


def sent(onec: OnecEmulator, order: dict[str, Any]) -> dict[str, Any]:
    document = onec.documents[order["accountNumber"]]["Counterparty"]
    assert isinstance(document, dict)
    return document


def make_due(rt: Runtime) -> None:
    """As if the circuit's next probe were due now (the test does not sleep out the back-off)."""
    rt.redis.hset("bridge:onec:circuit", "retry_at", repr(time.time() - 1))


# --- finding -------------------------------------------------------------------------------------------


def test_off_by_default_asks_1c_nothing(
    redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    rt = make_runtime(redis_url, shop, onec, DEFAULTS_DIR)
    installed.append(rt)
    runtime.install(rt)
    assert rt.mappings.counterparty_mode == "off"
    order = buyer_order(shop, tin=TIN)
    assert sync_order(str(order["id"])) == "delivered"
    assert onec.counterparty_calls == []
    assert "Id" not in sent(onec, order)


def test_found_by_tin(tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]) -> None:
    install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    ref = onec.add_counterparty(tin=TIN, email="other@example.ru")
    order = buyer_order(shop, tin="77 1234 5678", email=EMAIL)  # typed with spaces
    assert sync_order(str(order["id"])) == "delivered"
    assert sent(onec, order)["Id"] == ref
    assert sent(onec, order)["TIN"] == "77 1234 5678"  # the document keeps what the buyer typed
    (call,) = onec.counterparty_calls
    assert (call["method"], call["params"], call["outcome"]) == ("GET", {"tin": TIN, "email": EMAIL}, "found")


def test_found_by_email_when_the_order_has_no_tin(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    install(installed, tmp_path, redis_url, shop, onec, "find")
    ref = onec.add_counterparty(email="buyer@example.ru")
    order = buyer_order(shop, email=EMAIL)
    assert sync_order(str(order["id"])) == "delivered"
    assert sent(onec, order)["Id"] == ref
    assert [c["params"] for c in onec.counterparty_calls] == [{"email": EMAIL}]


def test_not_found_is_created_from_the_documents_block(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    order = buyer_order(shop, tin=TIN)
    assert sync_order(str(order["id"])) == "delivered"
    assert onec.counterparty_outcomes() == ["GET not_found", "POST created"]
    (ref,) = onec.counterparties
    assert sent(onec, order)["Id"] == ref
    block = onec.counterparty_calls[1]["block"]
    assert block == {"TIN": TIN, "Name": "ООО Ромашка", "Email": EMAIL, "Phone": "+7 900 123-45-67"}


def test_not_found_with_find_goes_without_id_and_looks_again_next_time(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    install(installed, tmp_path, redis_url, shop, onec, "find")
    first = buyer_order(shop, tin=TIN)
    assert sync_order(str(first["id"])) == "delivered"
    assert "Id" not in sent(onec, first)
    assert onec.counterparties == {}  # "find" never creates
    ref = onec.add_counterparty(tin=TIN)  # a manager entered the buyer in 1C
    second = buyer_order(shop, tin=TIN)
    assert sync_order(str(second["id"])) == "delivered"
    assert sent(onec, second)["Id"] == ref
    assert onec.counterparty_outcomes() == ["GET not_found", "GET found"]


def test_an_order_without_tin_and_email_goes_without_id_and_without_a_lookup(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    order = buyer_order(shop, email="")
    assert sync_order(str(order["id"])) == "delivered"
    assert onec.counterparty_calls == []
    assert "Id" not in sent(onec, order)


def test_a_buyer_is_looked_up_once_and_remembered(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    rt = install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    orders = [buyer_order(shop, email="buyer@example.ru"), buyer_order(shop, email="BUYER@example.ru ")]
    for order in orders:
        assert sync_order(str(order["id"])) == "delivered"
    assert onec.counterparty_outcomes() == ["GET not_found", "POST created"]  # no second lookup
    (ref,) = onec.counterparties
    assert [sent(onec, order)["Id"] for order in orders] == [ref, ref]
    assert rt.redis.get("bridge:counterparty:email:buyer@example.ru") == ref.encode()
    assert 0 < rt.redis.ttl("bridge:counterparty:email:buyer@example.ru") <= 30 * 24 * 3600


def test_two_orders_of_one_new_buyer_at_once_create_it_once(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    onec.slow_lookups(0.3)  # both orders are well inside the lookup at the same time
    orders = [buyer_order(shop, tin=TIN) for _ in range(2)]
    results: list[str] = []
    start = threading.Barrier(2)

    def run(order: dict[str, Any]) -> None:
        start.wait()
        results.append(sync_order(str(order["id"])))

    threads = [threading.Thread(target=run, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["delivered", "delivered"]
    assert onec.counterparty_creations() == 1
    assert onec.counterparty_outcomes() == ["GET not_found", "POST created"]  # the second found the first's id
    (ref,) = onec.counterparties
    assert [sent(onec, order)["Id"] for order in orders] == [ref, ref]


# --- 1C's answers ----------------------------------------------------------------------------------------


def test_1c_locked_during_the_lookup_opens_the_circuit_and_the_order_goes_later(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    rt = install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    onec.lock("Ведутся технические работы")
    order = buyer_order(shop, tin=TIN)
    assert sync_order(str(order["id"])) == "retry (unavailable)"
    assert rt.circuit.state().is_open
    assert "Начало сеанса" in (rt.circuit.state().reason or "")
    assert onec.counterparty_outcomes() == ["GET locked"]
    assert onec.calls == []  # the order itself did not knock
    assert sync_order(str(order["id"])) == "retry (unavailable)"  # no probe due: 1C is not asked again
    assert onec.counterparty_outcomes() == ["GET locked"]
    onec.unlock()
    make_due(rt)
    assert sync_order(str(order["id"])) == "delivered"
    assert not rt.circuit.state().is_open
    assert onec.counterparty_outcomes() == ["GET locked", "GET not_found", "POST created"]
    assert sent(onec, order)["Id"] in onec.counterparties


def test_a_lookup_that_times_out_is_retried(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    rt = install(installed, tmp_path, redis_url, shop, onec, "find_or_create", onec_timeout=0.5)
    ref = onec.add_counterparty(tin=TIN)
    onec.slow_lookups(2.0)
    order = buyer_order(shop, tin=TIN)
    assert sync_order(str(order["id"])) == "retry (unavailable)"
    assert "Timeout" in (rt.circuit.state().reason or "")
    assert onec.calls == []
    onec.slow_lookups(0)
    make_due(rt)
    assert sync_order(str(order["id"])) == "delivered"
    assert sent(onec, order)["Id"] == ref
    assert onec.counterparty_creations() == 0  # a slow lookup is not "none": nothing was created


def test_a_lock_conflict_during_the_lookup_is_busy_not_an_outage(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    rt = install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    onec.busy_every = 1
    order = buyer_order(shop, tin=TIN)
    assert sync_order(str(order["id"])) == "retry (busy)"
    assert not rt.circuit.state().is_open
    onec.busy_every = 0
    assert sync_order(str(order["id"])) == "delivered"


def test_a_refused_creation_is_a_dead_letter_with_1cs_words(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    rt = install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    onec.refuse_creation(422, "Контрагент не записан: ИНН 7712345678 указан неверно")
    order = buyer_order(shop, tin=TIN)
    queue_order(rt, str(order["id"]))
    build_worker(rt.settings, rt.redis, simple=True).work(burst=True)
    failed = FailedJobRegistry(ORDERS_QUEUE, connection=rt.redis)
    assert failed.count == 1
    reason = Job.fetch(failed.get_job_ids()[0], connection=rt.redis).exc_info or ""
    assert f"1C refused to create the counterparty of order {order['accountNumber']}" in reason
    assert "HTTP 422: Контрагент не записан: ИНН 7712345678 указан неверно" in reason
    assert onec.calls == []  # the order was not sent without the counterparty it needed
    assert rt.redis.keys("bridge:order:pending:*") == []
    assert rt.redis.keys("bridge:lock:counterparty:*") == []


def test_created_elsewhere_between_lookup_and_creation_uses_1cs_id(
    tmp_path: Path, redis_url: str, shop: Any, onec: OnecEmulator, installed: list[Runtime]
) -> None:
    install(installed, tmp_path, redis_url, shop, onec, "find_or_create")
    order = buyer_order(shop, tin=TIN)
    original = onec.answer_counterparty

    def manager_was_faster(sequence: int, method: str, *args: Any) -> Any:
        if method == "POST" and not onec.counterparties:
            onec.add_counterparty(tin=TIN)
        return original(sequence, method, *args)

    onec.answer_counterparty = manager_was_faster  # type: ignore[method-assign]
    assert sync_order(str(order["id"])) == "delivered"
    assert onec.counterparty_outcomes() == ["GET not_found", "POST exists"]
    (ref,) = onec.counterparties
    assert sent(onec, order)["Id"] == ref


# --- the client and the mappings ------------------------------------------------------------------------


def test_the_client_asks_with_the_parameters_it_has_and_reads_404_as_none(redis_url: str) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        requests.append(request)
        if request.method == "GET":
            return httpx.Response(404, json={"message": "Контрагент не найден"})
        return httpx.Response(201, json={"id": 42})

    base = "https://1c.example/Base/hs/exchange/"
    with OnecClient(
        base, user="u", password="p", redis=Redis.from_url(redis_url), transport=httpx.MockTransport(handler)
    ) as client:
        missing = client.find_counterparty(tin=None, email="a@example.ru")
        made = client.create_counterparty({"TIN": None, "Name": "Иванов"})
    assert (missing.answer.outcome, missing.answer.status, missing.ref) == (Outcome.DELIVERED, 404, None)
    assert (made.answer.outcome, made.ref) == (Outcome.DELIVERED, "42")
    get, post = requests
    assert str(get.url) == base + "counterparties?email=a%40example.ru"
    assert (post.method, str(post.url)) == ("POST", base + "counterparties")
    assert post.content == '{"TIN": null, "Name": "Иванов"}'.encode()


def test_the_mode_is_checked_and_described(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "order.toml").write_text('[counterparty]\nmode = "create"\n', encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_mappings(folder)
    assert 'counterparty.mode must be one of "off", "find", "find_or_create", got "create"' in str(raised.value)
    lines = describe(load_mappings(counterparty_mappings(tmp_path / "good", "find_or_create")))
    assert (
        "counterparties: found in 1C by TIN, else e-mail (the id remembered), and created in 1C when it has none"
        in lines
    )
