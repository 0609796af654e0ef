"""Starting the real ``bridge`` processes for end-to-end tests, with their output kept for inspection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bridge.mappings import DEFAULTS_DIR

ROOT = Path(__file__).resolve().parent.parent


def bridge_env(shop: Any, onec: Any, port: int, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a bridge process wired to the emulators; short retries so tests stay quick."""
    env = {
        "BRIDGE_SHOP_URL": shop.url,
        "BRIDGE_SHOP_APP_TOKENS": shop.application_token,
        "BRIDGE_ONEC_URL": onec.url,
        "BRIDGE_ONEC_USER": onec.user,
        "BRIDGE_ONEC_PASSWORD": onec.password,
        "BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR),
        "BRIDGE_RETRY_MIN_DELAY": "0.2",
        "BRIDGE_RETRY_MAX_DELAY": "1",
        "BRIDGE_POLL_INTERVAL": "0",
        "BRIDGE_MAINTENANCE_INTERVAL": "5",
        "BRIDGE_HOST": "127.0.0.1",
        "PORT": str(port),
    }
    if redis_url is not None:
        env["BRIDGE_REDIS_URL"] = redis_url
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until ``predicate`` is truthy; fail the test with ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class BridgeProcess:
    """One ``bridge <command>`` subprocess; its stdout+stderr go to a file the test can read."""

    def __init__(self, command: list[str], env: dict[str, str], log_dir: Path, name: str) -> None:
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
        full_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", *command],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def wait_http(url: str, process: BridgeProcess, timeout: float = 30.0) -> None:
    def up() -> bool:
        if process.proc.poll() is not None:
            raise AssertionError(f"process exited early:\n{process.output()}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=timeout, what=f"{url} to answer")
