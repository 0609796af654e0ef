"""Dead letters can be discarded for good, by id or all, over the CLI and the admin API, with the person's
reason kept in the sync log; nothing else changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from bridge.cli import main
from bridge.ops import synclog
from bridge.orders.job import queue_order
from bridge.queue import deadletters
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.web.app import create_app
from tests.ops_helpers import emulator_settings, run_jobs

TOKEN = "adm1n-t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(redis_url: str, shop: Any, onec: Any) -> Settings:
    return emulator_settings(redis_url, shop, onec, admin_token=TOKEN)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _dead_orders(settings: Settings, redis: Redis, shop: Any, onec: Any, n: int) -> list[str]:
    """``n`` orders that 1C refused: their dead letters' ids."""
    onec.reject(422, "Не заполнено поле Контрагент")
    for _ in range(n):
        queue_order(Runtime.from_settings(settings, redis), str(shop.add_order()["id"]))
    run_jobs(settings, redis)
    ids = [d.id for d in deadletters.list_failed(redis)]
    assert len(ids) == n
    return ids


def test_the_admin_api_discards_with_a_reason_kept_in_the_log(
    client: TestClient, settings: Settings, redis_url: str, shop: Any, onec: Any
) -> None:
    redis = Redis.from_url(redis_url)
    first, second, third = _dead_orders(settings, redis, shop, onec, 3)
    one = client.post(f"/admin/failed/{first}/discard", headers=AUTH, json={"reason": "a test order"})
    assert one.status_code == 200 and [d["id"] for d in one.json()["discarded"]] == [first]
    entity_id = first.split("-")[1]
    [entry] = [e for e in synclog.read(redis, entity="order", entity_id=entity_id) if e.operation == "discard"]
    assert entry.outcome == "discarded" and "a test order" in (entry.detail or "")
    # Refusals change nothing.
    assert client.post(f"/admin/failed/{second}/discard", headers=AUTH, json={}).status_code == 400
    assert client.post(f"/admin/failed/{second}/discard", headers=AUTH, content=b"{").status_code == 400
    assert client.post("/admin/failed/discard", headers=AUTH, json={"ids": [], "reason": "x"}).status_code == 400
    assert client.post("/admin/failed/discard", headers=AUTH, json={"ids": ["a b"], "reason": "x"}).status_code == 400
    assert client.post(f"/admin/failed/{second}/discard", json={"reason": "x"}).status_code == 401
    assert client.post(f"/admin/failed/{first}/discard", headers=AUTH, json={"reason": "again"}).status_code == 404
    assert deadletters.count(redis) == 2
    both = client.post("/admin/failed/discard", headers=AUTH, json={"all": True, "reason": "cleaning up"})
    assert sorted(d["id"] for d in both.json()["discarded"]) == sorted([second, third])
    assert deadletters.count(redis) == 0
    assert onec.documents == {}  # nothing was sent anywhere


def test_the_cli_discards_by_id_and_all(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    redis_url: str,
    shop: Any,
    onec: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    redis = Redis.from_url(redis_url)
    first, second = _dead_orders(settings, redis, shop, onec, 2)
    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")
    monkeypatch.setenv("BRIDGE_REDIS_URL", redis_url)
    with pytest.raises(SystemExit):  # argparse: --reason is required
        main(["failed", "discard", first])
    assert main(["failed", "discard", "--reason", "  ", first]) == 2
    assert main(["failed", "discard", "--reason", "x"]) == 2
    capsys.readouterr()
    assert main(["failed", "discard", "--reason", "never fixable", first, "no-such-id"]) == 1
    captured = capsys.readouterr()
    assert f"discarded {first}" in captured.out and "not found no-such-id" in captured.err
    assert main(["failed", "discard", "--all", "--reason", "done"]) == 0
    assert f"discarded {second}" in capsys.readouterr().out
    assert deadletters.count(redis) == 0
    assert main(["log", "--entity", "order", "--id", second.split("-")[1]]) == 0
    assert "dropped by hand (done)" in capsys.readouterr().out
