"""``bridge serve``: the one-command start, on its embedded in-memory Redis, does the whole order flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers.server import free_port
from tests.processes import BridgeProcess, bridge_env, wait_for, wait_http

pytestmark = pytest.mark.slow


def test_serve_runs_web_worker_and_clock_on_in_memory_redis(shop: Any, onec: Any, tmp_path: Path) -> None:
    port = free_port()
    env = bridge_env(shop, onec, port, BRIDGE_POLL_INTERVAL="1", BRIDGE_INBOUND_TOKEN="serve-t0ken")
    shop.add_product(product_id=101, xml_id="guid-chair", article="ART-CHAIR")
    shop.add_store(store_id=1, title="Main")
    serve = BridgeProcess(["serve"], env, tmp_path, "serve")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", serve)
        # 1C → shop: a push stored whole, split and flushed by the in-process worker.
        items = [{"xml_id": "guid-chair", "store_id": 1, "amount": n} for n in (3, 9)]
        pushed = httpx.post(
            f"http://127.0.0.1:{port}/1c/stock", json={"items": items}, headers={"X-Api-Token": "serve-t0ken"}
        )
        assert pushed.status_code == 202, pushed.text
        wait_for(lambda: shop.amount(101, 1) == 9, what="the pushed stock in the shop")
        by_event = shop.add_order()
        shop.fire_event(f"http://127.0.0.1:{port}/shop/events", "ONSALEORDERSAVED", by_event["id"])
        wait_for(lambda: by_event["accountNumber"] in onec.documents, what="the order sent by webhook")
        # The clock polls too: an order with no webhook at all arrives as well.
        silent = shop.add_order()
        wait_for(lambda: silent["accountNumber"] in onec.documents, what="the order found by polling")
    finally:
        serve.stop()
    output = serve.output()
    assert "in-memory Redis" in output
    assert "LOST" in output
    assert shop.webhook_code not in output


def test_serve_uses_the_real_redis_when_one_is_set(redis_url: str, shop: Any, onec: Any, tmp_path: Path) -> None:
    from redis import Redis

    port = free_port()
    env = bridge_env(shop, onec, port, redis_url)
    serve = BridgeProcess(["serve"], env, tmp_path, "serve")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", serve)
        order = shop.add_order()
        shop.fire_event(f"http://127.0.0.1:{port}/shop/events", "ONSALEORDERSAVED", order["id"])
        wait_for(lambda: order["accountNumber"] in onec.documents, what="the order")
        assert Redis.from_url(redis_url).hget(f"bridge:order:state:{order['id']}", "digest") is not None
    finally:
        serve.stop()
    assert "in-memory Redis" not in serve.output()


def test_the_operators_commands_reach_a_running_serve_on_its_in_memory_redis(
    shop: Any, onec: Any, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from tests.processes import ROOT

    port = free_port()
    env = bridge_env(shop, onec, port, XDG_RUNTIME_DIR=str(tmp_path))
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    cli_env["XDG_RUNTIME_DIR"] = str(tmp_path)

    def bridge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bridge", *args], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60
        )

    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    serve = BridgeProcess(["serve"], env, tmp_path, "serve")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", serve)
        shop.fire_event(f"http://127.0.0.1:{port}/shop/events", "ONSALEORDERSAVED", order["id"])
        wait_for(lambda: "Не заполнено поле Контрагент" in bridge("failed", "list").stdout, what="the dead letter")
        log = bridge("log", "--id", str(order["id"]))
        assert (log.returncode == 0 and "refused" in log.stdout.lower()) or "422" in log.stdout, log
        state = (tmp_path / "bridge" / "serve.json").read_text()
        assert "redis://127.0.0.1:" in state
    finally:
        serve.stop()
    assert serve.proc.returncode == 0
    assert not (tmp_path / "bridge" / "serve.json").exists()  # removed at the stop
    after = bridge("failed", "list")
    assert after.returncode == 1 and "no `bridge serve` on an in-memory Redis is running" in after.stderr
