"""The console in process: off without the admin token, sign-in, the CSRF guard, masking and escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from bridge.ops.synclog import Entry
from bridge.ops.telemetry import Telemetry
from bridge.orders.job import queue_order
from bridge.queue import deadletters
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.web.app import create_app
from tests.ops_helpers import emulator_settings, run_jobs

TOKEN = "c0nsole-t0ken-for-tests"
PAGES = ["/console", "/console/order?q=300", "/console/failed", "/console/exchange", "/console/config"]


@pytest.fixture
def settings(redis_url: str, shop: Any, onec: Any) -> Settings:
    return emulator_settings(redis_url, shop, onec, admin_token=TOKEN, inbound_token="inb0und-secret-xyz")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False, base_url="http://testserver") as client:
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(client: TestClient, token: str = TOKEN) -> Any:
    form = client.get("/console/login")
    return client.post("/console/login", data={"csrf": csrf_of(form.text), "token": token}, follow_redirects=False)


def test_without_the_admin_token_the_console_says_it_is_off(redis_url: str, shop: Any, onec: Any) -> None:
    with TestClient(create_app(emulator_settings(redis_url, shop, onec)), raise_server_exceptions=False) as client:
        for path in [*PAGES, "/console/login"]:
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 503 and "BRIDGE_ADMIN_TOKEN" in answer.text and "is off" in answer.text
            assert "<table" not in answer.text
        assert client.post("/console/failed/retry", data={"all": "1"}).status_code == 503


def test_a_browser_without_a_session_is_sent_to_the_login_page(client: TestClient) -> None:
    for path in PAGES:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    assert client.post("/console/failed/retry", data={"all": "1", "confirm": "yes"}).status_code == 403


def test_a_wrong_token_is_refused_and_sets_no_session(client: TestClient) -> None:
    answer = sign_in(client, "wrong")
    assert answer.status_code == 401 and "not the admin token" in answer.text
    assert "bridge_console=" not in answer.headers.get("set-cookie", "")
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert client.get("/console", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_sign_in_sets_a_signed_http_only_strict_cookie(client: TestClient) -> None:
    answer = sign_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("bridge_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self' covers it
        assert TOKEN not in page.text
    # a cookie signed with another token (or tampered with) is no session
    client.cookies.set("bridge_console", cookie.split(";")[0].split("=", 1)[1][:-2] + "xx", path="/console")
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_the_login_form_itself_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/console/login")
    answer = client.post("/console/login", data={"csrf": "forged", "token": TOKEN}, follow_redirects=False)
    assert answer.status_code == 403 and "bridge_console=" not in answer.headers.get("set-cookie", "")


def test_tools_use_the_bearer_token(client: TestClient) -> None:
    for path in PAGES:
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_a_forged_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, settings: Settings, redis_url: str, shop: Any, onec: Any
) -> None:
    redis = Redis.from_url(redis_url)
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    queue_order(Runtime.from_settings(settings, redis), str(order["id"]))
    run_jobs(settings, redis)
    assert deadletters.count(redis) == 1
    sign_in(client)
    for csrf in ("forged", "", None):
        data = {"all": "1", "confirm": "yes"} | ({"csrf": csrf} if csrf is not None else {})
        answer = client.post("/console/failed/retry", data=data, follow_redirects=False)
        assert answer.status_code == 403 and answer.json()["error"] == "bad_csrf"
    assert deadletters.count(redis) == 1
    page = client.get("/console/failed")
    assert "Не заполнено поле Контрагент" in page.text
    unconfirmed = client.post("/console/failed/retry", data={"all": "1", "csrf": csrf_of(page.text)})
    assert "confirm" in unconfirmed.text and deadletters.count(redis) == 1
    onec.accept()
    done = client.post("/console/failed/retry", data={"all": "1", "confirm": "yes", "csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "1 put back" in done.text and deadletters.count(redis) == 0
    run_jobs(settings, redis)
    assert order["accountNumber"] in onec.documents


def test_a_dead_letter_is_discarded_with_its_reason_in_the_story(
    client: TestClient, settings: Settings, redis_url: str, shop: Any, onec: Any
) -> None:
    redis = Redis.from_url(redis_url)
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    queue_order(Runtime.from_settings(settings, redis), str(order["id"]))
    run_jobs(settings, redis)
    [letter] = deadletters.list_failed(redis)
    sign_in(client)
    page = client.get("/console/failed")
    csrf = csrf_of(page.text)
    forged = client.post("/console/failed/discard", data={"id": letter.id, "reason": "test", "csrf": "forged"})
    assert forged.status_code == 403 and deadletters.count(redis) == 1
    no_reason = client.post("/console/failed/discard", data={"id": letter.id, "reason": " ", "csrf": csrf})
    assert "Say why" in no_reason.text and deadletters.count(redis) == 1
    done = client.post("/console/failed/discard", data={"id": letter.id, "reason": "a test order", "csrf": csrf})
    assert done.status_code == 200 and "1 discarded" in done.text and deadletters.count(redis) == 0
    story = client.get("/console/order", params={"q": str(order["id"])})
    assert "a test order" in story.text
    assert order["accountNumber"] not in onec.documents  # nothing reached 1C


def test_text_from_peers_is_escaped(client: TestClient, redis_url: str) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    telemetry = Telemetry(Redis.from_url(redis_url))
    telemetry.record(Entry("1c", "orders", "refused", "order", "300", 0.1, error=hostile), log_line=False)
    telemetry.record(Entry("1c", "push.stock", "accepted", detail=hostile), log_line=False)
    sign_in(client)
    for path in ("/console/order?q=300", "/console/exchange"):
        page = client.get(path).text
        assert hostile not in page and "&lt;script&gt;" in page, path
    assert client.get("/console/order", params={"q": "<script>"}).status_code == 400


def test_secrets_are_masked_on_the_configuration_page(client: TestClient, settings: Settings) -> None:
    sign_in(client)
    page = client.get("/console/config").text
    shop_url = settings.shop_url.get_secret_value() if settings.shop_url else ""
    for secret in (TOKEN, "inb0und-secret-xyz", shop_url, *[t.get_secret_value() for t in settings.shop_app_tokens]):
        assert secret and secret not in page
    assert "BRIDGE_ADMIN_TOKEN" in page and "order statuses:" in page and "admin API" in page


def test_an_order_is_found_by_id_and_by_account_number(
    client: TestClient, settings: Settings, redis_url: str, shop: Any, onec: Any
) -> None:
    redis = Redis.from_url(redis_url)
    order = shop.add_order()
    queue_order(Runtime.from_settings(settings, redis), str(order["id"]))
    run_jobs(settings, redis)
    sign_in(client)
    by_id = client.get("/console/order", params={"q": str(order["id"])}).text
    assert "delivered" in by_id and f"Order {order['id']}" in by_id
    by_number = client.get("/console/order", params={"q": order["accountNumber"]}).text
    assert f"Order {order['id']}" in by_number
    assert "knows no order" in client.get("/console/order", params={"q": "999999"}).text
    overview = client.get("/console").text
    assert "bridge-orders" in overview and "Circuit closed" in overview and "<svg" in overview


def test_the_browsers_icon_request_gets_no_content_not_a_404(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 204 and response.content == b""
