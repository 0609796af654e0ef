"""Hostile input against a live ``bridge web`` process: schemathesis over ``/openapi.json``, bodies that never
end, and addresses as the real network shows them.

``test_hostile_inputs.py`` holds the same rules in-process; here the requests cross a real socket into
uvicorn, which is where a body too large must be cut off (not read into memory first) and where the
caller's address is the one the kernel saw, not one a header claims.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from redis import Redis
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, unsupported_method

from bridge.mappings import DEFAULTS_DIR
from bridge.web.openapi import document
from tests.peers.onec import SERVICE_PATH, OnecEmulator, create_onec_app
from tests.peers.redis_server import RedisServer
from tests.peers.server import free_port, run_app
from tests.peers.shop import ShopEmulator, create_shop_app
from tests.processes import BridgeProcess, wait_http

pytestmark = pytest.mark.slow

SHOP_TOKEN = "shop-app-token-live"
INBOUND_TOKEN = "inbound-token-live"
ADMIN_TOKEN = "admin-token-live"
LIMIT = 256 * 1024


@dataclass
class Live:
    url: str
    redis: Redis
    shop: ShopEmulator
    onec: OnecEmulator
    web: BridgeProcess


@pytest.fixture(scope="module")
def live(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One ``bridge web`` (no worker: whatever it accepts stays queued) with every feature configured."""
    with redis_server.client() as client:
        client.flushall()
    shop, onec = ShopEmulator(), OnecEmulator()
    with run_app(create_shop_app(shop)) as shop_server, run_app(create_onec_app(onec)) as onec_server:
        shop.url = f"{shop_server.url}/rest/{shop.user_id}/{shop.webhook_code}/"
        onec.url = f"{onec_server.url}{SERVICE_PATH}"
        port = free_port()
        env = {
            "BRIDGE_REDIS_URL": redis_server.url,
            "BRIDGE_SHOP_URL": shop.url,
            "BRIDGE_SHOP_APP_TOKENS": SHOP_TOKEN,
            "BRIDGE_ONEC_URL": onec.url,
            "BRIDGE_INBOUND_TOKEN": INBOUND_TOKEN,
            "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
            "BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR),
            "BRIDGE_MAX_BODY_BYTES": str(LIMIT),
            "BRIDGE_HOST": "127.0.0.1",
            "PORT": str(port),
        }
        web = BridgeProcess(["web"], env, tmp_path_factory.mktemp("live-web"), "web")
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", web)
            yield Live(f"http://127.0.0.1:{port}", Redis.from_url(redis_server.url), shop, onec, web)
        finally:
            web.stop()
            print(web.output()[-20_000:])
    assert shop.requests == [], "the web process called the shop"
    assert onec.calls == [], "the web process called 1C"


def work(redis: Redis) -> list[Any]:
    """What accepted work looks like in Redis: queued jobs and pending markers and updates."""
    keys = sorted(k.decode() for p in ("bridge:*pending*", "bridge:flush:*", "rq:job:*") for k in redis.scan_iter(p))
    lengths = sorted((k.decode(), redis.llen(k)) for k in redis.scan_iter("rq:queue:*") if redis.type(k) == b"list")
    return [keys, lengths]


# --- schemathesis ------------------------------------------------------------------------------------------

schema = schemathesis.openapi.from_dict(document())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=15)
AUTH = {
    "/1c/": {"Authorization": f"Bearer {INBOUND_TOKEN}"},
    "/admin/": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
}


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_5xx_or_an_unreadable_refusal(case: schemathesis.Case, live: Live) -> None:
    """Every operation of ``/openapi.json`` with schema-conforming and schema-breaking input.

    The right tokens are sent, so that generated bodies reach validation instead of stopping at 401.
    """
    headers = next((h for prefix, h in AUTH.items() if case.path.startswith(prefix)), {})
    before = work(live.redis)
    response = case.call(base_url=live.url, headers=headers, timeout=30)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    # And what the document promises about every answer: JSON where it says JSON, Allow on a 405. (Not the
    # checks of which inputs must be accepted: the tokens added above turn some "negative" cases positive.)
    case.validate_response(response, checks=[not_a_server_error, content_type_conformance, unsupported_method])
    if response.status_code >= 400:
        body = response.json()
        assert body.get("error") and len(body.get("message", "")) > 10, body
        assert work(live.redis) == before, "a refused request changed the queued work"


def test_the_served_document_is_the_one_tested(live: Live) -> None:
    assert httpx.get(f"{live.url}/openapi.json", timeout=10).json() == json.loads(json.dumps(document()))


# --- bodies that never end -----------------------------------------------------------------------------------


def stream_until_answered(url: str, path: str, headers: dict[str, str], *, give_up_after: int) -> tuple[bytes, int]:
    """POST a chunked body of endless ``[`` without Content-Length; stop when an answer comes.

    Returns (the answer's first bytes, how many body bytes were sent before it came).
    """
    host, port = url.removeprefix("http://").split(":")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    chunk = b"[" * 16384
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        deadline = time.monotonic() + 60
        while sent < give_up_after and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break
            if writable:
                try:
                    sock.sendall(frame)
                except OSError:  # the server closed its side after answering
                    break
                sent += len(chunk)
        sock.settimeout(10)
        answer = b""
        try:
            while chunk_read := sock.recv(65536):
                answer += chunk_read
        except OSError:
            pass
    return answer, sent


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/shop/events", {"Content-Type": "application/json"}),
        ("/1c/stock", {"Content-Type": "application/json", "Authorization": f"Bearer {INBOUND_TOKEN}"}),
        ("/admin/failed/retry", {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}),
    ],
)
def test_an_endless_body_is_cut_off_with_413(live: Live, path: str, headers: dict[str, str]) -> None:
    """No Content-Length and no end: the bridge answers 413 once the limit is passed, without waiting for
    (or holding) the rest. The client stops sending when the answer arrives; the rest would be 256 MiB."""
    before = work(live.redis)
    answer, sent = stream_until_answered(live.url, path, headers, give_up_after=256 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"body_too_large" in answer
    # What was sent before the answer: the limit plus what the sockets' buffers absorbed, far below the 256 MiB offered.
    assert sent < 64 * 1024 * 1024, sent
    assert work(live.redis) == before
    assert httpx.get(f"{live.url}/healthz", timeout=10).status_code == 200


# --- who is calling -----------------------------------------------------------------------------------------


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(
    redis_server: RedisServer, tmp_path: Path, live: Live
) -> None:
    """Behind no proxy, an allow-list names the real peer; a caller cannot claim an allowed address."""
    port = free_port()
    env = {
        "BRIDGE_REDIS_URL": redis_server.url,
        "BRIDGE_INBOUND_TOKEN": INBOUND_TOKEN,
        "BRIDGE_INBOUND_ALLOWED_IPS": "10.20.0.0/16",
        "BRIDGE_TRUSTED_PROXIES": "10.99.0.0/16",
        "BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR),
        "BRIDGE_HOST": "127.0.0.1",
        "PORT": str(port),
    }
    web = BridgeProcess(["web"], env, tmp_path, "web-allowlist")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", web)
        before = work(live.redis)
        body = {"items": [{"xml_id": "a", "store": "Main", "amount": 1}]}
        for forged in ("10.20.0.5", "10.20.0.5, 10.99.0.1", "10.99.0.1"):
            answer = httpx.post(
                f"http://127.0.0.1:{port}/1c/stock",
                json=body,
                headers={"Authorization": f"Bearer {INBOUND_TOKEN}", "X-Forwarded-For": forged, "X-Real-IP": forged},
                timeout=10,
            )
            assert answer.status_code == 403, (forged, answer.text)
            assert "127.0.0.1" in answer.json()["message"]  # names the address it really saw
        assert work(live.redis) == before
    finally:
        web.stop()
