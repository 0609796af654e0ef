"""The console in a real headless Chromium, against the real app on loopback and the shop and 1C emulators.

Chromium is not optional here: without it these tests fail and say how to install it, because a console
that was never opened in a browser is not tested. The run leaves a screenshot of every page in ``docs/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from bridge.orders.job import queue_order
from bridge.queue import deadletters
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.web.app import create_app
from tests.ops_helpers import emulator_settings, run_jobs
from tests.peers.server import LiveServer

pytestmark = pytest.mark.slow

TOKEN = "br0wser-console-token"
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
DOCS = Path(__file__).resolve().parent.parent / "docs"
INSTALL = (
    "the console's browser tests need Debian's Chromium and its driver: run "
    "`sudo apt-get install -y chromium chromium-driver` (then /usr/bin/chromium and /usr/bin/chromedriver exist)"
)


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and (Path(DRIVER).exists() or shutil.which("chromedriver"))):
        pytest.fail(INSTALL)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER if Path(DRIVER).exists() else None))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def settings(redis_url: str, shop: Any, onec: Any) -> Settings:
    return emulator_settings(redis_url, shop, onec, admin_token=TOKEN)


@pytest.fixture
def console(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings), lifespan="on") as server:
        yield server


def errors_in(driver: Any) -> list[str]:
    """The page's console errors since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def text_of(driver: Any, css: str) -> str:
    """The element's text, or "" while the page has none: also when the page replaced the element between
    finding it and reading it (it refreshes itself), so a ``wait_for`` looks again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return str(found[0].text) if found else ""
    except StaleElementReferenceException:
        return ""


def sign_in(driver: Any, base: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/console/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def test_an_operator_follows_an_order_and_replays_a_dead_letter(
    browser: Any, console: LiveServer, settings: Settings, redis_url: str, shop: Any, onec: Any
) -> None:
    from selenium.webdriver.common.by import By

    base = console.url
    redis = Redis.from_url(redis_url)

    # a wrong token is refused, and shows no data
    sign_in(browser, base, "not-the-token")
    wait_for(lambda: "not the admin token" in text_of(browser, "#login-error"), "the refusal of a wrong token")
    browser.get(base + "/console")
    assert browser.current_url.endswith("/console/login")
    errors_in(browser)  # the 401 of the refused sign-in is logged as a failed load; that one was on purpose

    sign_in(browser, base, TOKEN)
    wait_for(lambda: browser.current_url.rstrip("/").endswith("/console"), "the overview after sign-in")
    assert "bridge-orders" in text_of(browser, "#queues")
    assert "Circuit closed" in text_of(browser, "#circuit")

    # an order travels: the webhook is in its story at once, 1C's delivery appears without a reload
    order = shop.add_order(properties={"COMMENT": "<script>document.title='owned'</script>"})
    shop_event = shop.event_payload("ONSALEORDERSAVED", order["id"])
    assert httpx.post(base + "/shop/events", json=shop_event).status_code == 200
    browser.get(f"{base}/console/order?q={order['accountNumber']}")
    assert "event" in text_of(browser, "#story")
    marker = browser.execute_script("window.notReloaded = true; return window.notReloaded;")
    assert marker is True
    run_jobs(settings, redis)
    wait_for(lambda: "delivered" in text_of(browser, "#story"), "1C's delivery in the order's story")
    assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded, not refreshed"
    assert order["accountNumber"] in onec.documents
    assert browser.title != "owned"
    browser.save_screenshot(str(DOCS / "console-order.png"))

    # 1C refuses the next order; its dead letter is retried from the console and reaches 1C
    onec.reject(422, "Не заполнено поле Контрагент")
    refused = shop.add_order()
    queue_order(Runtime.from_settings(settings, redis), str(refused["id"]))
    run_jobs(settings, redis)
    assert deadletters.count(redis) == 1
    browser.get(base + "/console/failed")
    assert "Не заполнено поле Контрагент" in text_of(browser, "#letters")
    browser.save_screenshot(str(DOCS / "console-failed.png"))

    # a forged CSRF token is refused and changes nothing
    browser.execute_script("document.querySelector('#letters input[name=csrf]').value = 'forged';")
    browser.find_element(By.CSS_SELECTOR, "#letters button.retry").click()
    wait_for(lambda: "bad_csrf" in browser.page_source, "the refusal of a forged CSRF token")
    assert deadletters.count(redis) == 1
    errors_in(browser)  # the 403 was provoked

    onec.accept()
    browser.get(base + "/console/failed")
    browser.find_element(By.CSS_SELECTOR, "#letters button.retry").click()
    wait_for(lambda: "1 put back" in text_of(browser, "#notice"), "the retry's notice")
    assert deadletters.count(redis) == 0
    run_jobs(settings, redis)
    assert refused["accountNumber"] in onec.documents
    browser.get(f"{base}/console/order?q={refused['id']}")
    story = text_of(browser, "#story")
    assert "Не заполнено поле Контрагент" in story and "requeued" in story and "delivered" in story

    # every other page, with no error in the browser's console
    for name, path in (
        ("overview", "/console"),
        ("exchange", "/console/exchange"),
        ("config", "/console/config"),
    ):
        browser.get(base + path)
        assert TOKEN not in browser.page_source
        browser.save_screenshot(str(DOCS / f"console-{name}.png"))
    assert errors_in(browser) == []


def test_the_console_refuses_a_browser_without_the_token(browser: Any, console: LiveServer) -> None:
    browser.get(console.url + "/console/failed")
    assert browser.current_url.endswith("/console/login")
    assert "Sign in" in browser.page_source and "<table" not in browser.page_source
    assert errors_in(browser) == []
