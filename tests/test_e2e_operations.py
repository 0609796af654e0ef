"""End to end, the operations side: polling with two clocks, dead letters through the real CLI, metrics from
web and worker, an alert to a stand-in Telegram, and no secret in any process's output.

Real redis-server, real ``bridge web|worker|clock`` processes, the emulated shop and 1C over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from bridge import keys
from bridge.mappings import DEFAULTS_DIR
from bridge.ops import synclog
from bridge.queue import deadletters
from tests.peers.alert_receivers import AlertReceiver, SmtpServer
from tests.peers.server import free_port, run_app
from tests.processes import ROOT, BridgeProcess, wait_for, wait_http

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "adm1n-t0ken-e2e-secret"
INBOUND_TOKEN = "inb0und-t0ken-e2e-secret"
OLD_APP_TOKEN = "old-app-t0ken-rotated-out"
SMTP_PASSWORD = "smtp-pa55word-e2e-secret"
WEBHOOK_KEY = "alert-hook-k3y-e2e-secret"


@dataclass
class Ops:
    """The bridge's processes for one test, their environment and a Redis client."""

    env: dict[str, str]
    redis: Redis
    log_dir: Path
    url: str
    processes: list[BridgeProcess] = field(default_factory=list)
    cli_output: list[str] = field(default_factory=list)

    def start(self, command: str, name: str | None = None) -> BridgeProcess:
        process = BridgeProcess([command], self.env, self.log_dir, name or command)
        self.processes.append(process)
        if command == "web":
            wait_http(f"{self.url}/healthz", process)
        return process

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``bridge <args>`` as a real subprocess, the way an operator would."""
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("BRIDGE_")} | self.env
        result = subprocess.run(
            [sys.executable, "-m", "bridge", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        self.cli_output.append(result.stdout + result.stderr)
        return result

    def output(self) -> str:
        return "\n".join([*(p.output() for p in self.processes), *self.cli_output])

    def log_ops(self, entity: str, entity_id: str) -> list[tuple[str, str, str]]:
        return [(e.peer, e.operation, e.outcome) for e in synclog.read(self.redis, entity=entity, entity_id=entity_id)]

    def evaluations(self) -> int:
        return int(self.redis.hget(keys.ALERT_CHECKS, "evaluations") or 0)


@pytest.fixture
def ops(redis_url: str, shop: Any, onec: Any, tmp_path: Path) -> Iterator[Ops]:
    port = free_port()
    env = {
        "BRIDGE_REDIS_URL": redis_url,
        "BRIDGE_SHOP_URL": shop.url,
        "BRIDGE_SHOP_APP_TOKENS": f"{OLD_APP_TOKEN},{shop.application_token}",
        "BRIDGE_ONEC_URL": onec.url,
        "BRIDGE_ONEC_USER": onec.user,
        "BRIDGE_ONEC_PASSWORD": onec.password,
        "BRIDGE_INBOUND_TOKEN": INBOUND_TOKEN,
        "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR),
        "BRIDGE_RETRY_MIN_DELAY": "0.2",
        "BRIDGE_RETRY_MAX_DELAY": "1",
        "BRIDGE_POLL_INTERVAL": "0",
        "BRIDGE_MAINTENANCE_INTERVAL": "5",
        "BRIDGE_HOST": "127.0.0.1",
        "PORT": str(port),
    }
    result = Ops(env, Redis.from_url(redis_url), tmp_path, f"http://127.0.0.1:{port}")
    try:
        yield result
    finally:
        for process in result.processes:
            process.stop()
            # pytest shows this only for a failed test: the processes' own account of what happened
            print(f"----- {process.log_path.name} (last lines)\n" + "\n".join(process.output().splitlines()[-60:]))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_polling_alone_brings_an_order_to_1c_and_two_clocks_queue_it_once(ops: Ops, shop: Any, onec: Any) -> None:
    ops.env["BRIDGE_POLL_INTERVAL"] = "1"
    ops.start("worker")
    clocks = [ops.start("clock", "clock-1"), ops.start("clock", "clock-2")]
    order = shop.add_order()  # no event is fired: only polling can find it
    wait_for(lambda: order["accountNumber"] in onec.documents, timeout=90, what="the polled order in 1C")

    def polls() -> list[synclog.Entry]:
        return [e for e in synclog.read(ops.redis, limit=1000) if e.operation == "poll"]

    seen = len(polls())
    wait_for(lambda: len(polls()) >= seen + 3, timeout=30, what="three more polls after the delivery")
    assert onec.creations[order["accountNumber"]] == 1
    assert ops.log_ops("order", str(order["id"])).count(("bridge", "poll.queue", "queued")) == 1
    assert len({e.process for e in polls()}) == 1, "both clocks polled"
    leaders = [c for c in clocks if "clock: leading" in c.output()]
    assert len(leaders) == 1, "exactly one clock leads"


def test_a_dead_letter_is_listed_and_replayed_with_the_cli(ops: Ops, shop: Any, onec: Any) -> None:
    ops.start("web")
    ops.start("worker")
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    shop.fire_event(f"{ops.url}/shop/events", "ONSALEORDERSAVED", order["id"])
    wait_for(lambda: deadletters.count(ops.redis) == 1, what="the order in the failed list")

    listing = ops.cli("failed", "list")
    assert listing.returncode == 0, listing.stderr
    [letter] = deadletters.list_failed(ops.redis)
    row = next(line for line in listing.stdout.splitlines() if line.startswith(letter.id))
    assert f"order {order['id']} (save)" in row
    assert f"1C refused order {order['accountNumber']}: HTTP 422: Не заполнено поле Контрагент" in row
    assert row.split()[4] == "1"  # attempts (after id, "order", "<id>", "(save)")

    onec.accept()  # the cause is fixed
    retry = ops.cli("failed", "retry", "--all")
    assert retry.returncode == 0, retry.stderr
    assert "1 job(s) requeued" in retry.stdout
    wait_for(lambda: order["accountNumber"] in onec.documents, what="the replayed order in 1C")
    assert ops.cli("failed", "list").stdout.strip() == "no failed jobs"
    assert ops.cli("failed", "retry", "no-such-job").returncode == 1
    assert ops.cli("failed", "retry").returncode == 2

    wait_for(
        lambda: ("bridge", "order.save", "delivered") in ops.log_ops("order", str(order["id"])), what="the log entry"
    )
    log = ops.cli("log", "--entity", "order", "--id", str(order["id"]))
    assert log.returncode == 0
    lines = log.stdout.splitlines()
    story = [next(i for i, line in enumerate(lines) if word in line) for word in ("failed", "requeued", "delivered")]
    assert story == sorted(story), log.stdout  # oldest first: failed, then the retry, then delivered
    assert any("Не заполнено поле Контрагент" in line and " 1c " in line for line in lines)
    assert "no entries for order 999999" in ops.cli("log", "--id", "999999").stdout


def test_metrics_show_what_web_and_worker_did(ops: Ops, shop: Any, onec: Any) -> None:
    ops.start("web")
    ops.start("worker")
    order = shop.add_order()
    shop.fire_event(f"{ops.url}/shop/events", "ONSALEORDERSAVED", order["id"], duplicates=2)
    shop.fire_event(f"{ops.url}/shop/events", "ONSALEORDERSAVED", order["id"], token="forged")
    product, store = shop.add_product(), shop.add_store()
    items = [{"product_id": product["id"], "store_id": store["id"], "amount": 5}]
    pushed = httpx.post(
        f"{ops.url}/1c/stock", json={"items": items}, headers={"Authorization": f"Bearer {INBOUND_TOKEN}"}
    )
    assert pushed.status_code == 202, pushed.text
    wait_for(lambda: order["accountNumber"] in onec.documents, what="the order in 1C")
    wait_for(
        lambda: samples(httpx.get(f"{ops.url}/metrics").text).get(
            ("bridge_jobs_total", (("job", "order"), ("outcome", "delivered")))
        ),
        what="the worker's job count",
    )
    found = samples(httpx.get(f"{ops.url}/metrics").text)
    # from the web process
    assert found[("bridge_shop_events_total", (("event", "ONSALEORDERSAVED"), ("outcome", "accepted")))] == 2
    assert found[("bridge_shop_events_total", (("event", "unknown"), ("outcome", "unauthorized")))] == 1
    assert found[("bridge_onec_items_total", (("kind", "stock"),))] == 1
    # from the worker
    assert found[("bridge_peer_calls_total", (("operation", "orders"), ("outcome", "delivered"), ("peer", "1c")))] == 1
    assert (
        found[("bridge_peer_calls_total", (("operation", "sale.order.get"), ("outcome", "ok"), ("peer", "shop")))] >= 1
    )
    duration = ("bridge_peer_call_duration_seconds_count", (("operation", "orders"), ("peer", "1c")))
    assert found[duration] == 1
    # live state
    assert found[("bridge_queue_jobs", (("queue", "bridge-orders"), ("state", "waiting")))] == 0
    assert found[("bridge_onec_circuit_open", ())] == 0
    assert ("bridge_shop_ratelimit_waits_total", ()) in found


@pytest.fixture
def telegram() -> Iterator[tuple[AlertReceiver, str]]:
    receiver = AlertReceiver()
    with run_app(receiver.app()) as server:
        yield receiver, server.url


def test_a_long_1c_lock_alerts_once_and_once_more_when_it_clears(
    ops: Ops, shop: Any, onec: Any, telegram: tuple[AlertReceiver, str]
) -> None:
    receiver, api_url = telegram
    ops.env |= {
        "BRIDGE_TELEGRAM_API_URL": api_url,
        "BRIDGE_TELEGRAM_BOT_TOKEN": receiver.token,
        "BRIDGE_TELEGRAM_CHAT_ID": "-1001234567",
        "BRIDGE_ALERT_ONEC_DOWN_AFTER": "1",
    }
    ops.start("web")
    ops.start("worker")
    ops.start("clock")
    onec.lock("Ведутся технические работы")
    order = shop.add_order()
    shop.fire_event(f"{ops.url}/shop/events", "ONSALEORDERSAVED", order["id"])
    wait_for(lambda: len(receiver.telegram) == 1, what="the alert")
    checked = ops.evaluations()
    wait_for(lambda: ops.evaluations() >= checked + 3, what="three more evaluations while 1C stays locked")
    assert len(receiver.telegram) == 1, receiver.texts()
    [opened] = receiver.texts()
    assert opened.startswith("🔴 bridge: 1C unavailable for")
    assert "Ведутся технические работы" in opened
    assert receiver.telegram[0]["chat_id"] == "-1001234567"

    onec.unlock()
    wait_for(lambda: len(receiver.telegram) == 2, what="the all-clear")
    checked = ops.evaluations()
    wait_for(lambda: ops.evaluations() >= checked + 3, what="three more evaluations after the all-clear")
    assert len(receiver.telegram) == 2, receiver.texts()
    assert receiver.texts()[1].startswith("✅ bridge: 1C available again")
    assert order["accountNumber"] in onec.documents


def test_no_secret_appears_in_any_output(ops: Ops, shop: Any, onec: Any, telegram: tuple[AlertReceiver, str]) -> None:
    receiver, api_url = telegram
    with SmtpServer() as smtp:
        ops.env |= {
            "BRIDGE_LOG_FORMAT": "json",
            "BRIDGE_LOG_LEVEL": "DEBUG",
            "BRIDGE_POLL_INTERVAL": "1",
            "BRIDGE_TELEGRAM_API_URL": api_url,
            "BRIDGE_TELEGRAM_BOT_TOKEN": receiver.token,
            "BRIDGE_TELEGRAM_CHAT_ID": "42",
            "BRIDGE_ALERT_WEBHOOK_URL": f"{api_url}/hook?key={WEBHOOK_KEY}",
            "BRIDGE_SMTP_HOST": "127.0.0.1",
            "BRIDGE_SMTP_PORT": str(smtp.port),
            "BRIDGE_SMTP_USER": "bridge",
            "BRIDGE_SMTP_PASSWORD": SMTP_PASSWORD,
            "BRIDGE_SMTP_FROM": "bridge@shop.example",
            "BRIDGE_SMTP_TO": "ops@shop.example",
            "BRIDGE_SMTP_SECURITY": "none",
            "BRIDGE_ALERT_ONEC_DOWN_AFTER": "1",
            "BRIDGE_ALERT_DEAD_LETTERS": "1",
        }
        ops.start("web")
        ops.start("worker")
        ops.start("clock")

        # A delivered order, through a webhook signed with the second (current) app token.
        first = shop.add_order()
        shop.fire_event(f"{ops.url}/shop/events", "ONSALEORDERSAVED", first["id"])
        wait_for(lambda: first["accountNumber"] in onec.documents, what="the first order")
        # 1C locked long enough to alert, then back: alert and all-clear on every channel.
        onec.lock("Ведутся технические работы")
        second = shop.add_order()  # found by polling
        wait_for(lambda: len(receiver.telegram) >= 1, what="the 1C alert")
        onec.unlock()
        wait_for(lambda: second["accountNumber"] in onec.documents, what="the second order")
        # A refusal: a dead letter, its alert, the admin API and the CLI.
        onec.reject(422, "Не заполнено поле Контрагент")
        third = shop.add_order()
        shop.fire_event(f"{ops.url}/shop/events", "ONSALEORDERSAVED", third["id"])
        wait_for(lambda: deadletters.count(ops.redis) == 1, what="the dead letter")
        wait_for(lambda: any("jobs failed for good" in t for t in receiver.texts()), what="the dead-letter alert")
        wait_for(lambda: len(smtp.recorder.mails) >= 3 and len(receiver.hooks) >= 3, what="mail and webhook")
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert httpx.get(f"{ops.url}/admin/failed", headers=admin).json()["count"] == 1
        assert httpx.get(f"{ops.url}/admin/failed", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(f"{ops.url}/admin/log", params={"entity": "order", "id": third["id"]}, headers=admin).json()
        inbound = httpx.post(
            f"{ops.url}/1c/stock", json={"items": []}, headers={"Authorization": f"Bearer {INBOUND_TOKEN}"}
        )
        assert inbound.status_code < 500
        listing = ops.cli("failed", "list")
        assert listing.returncode == 0, listing.stdout + listing.stderr
        onec.accept()
        retried = ops.cli("failed", "retry", "--all")
        assert retried.returncode == 0, retried.stdout + retried.stderr
        wait_for(lambda: third["accountNumber"] in onec.documents, what="the replayed order")
        assert ops.cli("log", "--limit", "500").returncode == 0
        pages = [
            httpx.get(f"{ops.url}/metrics").text,
            httpx.get(f"{ops.url}/readyz").text,
            httpx.get(f"{ops.url}/admin/log", params={"limit": 1000}, headers=admin).text,
        ]
        assert smtp.recorder.logins[0] == ("bridge", SMTP_PASSWORD)  # the password was really used
        for process in ops.processes:
            process.stop()

    output = ops.output() + "\n".join(pages)
    assert "delivered" in output and "ALERT onec_down open" in output  # the scan looked at real logs
    secrets = {
        "shop webhook key": shop.webhook_code,
        "shop URL": shop.url,
        "current app token": shop.application_token,
        "old app token": OLD_APP_TOKEN,
        "1C password": onec.password,
        "inbound token": INBOUND_TOKEN,
        "admin token": ADMIN_TOKEN,
        "telegram token": receiver.token,
        "SMTP password": SMTP_PASSWORD,
        "alert webhook key": WEBHOOK_KEY,
    }
    leaked = [name for name, value in secrets.items() if value in output]
    assert leaked == [], f"secrets in the output: {leaked}"
    for process in ops.processes:
        for line in process.output().splitlines():
            if line.strip():
                assert line.lstrip().startswith("{"), f"{process.log_path.name}: not a JSON line: {line[:200]}"
