"""Shared fixtures: a real redis-server for the session, and the two peers served over loopback HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import logs
from tests.peers.onec import SERVICE_PATH, OnecEmulator, create_onec_app
from tests.peers.redis_server import RedisServer
from tests.peers.server import run_app
from tests.peers.shop import ShopEmulator, create_shop_app

# As in every bridge process (``logs.configure``): a test that lowers the root level to DEBUG and looks for
# secrets in the records then sees what a process would write, not httpx's request lines with the URL.
logs.quiet_libraries()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        # A skip would hide every queue and end-to-end test; the README says to install it.
        pytest.fail("redis-server is not on PATH: install it (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def shop() -> Iterator[ShopEmulator]:
    emulator = ShopEmulator()
    with run_app(create_shop_app(emulator)) as server:
        emulator.url = f"{server.url}/rest/{emulator.user_id}/{emulator.webhook_code}/"
        yield emulator


@pytest.fixture
def onec() -> Iterator[OnecEmulator]:
    emulator = OnecEmulator()
    with run_app(create_onec_app(emulator)) as server:
        emulator.url = f"{server.url}{SERVICE_PATH}"
        yield emulator


@pytest.fixture
def cli(redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``bridge <args>`` in this process against the test's Redis: (exit code, what it printed)."""
    from bridge.cli import main

    for name in ("BRIDGE_SHOP_URL", "BRIDGE_MAPPINGS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BRIDGE_REDIS_URL", redis_url)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(args))
        return code, capsys.readouterr().out

    return run
