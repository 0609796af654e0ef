"""``bridge demo``: the bridge with an emulated shop and an emulated 1C in one process, playing real traffic.

A newcomer's first command. Nothing is configured: the demo makes up every setting, starts the shop and 1C
emulators (the very ones the tests use) on loopback ports, seeds a small catalogue, and then plays a short
script over real HTTP: orders placed in the shop reach 1C, 1C goes into maintenance and comes back, 1C
pushes stock and prices. Each step is narrated in one plain line. The bridge itself is started exactly as
``bridge serve`` starts it (``bridge.serve``), so what the demo shows is what production does.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from bridge.exchange.model import Group, Offer, Price, PriceType, Product, Warehouse
from bridge.mappings import DEFAULTS_DIR
from bridge.sandbox import commerceml
from bridge.sandbox.onec import SERVICE_PATH, OnecEmulator, create_onec_app
from bridge.sandbox.onec_exchange import OnecExchange
from bridge.sandbox.shop import ShopEmulator, create_shop_app
from bridge.settings import Settings
from bridge.stopping import WebThread, listen

HOST = "127.0.0.1"
STORE_ID = 1
PRICE_TYPE_ID = 1
CATALOGUE = (  # product id, 1C GUID (the shop's xmlId), article, name, price
    (11, "5f1c2a7e-0b1d-4c55-9a10-000000000011", "KT-1500", "Чайник электрический", 1500.0),
    (12, "5f1c2a7e-0b1d-4c55-9a10-000000000012", "TS-0900", "Тостер", 900.0),
    (13, "5f1c2a7e-0b1d-4c55-9a10-000000000013", "BL-2400", "Блендер", 2400.0),
)
# 1C's own ids of the seeded price type and store, as its exchange node sends them (the shop's xmlId).
PRICE_TYPE_GUID = "b1a7c0de-0000-4000-8000-00000000b45e"
STORE_GUID = "b1a7c0de-0000-4000-8000-0000000057a0"
NEW_PRODUCT = ("5f1c2a7e-0b1d-4c55-9a10-000000000014", "MW-3100", "Микроволновая печь", Decimal("3100"))
LOCK_SECONDS = 8.0  # how long the emulated 1C stays in maintenance
REPEAT_SECONDS = 30.0  # after the script, a new order this often, so the console keeps moving


def narrate(line: str) -> None:
    """One line of the story on stdout (the bridge's own log goes to stderr)."""
    print(f"{time.strftime('%H:%M:%S')}  {line}", flush=True)


class DemoSettings(Settings):
    """Only what the demo passes: no environment variable, no ``.env``. A production ``.env`` in the working
    folder (alert channels, a real shop) must not leak into a demo, nor the demo's alerts into a real chat."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], *sources: Any, **named: Any
    ) -> tuple[Any, ...]:
        init = named.get("init_settings", sources[0] if sources else None)
        return (init,)


@dataclass
class Sandbox:
    """The emulated peers and the settings that point the bridge at them."""

    shop: ShopEmulator
    onec: OnecEmulator
    settings: Settings
    servers: list[WebThread]
    onec_base: str

    @property
    def bridge_url(self) -> str:
        return f"http://{HOST}:{self.settings.port}"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def _start(app: Any) -> tuple[WebThread, str]:
    sock = listen(HOST, 0, "demo")
    port = int(sock.getsockname()[1])
    server = WebThread(app, sock, log_level="warning", access_log=False, lifespan="off").start()
    return server, f"http://{HOST}:{port}"


def onec_app(onec: OnecEmulator) -> Starlette:
    """The emulated 1C, plus a read-only page of what it received, for people and for the demo's test."""

    async def documents(request: Request) -> JSONResponse:
        with onec._mutex:
            received = [dict(document) for document in onec.documents.values()]
        return JSONResponse({"documents": received, "count": len(received)})

    return Starlette(routes=[Route("/sandbox/documents", documents), Mount("/", create_onec_app(onec))])


def build(environ: dict[str, str] | None = None) -> Sandbox:
    """Start the emulated shop and 1C, seed the catalogue, and make up the bridge's settings."""
    environ = dict(os.environ if environ is None else environ)
    shop = ShopEmulator(webhook_code=secrets.token_urlsafe(12), application_token=secrets.token_urlsafe(12))
    shop.add_store(store_id=STORE_ID, title="Основной склад", xml_id=STORE_GUID)
    shop.add_price_type(price_type_id=PRICE_TYPE_ID, name="BASE", xml_id=PRICE_TYPE_GUID)
    for product_id, xml_id, article, name, price in CATALOGUE:
        shop.add_product(product_id=product_id, xml_id=xml_id, article=article, name=name)
        shop.set_price(product_id, PRICE_TYPE_ID, price)
        shop.set_amount(product_id, STORE_ID, 10)
    onec = OnecEmulator(user="bridge", password=secrets.token_urlsafe(12))
    shop_server, shop_base = _start(create_shop_app(shop))
    onec_server, onec_base = _start(onec_app(onec))
    shop.url = f"{shop_base}/rest/{shop.user_id}/{shop.webhook_code}/"
    onec.url = f"{onec_base}{SERVICE_PATH}"
    admin = environ.get("BRIDGE_ADMIN_TOKEN") or secrets.token_urlsafe(18)
    settings = DemoSettings(
        redis_url=None,
        shop_url=SecretStr(shop.url),
        shop_app_tokens=[SecretStr(shop.application_token)],
        onec_url=onec.url,
        onec_user=onec.user,
        onec_password=SecretStr(onec.password),
        inbound_token=SecretStr(secrets.token_urlsafe(18)),
        admin_token=SecretStr(admin),
        exchange_user="exchange",
        exchange_password=SecretStr(secrets.token_urlsafe(12)),  # what 1C's exchange node is set up with
        mappings_dir=DEFAULTS_DIR,
        poll_interval=10.0,
        retry_min_delay=0.5,
        retry_max_delay=2.0,
        host=HOST,
        port=int(environ.get("PORT") or 8000),
        log_level="WARNING",  # the narration tells the story; the processes' own lines only when something is wrong
    )
    return Sandbox(shop, onec, settings, [shop_server, onec_server], onec_base)


def banner(sandbox: Sandbox) -> str:
    s = sandbox.settings
    admin = s.admin_token.get_secret_value() if s.admin_token else ""
    inbound = s.inbound_token.get_secret_value() if s.inbound_token else ""
    url = sandbox.bridge_url
    return "\n".join(
        [
            "bridge demo: the bridge, an emulated 1C-Bitrix shop and an emulated 1C, all in this process.",
            f"  bridge            {url}   (/readyz, /metrics, /openapi.json)",
            f"  operator console  {url}/console",
            f"  admin token       {admin}",
            f"  sync log          curl -H 'Authorization: Bearer {admin}' '{url}/admin/log?entity=order'",
            f"  1C received       {sandbox.onec_base}/sandbox/documents",
            f"  1C → bridge       POST {url}/1c/stock, /1c/prices, /1c/order-status "
            f"with 'Authorization: Bearer {inbound}'",
            f"  1C exchange node  {url}/1c/exchange  user {s.exchange_user}, password "
            f"{s.exchange_password.get_secret_value() if s.exchange_password else ''}",
            "  Nothing is kept: Redis is in memory. Ctrl-C stops the demo.",
        ]
    )


def wait(condition: Callable[[], Any], stop: threading.Event, timeout: float = 60.0) -> Any:
    """Poll ``condition`` until it holds; None when the deadline passes or the demo is stopping."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        stop.wait(0.2)
    return None


class Script:
    """The traffic the demo plays, in a thread beside the bridge; ends when ``stop`` is set."""

    def __init__(self, sandbox: Sandbox, stop: threading.Event) -> None:
        self.sandbox = sandbox
        self.stop = stop
        self.client = httpx.Client(base_url=sandbox.bridge_url, timeout=10)
        self.next_item = 0

    def run(self) -> None:
        try:
            if not wait(lambda: self.client.get("/healthz").status_code == 200, self.stop):
                return
            narrate(banner(self.sandbox))
            self.order_reaches_1c()
            self.maintenance()
            self.push_stock_and_prices()
            self.catalog_exchange()
            narrate(f"the script is done; a new order every {REPEAT_SECONDS:.0f} s from now on. Ctrl-C stops.")
            while not self.stop.wait(REPEAT_SECONDS):
                self.order_reaches_1c()
                self.sandbox.shop.clear_records()  # the emulator's request log would grow without end
        except Exception as exc:  # the story stops; the bridge keeps serving
            narrate(f"the demo's script stopped: {exc!r}")
        finally:
            self.client.close()

    def place_order(self) -> dict[str, Any]:
        product_id, _, _, name, price = CATALOGUE[self.next_item % len(CATALOGUE)]
        self.next_item += 1
        order = self.sandbox.shop.add_order(items=[{"product_id": product_id, "name": name, "price": price}])
        narrate(f"order {order['accountNumber']} placed in the shop ({name}, {order['price']:.2f} RUB)")
        self.sandbox.shop.fire_event(f"{self.sandbox.bridge_url}/shop/events", "ONSALEORDERSAVED", order["id"])
        narrate(f"order {order['accountNumber']} → the shop's webhook reached the bridge; queued")
        return order

    def delivered(self, order: dict[str, Any]) -> bool:
        number = order["accountNumber"]
        if wait(lambda: number in self.sandbox.onec.documents, self.stop):
            document = self.sandbox.onec.documents[number]
            narrate(
                f"order {number} → fetched from the shop → delivered to 1C as document {document.get('Number')} "
                f"({len(document.get('Goods', []))} line(s), {document.get('DocumentAmount')} "
                f"{document.get('Currency', '')})"
            )
            return True
        return False

    def order_reaches_1c(self) -> None:
        self.delivered(self.place_order())

    def circuit(self) -> str:
        return str(self.client.get("/readyz").json().get("onec", {}).get("circuit", ""))

    def maintenance(self) -> None:
        onec = self.sandbox.onec
        onec.lock()
        narrate("1C is locked (maintenance: «Начало сеанса с информационной базой запрещено»)")
        order = self.place_order()
        if wait(lambda: self.circuit() == "open", self.stop, timeout=30):
            narrate(f"order {order['accountNumber']} → 1C refused: locked; the bridge holds it and retries (/readyz)")
        narrate(f"waiting {LOCK_SECONDS:.0f} s …")
        self.stop.wait(LOCK_SECONDS)
        onec.unlock()
        narrate("1C is back")
        self.delivered(order)

    def catalog_exchange(self) -> None:
        """1C's standard exchange node sends its catalogue (CommerceML 2): one new product, a new price."""
        guid, article, name, price = NEW_PRODUCT
        group = Group(id="b1a7c0de-0000-4000-8000-000000009009", name="Бытовая техника", parent_id=None)
        goods = [
            Product(id=xml_id, name=title, digest="", article=code, group_ids=(group.id,))
            for _, xml_id, code, title, _ in CATALOGUE
        ] + [Product(id=guid, name=name, digest="", article=article, group_ids=(group.id,), unit_code="796")]
        price_type = PriceType(id=PRICE_TYPE_GUID, name="Розничная", currency="RUB")
        store = Warehouse(id=STORE_GUID, name="Основной склад")
        offers = [
            Offer(
                id=product.id,
                digest="",
                prices=(Price(PRICE_TYPE_GUID, Decimal(str(value)) if product.id != guid else price, "RUB"),),
                stock=((STORE_GUID, Decimal(5)),),
            )
            for product, value in zip(goods, [p[4] + 90 for p in CATALOGUE] + [float(price)], strict=True)
        ]
        files = {
            "import.xml": commerceml.catalog_xml(goods, [group]),
            "offers.xml": commerceml.offers_xml(offers, [price_type], [store]),
        }
        narrate(f"1C's exchange node sends its catalogue (CommerceML 2) to {self.sandbox.bridge_url}/1c/exchange")
        client = httpx.Client(base_url=self.sandbox.bridge_url, timeout=30, headers={"User-Agent": "1C+Enterprise/8.3"})
        password = self.sandbox.settings.exchange_password
        exchange = OnecExchange(client, "exchange", password.get_secret_value() if password else "")
        try:
            finals = exchange.run_catalog(files)
        finally:
            client.close()
        for file_name, reply in finals.items():
            narrate(f"  import {file_name} → {reply.status}: {reply.message}")
        shop = self.sandbox.shop
        if wait(lambda: shop.product_by_xml(guid), self.stop):
            narrate(f"the shop now has a new product from 1C: {name} ({article}), only the changes were written")

    def push_stock_and_prices(self) -> None:
        token = self.sandbox.settings.inbound_token
        headers = {"Authorization": f"Bearer {token.get_secret_value() if token else ''}"}
        product_id, xml_id, article, name, price = CATALOGUE[0]
        stock = {"items": [{"xml_id": xml_id, "store_id": STORE_ID, "amount": 7}]}
        prices = {"items": [{"xml_id": xml_id, "price_type_id": PRICE_TYPE_ID, "price": price + 90, "currency": "RUB"}]}
        narrate(f"1C pushes stock and price of {article}: POST /1c/stock {json.dumps(stock, ensure_ascii=False)}")
        for path, body in (("/1c/stock", stock), ("/1c/prices", prices)):
            answer = self.client.post(path, json=body, headers=headers)
            narrate(f"  {path} → {answer.status_code} {answer.text}")
        shop = self.sandbox.shop
        if wait(lambda: shop.amount(product_id, STORE_ID) == 7, self.stop):
            narrate(f"the shop now has {name}: 7 in store {STORE_ID}")
        wanted = price + 90
        if wait(lambda: (shop.price_of(product_id, PRICE_TYPE_ID) or {}).get("price") == wanted, self.stop):
            narrate(f"the shop's price of {name} is now {wanted:.2f} RUB")


def run_demo() -> int:
    """Everything until SIGINT or SIGTERM; exit code 0 then (``bridge.serve`` owns the stopping)."""
    from bridge import logs
    from bridge.serve import serve

    # A taken port ends the demo with its one line before any emulator starts or a word is narrated.
    listen(HOST, int(os.environ.get("PORT") or 8000), "demo").close()
    sandbox = build()
    logs.configure(sandbox.settings, "demo")
    stop = threading.Event()
    script = threading.Thread(target=Script(sandbox, stop).run, name="demo-script", daemon=True)
    script.start()
    try:
        serve(sandbox.settings, command="demo")
    finally:
        stop.set()
        script.join(timeout=5)
        sandbox.stop()
        narrate("bridge demo stopped")
        sys.stdout.flush()
    return 0
