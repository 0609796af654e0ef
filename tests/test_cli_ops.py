"""``bridge failed …`` and ``bridge log`` in process: exit codes and plain words (the e2e test runs them for real)."""

from __future__ import annotations

import json

import pytest
from redis import Redis

from bridge.cli import main
from bridge.ops.synclog import Entry
from bridge.ops.telemetry import Telemetry
from tests.peers.server import free_port


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # no .env file of the project


def test_an_unreachable_redis_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRIDGE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["failed", "list"]) == 1
    assert capsys.readouterr().err.strip() == (
        "bridge failed list: Redis does not answer (ConnectionError); check BRIDGE_REDIS_URL"
    )


def test_retry_needs_ids_or_all(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRIDGE_REDIS_URL", redis_url)
    assert main(["failed", "retry"]) == 2
    assert main(["failed", "retry", "--all", "some-id"]) == 2
    assert "give job ids" in capsys.readouterr().err
    assert main(["failed", "retry", "--all"]) == 0
    assert capsys.readouterr().out.strip() == "0 job(s) requeued"


def test_log_as_text_and_json(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRIDGE_REDIS_URL", redis_url)
    telemetry = Telemetry(Redis.from_url(redis_url))
    telemetry.record(Entry("shop", "sale.order.get", "ok", "order", "300", 0.01, detail="HTTP 200"), log_line=False)
    telemetry.record(Entry("1c", "orders", "delivered", "order", "300", 0.2, detail="HTTP 201"), log_line=False)
    assert main(["log", "--id", "300"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "sale.order.get" in lines[0] and "delivered" in lines[1]  # oldest first
    assert main(["log", "--entity", "order", "--id", "300", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["outcome"] for e in entries] == ["delivered", "ok"]  # newest first, as the API answers
    assert main(["log", "--entity", "order", "--id", "1"]) == 0
    assert capsys.readouterr().out.strip() == "no entries for order 1"
