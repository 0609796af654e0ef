"""A bridge with 1C's exchange switched on, the shop emulator behind it, and 1C's exchange node in front.

The web app runs in-process (Starlette's TestClient, a real redis-server); the import jobs run in this
process through ``BridgeSimpleWorker`` (``UpdatesEnv.run_jobs``) whenever the emulated 1C is told
``progress``, so a whole exchange runs in one test without sleeping.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bridge.exchange.model import Group, Offer, Price, PriceType, Product, Warehouse
from tests.exchange_files import catalog_xml, offers_xml
from tests.peers.onec_exchange import OnecExchange
from tests.updates_env import UpdatesEnv, make_env, write_mappings

USER = "site-exchange"
PASSWORD = "exchange-pass-0001"
RETAIL = "pt-retail-guid"
MAIN = "wh-main-guid"
MAPPINGS = f"""
[stores]
"{MAIN}" = 1
[price_types]
"{RETAIL}" = 1
"""


def exchange_env(redis_url: str, shop: Any, tmp_path: Path, **overrides: Any) -> UpdatesEnv:
    shop.add_store(store_id=1, title="Main")
    shop.add_price_type(price_type_id=1, name="Retail")
    mappings = write_mappings(tmp_path / "mappings", MAPPINGS)
    # No wait for the import job by default: the jobs run in this process only once 1C was told progress.
    values = {"exchange_user": USER, "exchange_password": PASSWORD, "exchange_import_wait": 0, **overrides}
    return make_env(redis_url, shop, mappings, **values)


def onec_for(env: UpdatesEnv, **fields: Any) -> OnecExchange:
    def work() -> None:
        env.run_jobs()

    return OnecExchange(env.client, USER, PASSWORD, on_progress=work, **fields)


GROUPS = (Group("g-furniture", "Мебель", None), Group("g-chairs", "Стулья", "g-furniture"))


def goods(count: int = 3) -> list[Product]:
    return [
        Product(f"item-{n}", f"Стул {n}", digest=f"d{n}", article=f"A-{n}", group_ids=("g-chairs",))
        for n in range(count)
    ]


def offers(count: int = 3, price: str = "100") -> list[Offer]:
    return [
        Offer(
            f"item-{n}",
            digest=f"o{n}",
            prices=(Price(RETAIL, Decimal(price) + n),),
            stock=((MAIN, Decimal(n + 1)),),
        )
        for n in range(count)
    ]


def export(count: int = 3, price: str = "100") -> dict[str, bytes]:
    """A goods file and an offers file as 1C names them, in the order it sends them."""
    return {
        "import0_1.xml": catalog_xml(goods(count), GROUPS),
        "offers0_1.xml": offers_xml(
            offers(count, price), (PriceType(RETAIL, "Розничная", "руб"),), (Warehouse(MAIN, "Основной склад"),)
        ),
    }
