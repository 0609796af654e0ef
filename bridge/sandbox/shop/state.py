"""The shop's data, switches and clock, which every area reads and writes.

The tables are here together, not in the areas that serve them, because the areas share them: an order's
basket reads the products' articles, an inventory document moves stock records. Each area module seeds its
own defaults (statuses, properties) in its mixin's ``__init__``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.sandbox.shop.wire import SHOP_TZ, iso

# The first id of each kind: a shop that has been trading for a while, so ids are not all small and alike.
FIRST_IDS = {
    "order": 300, "basket": 255, "property_value": 1001, "shipment": 1, "payment": 1, "product": 11,
    "store": 1, "store_product": 1, "price": 1, "price_type": 1, "property": 257, "value": 9735,
    "document": 1, "document_element": 1, "order_prop": 20, "delivery": 2,
}  # fmt: skip

Row = dict[str, Any]


class ShopState:
    """Identity, switches and tables of one emulated shop.

    ``lock`` guards everything: the uvicorn thread answers requests while the test thread arranges data.
    """

    def __init__(
        self,
        *,
        webhook_code: str = "k3y-s3cr3t-webhook",
        application_token: str = "app-token-0001",
        user_id: int = 1,
    ) -> None:
        self.webhook_code = webhook_code
        self.application_token = application_token
        self.user_id = user_id
        self.url = ""
        self.member_id = "d897063e1ce7c5eb9f04b9751eef5915"
        self.event_handler_id = "7"
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = lambda: datetime.now(SHOP_TZ)
        # switches
        self.legacy_200_errors = False  # old servers answer errors with HTTP 200
        self.storeproduct_writes = True  # catalog.storeproduct.add/update exist (not on every version)
        self.inventory_accounting = True  # catalog.document.mode.status; conduct refuses when off
        self.auth_error = "NO_AUTH_FOUND"  # or "INVALID_CREDENTIALS": which one a live shop sends is unknown
        self.latency = 0.0  # seconds added before each answer
        self.missing_scopes: set[str] = set()  # webhook scopes not granted ("sale", "catalog"): insufficient_scope
        # tables, by id
        self.orders: dict[int, Row] = {}
        self.statuses: dict[str, Row] = {}
        self.products: dict[int, Row] = {}
        self.product_properties: dict[int, Row] = {}
        self.stores: dict[int, Row] = {}
        self.store_products: dict[int, Row] = {}
        self.prices: dict[int, Row] = {}
        self.price_types: dict[int, Row] = {}
        # a product's own price and stock record ids: the writes check a product's few records, not every
        # row of a big catalogue (a record never moves to another product)
        self.price_ids_of: dict[int, set[int]] = {}
        self.stock_ids_of: dict[int, set[int]] = {}
        self.documents: dict[int, Row] = {}
        self.document_elements: dict[int, Row] = {}
        self._next_ids: dict[str, int] = dict(FIRST_IDS)

    def new_id(self, kind: str, explicit: int | None = None) -> int:
        """The next id of ``kind`` (a new kind starts at 1), or ``explicit``, which later ids then exceed."""
        if explicit is not None:
            self._next_ids[kind] = max(self._next_ids.get(kind, 1), explicit + 1)
            return explicit
        value = self._next_ids.get(kind, 1)
        self._next_ids[kind] = value + 1
        return value

    def own_rows(self, table: dict[int, Row], ids_of: dict[int, set[int]], product_id: int) -> list[Row]:
        """A product's own rows of ``table`` (its prices, its stock records) by id, through the index ``ids_of``."""
        return [table[i] for i in sorted(ids_of.get(product_id, ())) if i in table]

    def add_own_row(self, table: dict[int, Row], ids_of: dict[int, set[int]], row: Row) -> Row:
        """Keep ``row`` (with its ``id`` and ``productId``) in ``table`` and in its product's index."""
        table[row["id"]] = row
        ids_of.setdefault(row["productId"], set()).add(row["id"])
        return row

    def now(self) -> str:
        """The shop's current time as it writes it (ISO-8601, seconds, +03:00)."""
        return iso(self.clock())
