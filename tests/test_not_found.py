"""A path the bridge does not serve: a JSON 404 that names the paths that exist and the closest one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bridge.settings import Settings
from bridge.updates.kinds import KINDS
from bridge.web import exchange
from bridge.web.app import create_app


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(redis_url=redis_url))) as client:
        yield client


def test_a_mistyped_1c_path_names_the_closest_and_lists_every_1c_endpoint(client: TestClient) -> None:
    answer = client.post("/1c/stocks", json={"items": []})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error"] == "not_found"
    assert body["did_you_mean"] == "/1c/stock"
    assert "did you mean /1c/stock?" in body["message"]
    assert body["paths"] == [f"POST /1c/{kind}" for kind in KINDS] + ["GET /1c/batches/{batch}"]
    for path in body["paths"]:
        assert path in body["message"]
    assert not any(p.endswith(exchange.PATHS) for p in body["paths"])  # the exchange speaks its own grammar


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        ("/1c/price", "/1c/prices"),
        ("/1c/order_status", "/1c/order-status"),
        ("/1c/batches", "/1c/batches/{batch}"),
        ("/1c/batch/stock-5", "/1c/batches/{batch}"),
        ("/1c/exchang", "/1c/exchange"),
    ],
)
def test_near_misses_find_the_path_meant(client: TestClient, path: str, meant: str) -> None:
    assert client.get(path).json()["did_you_mean"] == meant


def test_the_list_is_read_from_the_routes(redis_url: str) -> None:
    async def later(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = create_app(Settings(redis_url=redis_url))
    app.router.routes.append(Route("/1c/later-kind", later, methods=["POST"]))
    with TestClient(app) as client:
        body = client.post("/1c/later-kinds").json()
    assert body["did_you_mean"] == "/1c/later-kind"
    assert body["paths"][-1] == "POST /1c/later-kind"


def test_a_path_far_from_every_endpoint_gets_no_guess(client: TestClient) -> None:
    body = client.get("/1c/zzzzzzzz").json()
    assert "did_you_mean" not in body
    assert "the 1C endpoints are POST /1c/stock" in body["message"]


@pytest.mark.parametrize(
    ("path", "meant"), [("/helthz", "/healthz"), ("/nothing-here", None), ("/", None), ("/console/nope", None)]
)
def test_other_404s_are_json_too(client: TestClient, path: str, meant: str | None) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error"] == "not_found"
    assert body.get("did_you_mean") == meant
    assert "/openapi.json" in body["message"]
    assert "paths" not in body


@pytest.mark.parametrize(
    "path",
    ["/1c/" + "x" * 20_000, "/1c/%00%ff", "/1c/%D1%81%D0%BA%D0%BB%D0%B0%D0%B4", "/1c/..%2f..%2fetc", "/%"],
)
def test_hostile_paths_get_a_brief_404(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert len(answer.content) < 2000
    assert answer.json()["error"] == "not_found"


def test_the_exchange_endpoints_keep_their_own_grammar(client: TestClient) -> None:
    for path in exchange.PATHS:
        answer = client.get(path, params={"type": "catalog", "mode": "nonsense"})
        assert answer.status_code == 200
        assert answer.text.splitlines()[0] == "failure"


def test_a_wrong_method_is_still_405_with_allow(client: TestClient) -> None:
    answer = client.put("/1c/stock")
    assert answer.status_code == 405
    assert "POST" in answer.headers["allow"]
