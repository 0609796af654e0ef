"""The guards of ``bridge.web.auth``: one comparison of secrets for every caller, and a guard that refuses
before the endpoint runs. The answers each caller gets are asserted where the endpoints are tested."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bridge.settings import Settings
from bridge.web import auth
from bridge.web.app import create_app

SHOP, ONEC, ADMIN = "shop-tøken", "1c-token", "admin-token"


class Comparisons:
    """Counts the constant-time comparisons made through ``bridge.web.auth``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pairs: list[tuple[bytes, bytes]] = []
        original = hmac.compare_digest

        def compare(a: bytes, b: bytes) -> bool:
            assert isinstance(a, bytes) and isinstance(b, bytes)  # text that is not ASCII would raise
            self.pairs.append((a, b))
            return original(a, b)

        monkeypatch.setattr(auth.hmac, "compare_digest", compare)


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> Comparisons:
    return Comparisons(monkeypatch)


def test_every_offered_secret_is_compared_with_every_accepted_one(comparisons: Comparisons) -> None:
    assert auth.same_secret(["a", "b"], ["a", "c", "d"])  # the first pair matches: no early exit all the same
    assert len(comparisons.pairs) == 6
    assert not auth.same_secret(["ключ"], ["ключ-другой"])
    assert auth.same_secret(["ключ"], ["ключ"])
    assert not auth.same_secret([], ["a"]) and not auth.same_secret(["a"], [])


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    settings = Settings(
        redis_url=redis_url,
        shop_url="https://shop.example/rest/1/key/",
        shop_app_tokens=SHOP,
        onec_url="https://onec.example/hs/bridge/",
        inbound_token=ONEC,
        admin_token=ADMIN,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "right", "wrong"),
    [
        (
            "POST",
            "/shop/events",
            {"json": {"event": "ONSALEORDERSAVED", "auth": {"application_token": SHOP}}},
            {"json": {"event": "ONSALEORDERSAVED", "auth": {"application_token": SHOP + "x"}}},
        ),
        ("POST", "/1c/stock", {"headers": {"X-Api-Token": ONEC}}, {"headers": {"X-Api-Token": ONEC + "x"}}),
        (
            "GET",
            "/admin/log",
            {"headers": {"Authorization": f"Bearer {ADMIN}"}},
            {"headers": {"Authorization": "Bearer x"}},
        ),
    ],
)
def test_every_caller_is_checked_by_the_one_comparison(
    client: TestClient, comparisons: Comparisons, method: str, path: str, right: dict[str, Any], wrong: dict[str, Any]
) -> None:
    refused = client.request(method, path, **wrong)
    assert refused.status_code == 401 and comparisons.pairs
    comparisons.pairs.clear()
    passed = client.request(method, path, **right)
    assert passed.status_code != 401 and comparisons.pairs


def test_a_refusing_guard_keeps_the_endpoint_from_running() -> None:
    ran: list[str] = []

    async def guard(request: Request) -> Response | None:
        return None if request.headers.get("x-pass") else PlainTextResponse("failure\nnot you", status_code=200)

    @auth.guarded(guard)
    async def endpoint(request: Request) -> Response:
        ran.append(request.url.path)
        return PlainTextResponse("success")

    assert endpoint.__name__ == "endpoint"  # route names and logs still see the endpoint's own name
    with TestClient(Starlette(routes=[Route("/x", endpoint)])) as client:
        assert client.get("/x").text == "failure\nnot you" and ran == []
        assert client.get("/x", headers={"X-Pass": "1"}).text == "success" and ran == ["/x"]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Bearer ", None),
        ("Basic abc", None),
        ("", None),
        ("Bearerabc", None),
    ],
)
def test_the_bearer_token_of_a_request(header: str, token: str | None) -> None:
    scope = {"type": "http", "headers": [(b"authorization", header.encode())] if header else []}
    assert auth.bearer_token(Request(scope)) == token
