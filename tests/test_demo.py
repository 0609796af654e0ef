"""``bridge demo`` as a newcomer runs it: one real process, no settings, orders reaching its emulated 1C.

Also the line between the product and the sandbox: the emulators ship in the package for the demo, yet no
product module may load them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers.server import free_port
from tests.processes import ROOT, BridgeProcess, bridge_env, wait_for, wait_http

STOP_DEADLINE = 20.0  # a hang guard, not a measurement: a stuck process would otherwise hang the suite


def start_demo(tmp_path: Path, **env: str) -> tuple[BridgeProcess, str]:
    port = free_port()
    demo = BridgeProcess(["demo"], {"PORT": str(port), **env}, tmp_path, "demo")
    wait_http(f"http://127.0.0.1:{port}/healthz", demo)
    return demo, f"http://127.0.0.1:{port}"


def banner_value(demo: BridgeProcess, label: str) -> str:
    found = wait_for(lambda: re.search(rf"^  {label} +(\S+)", demo.output(), re.M), what=f"'{label}' in the banner")
    return str(found.group(1))


def received(documents_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(documents_url, timeout=5).json()["documents"])


def stop_with(demo: BridgeProcess, sig: signal.Signals) -> int:
    """Send ``sig`` as a terminal (SIGINT, to the process group) or a supervisor (SIGTERM, to the pid) does."""
    if sig == signal.SIGINT:
        os.killpg(demo.proc.pid, sig)
    else:
        os.kill(demo.proc.pid, sig)
    try:
        return demo.proc.wait(STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        demo.kill()
        raise AssertionError(f"still running {STOP_DEADLINE:.0f} s after {sig.name}:\n{demo.output()}") from None


@pytest.mark.slow
def test_the_demo_plays_orders_through_a_1c_outage_and_stops_on_sigterm(tmp_path: Path) -> None:
    demo, url = start_demo(tmp_path, BRIDGE_ADMIN_TOKEN="given-admin-t0ken")
    try:
        assert banner_value(demo, "admin token") == "given-admin-t0ken"
        documents_url = banner_value(demo, "1C received")
        # The first order, then the one placed while 1C was locked, reach the emulated 1C.
        wait_for(lambda: len(received(documents_url)) >= 2, timeout=60, what="two orders in the emulated 1C")
        numbers = [document["Number"] for document in received(documents_url)]
        assert len(set(numbers)) == len(numbers)
        wait_for(lambda: "the script is done" in demo.output(), timeout=60, what="the end of the script")
        # The admin API shows the orders' story, behind the token it was given.
        log = httpx.get(f"{url}/admin/log", params={"entity": "order"}, headers={"Authorization": "Bearer x"})
        assert log.status_code == 401
        log = httpx.get(
            f"{url}/admin/log", params={"entity": "order"}, headers={"Authorization": "Bearer given-admin-t0ken"}
        )
        assert log.status_code == 200
        site_ids = {str(document["SiteId"]) for document in received(documents_url)}
        assert {entry.get("entity_id") for entry in log.json()["entries"]} >= site_ids
        # The console tells the same story: an order's page names its delivery to 1C.
        site_id = sorted(site_ids)[0]
        page = httpx.get(
            f"{url}/console/order", params={"q": site_id}, headers={"Authorization": "Bearer given-admin-t0ken"}
        )
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert site_id in page.text and "delivered" in page.text
        code = stop_with(demo, signal.SIGTERM)
    finally:
        demo.stop()
    output = demo.output()
    assert code == 0, output
    for line in ("placed in the shop", "1C is locked", "1C is back", "delivered to 1C as document", "/1c/stock → 202"):
        assert line in output
    assert "the shop now has" in output and "price of" in output
    # 1C's standard exchange: both files imported, and the product the shop lacked created there.
    assert "import import.xml → success" in output and "import offers.xml → success" in output
    assert "a new product from 1C" in output
    assert "bridge demo stopped" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_the_demo_makes_up_an_admin_token_and_stops_on_sigint(tmp_path: Path) -> None:
    demo, url = start_demo(tmp_path)
    try:
        token = banner_value(demo, "admin token")
        assert len(token) >= 16
        failed = httpx.get(f"{url}/admin/failed", headers={"Authorization": f"Bearer {token}"})
        assert failed.status_code == 200, failed.text
        code = stop_with(demo, signal.SIGINT)
    finally:
        demo.stop()
    assert code == 0, demo.output()
    assert "Traceback" not in demo.output()


@pytest.mark.slow
def test_serve_with_nothing_configured_points_to_the_demo(tmp_path: Path) -> None:
    port = free_port()
    serve = BridgeProcess(["serve"], {"PORT": str(port), "BRIDGE_HOST": "127.0.0.1"}, tmp_path, "serve")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", serve)
        # The features stay off where they are asked for.
        assert httpx.post(f"http://127.0.0.1:{port}/1c/stock", json={"items": []}).status_code == 503
    finally:
        serve.stop()
    output = serve.output()
    assert "bridge demo" in output
    assert "is off until" not in output


@pytest.mark.slow
def test_serve_with_some_settings_still_names_what_is_off(shop: Any, onec: Any, tmp_path: Path) -> None:
    port = free_port()
    env = bridge_env(shop, onec, port)
    serve = BridgeProcess(["serve"], env, tmp_path, "serve")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", serve)
        wait_for(lambda: "admin API is off until BRIDGE_ADMIN_TOKEN is set" in serve.output(), what="the warning")
    finally:
        serve.stop()
    assert "bridge demo" not in serve.output()


IMPORTS_SANDBOX = re.compile(r"^\s*(from|import)\s+bridge\.sandbox\b|^\s*from\s+bridge\s+import\s+.*\bsandbox\b", re.M)
MAY_LOAD_SANDBOX = {"bridge/cli/demo.py"}  # the ``bridge demo`` command, and only when it runs


def test_no_product_module_imports_the_sandbox() -> None:
    offenders = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("bridge/sandbox/") or name in MAY_LOAD_SANDBOX:
            continue
        if IMPORTS_SANDBOX.search(path.read_text(encoding="utf-8")):
            offenders.append(name)
    assert offenders == [], f"product modules that import bridge.sandbox: {offenders}"


def test_the_scan_sees_an_import_of_the_sandbox() -> None:
    assert IMPORTS_SANDBOX.search("    from bridge.sandbox.shop import ShopEmulator\n")
    assert IMPORTS_SANDBOX.search("import bridge.sandbox\n")
    assert IMPORTS_SANDBOX.search("from bridge import logs, sandbox\n")
    assert not IMPORTS_SANDBOX.search("from bridge.serve import serve\n")


def test_the_demo_command_loads_the_sandbox_only_when_it_runs() -> None:
    text = (ROOT / "bridge/cli/demo.py").read_text(encoding="utf-8")
    top_level = [
        line for line in text.splitlines() if line.startswith(("from bridge.sandbox", "import bridge.sandbox"))
    ]
    assert "from bridge.sandbox" in text
    assert top_level == []  # the import sits inside cmd_demo, so `bridge check` and friends never load it


def test_the_test_peers_are_the_sandbox_modules() -> None:
    import bridge.sandbox.onec
    import bridge.sandbox.shop.sale
    import tests.peers.onec
    import tests.peers.shop.sale

    assert tests.peers.shop.sale is bridge.sandbox.shop.sale
    assert tests.peers.onec is bridge.sandbox.onec
    assert not (ROOT / "tests/peers/shop").exists() or not list((ROOT / "tests/peers/shop").glob("*.py"))
