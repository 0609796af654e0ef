"""Emulator of a 1C-Bitrix shop's REST API, reached through an incoming webhook.

It reproduces the wire behaviour the bridge must cope with:
camelCase envelopes with the list under a named key, ``total``/``next`` paging by 50, numeric domain errors
with HTTP 400, system errors by HTTP status *and* body (or HTTP 200 on old servers), the leaky-bucket limit,
per-method operating-time pauses, ``batch`` with its PHP artefacts, ``catalog.price.modify`` deleting the
prices it is not given, and the outgoing-webhook payload. Test code arranges state and faults through the
``ShopEmulator`` methods; the bridge sees only HTTP.

Everything runs under one lock: the uvicorn thread answers requests while the test thread arranges data.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import email.parser
import email.policy
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bridge.shop import phpquery

SHOP_TZ = timezone(timedelta(hours=3))  # the shop's clock: Moscow time, as Russian shops usually run
PAGE_SIZE = 50  # fixed by Bitrix: there is no limit parameter
BATCH_LIMIT = 50
ARTICLE_CODE = "CML2_ARTICLE"
NOT_FOUND_ORDER = 200540400001

# ---------------------------------------------------------------------------------------------------------
# Field sets: a filter or order on a field outside these answers error 0, as the Bitrix ORM refuses
# unknown fields; this catches a bridge that filters on UPPER_SNAKE or misspelt names.

ORDER_FIELDS = (
    "id", "accountNumber", "statusId", "dateInsert", "dateUpdate", "dateStatus", "version", "price", "currency",
    "discountValue", "taxValue", "canceled", "dateCanceled", "reasonCanceled", "empCanceledId", "userDescription",
    "comments", "additionalInfo", "lid", "personTypeId", "personTypeXmlId", "payed", "deducted", "marked",
    "dateMarked", "reasonMarked", "empMarkedId", "userId", "responsibleId", "empStatusId", "companyId", "xmlId",
    "id1c", "version1c", "updated1c", "externalOrder", "lockedBy", "dateLock", "orderTopic", "recountFlag",
    "recurringId", "affiliateId", "statusXmlId",
)  # fmt: skip
ORDER_NESTED = ("basketItems", "propertyValues", "shipments", "payments", "clients", "requisiteLink", "tradeBindings")
ORDER_UPDATABLE_FIELDS = (  # the fields sale.order.update accepts
    "price", "discountValue", "statusId", "empStatusId", "dateInsert", "marked", "empMarkedId", "reasonMarked",
    "userDescription", "additionalInfo", "comments", "responsibleId", "recurringId", "lockedBy", "recountFlag",
    "affiliateId", "updated1c", "orderTopic", "xmlId", "id1c", "version1c", "externalOrder", "canceled",
    "empCanceledId", "reasonCanceled",
)  # fmt: skip
ORDER_UPDATABLE = frozenset(ORDER_UPDATABLE_FIELDS)
STATUS_FIELDS = ("id", "type", "sort", "notify", "color", "xmlId")
STORE_FIELDS = (
    "id", "title", "active", "address", "description", "code", "xmlId", "sort", "issuingCenter", "shippingCenter",
    "isDefault", "dateCreate", "dateModify",
)  # fmt: skip
STORE_PRODUCT_FIELDS = ("id", "productId", "storeId", "amount", "quantityReserved")
PRICE_FIELDS = (
    "id", "productId", "catalogGroupId", "price", "currency", "extraId", "priceScale", "quantityFrom",
    "quantityTo", "timestampX",
)  # fmt: skip
PRICE_TYPE_FIELDS = ("id", "name", "base", "sort", "xmlId", "dateCreate", "timestampX")
PRODUCT_FIELDS = (
    "id", "iblockId", "name", "code", "xmlId", "active", "available", "type", "quantity", "quantityReserved",
    "purchasingPrice", "purchasingCurrency", "sort", "dateCreate", "timestampX",
)  # fmt: skip
PRODUCT_UPDATABLE = frozenset(PRODUCT_FIELDS) - {"id", "iblockId", "available", "type", "dateCreate", "timestampX"}
PROPERTY_FIELDS = ("id", "iblockId", "name", "code", "active", "propertyType", "multiple", "sort", "xmlId")
DOCUMENT_FIELDS = (
    "id", "docType", "docNumber", "title", "status", "currency", "responsibleId", "createdBy", "total",
    "commentary", "siteId", "dateCreate", "dateModify", "dateStatus", "dateDocument",
)  # fmt: skip
DOCUMENT_ELEMENT_FIELDS = ("id", "docId", "elementId", "storeFrom", "storeTo", "amount", "purchasingPrice")
_PROPERTY_KEY = re.compile(r"^property\d+$")

DEFAULT_STATUSES = (  # the shipped UT 11-style table (mappings/statuses.toml) plus two shipment statuses
    ("N", "O", 10, "#BEEDF1"),
    ("P", "O", 20, "#F1C5BE"),
    ("D", "O", 30, "#C2F1BE"),
    ("F", "O", 40, "#BEF1E3"),
    ("FF", "O", 50, "#B6C4E8"),
    ("C", "O", 60, "#E8B6B6"),
    ("DN", "D", 10, "#BEEDF1"),
    ("DF", "D", 20, "#C2F1BE"),
)
DEFAULT_ORDER_PROPERTIES = (  # (code, orderPropsId, name, default value)
    ("FIO", 1, "Full name", "Иванов Иван Иванович"),
    ("EMAIL", 2, "E-mail", "ivanov@example.ru"),
    ("PHONE", 3, "Phone", "+7 900 123-45-67"),
    ("INN", 4, "INN", ""),
    ("COMPANY", 5, "Company", ""),
    ("ADDRESS", 6, "Address", "г. Москва, ул. Тверская, д. 1, кв. 5"),
)
DEFAULT_ITEM: dict[str, Any] = {"product_id": 11, "name": "Чайник электрический", "price": 1500.0, "quantity": 2}


class ShopError(Exception):
    """An error answer: ``{"error": ..., "error_description": ...}`` with its HTTP status."""

    def __init__(self, error: str | int, description: str = "", status: int = 400, **extra: Any) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description, **self.extra}


@dataclass
class Answer:
    """What a method returns: ``result`` and, for lists, ``total`` and (only when more pages exist) ``next``."""

    result: Any
    total: int | None = None
    next: int | None = None


# ---------------------------------------------------------------------------------------------------------
# Small value helpers


def _iso(moment: datetime) -> str:
    return moment.astimezone(SHOP_TZ).isoformat(timespec="seconds")


def _time_block(started: float, *, reset_at: float | None = None) -> dict[str, Any]:
    finish = time.time()
    return {
        "start": started,
        "finish": finish,
        "duration": finish - started,
        "processing": finish - started,
        "date_start": _iso(datetime.fromtimestamp(started, SHOP_TZ)),
        "date_finish": _iso(datetime.fromtimestamp(finish, SHOP_TZ)),
        "operating_reset_at": reset_at if reset_at is not None else int(started) + 600,
        "operating": 0,
    }


_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _parse_datetime(value: Any) -> datetime | None:
    """ISO-8601 with or without offset (naive means shop time); None if it is not a date."""
    if not isinstance(value, str) or not _DATETIME.match(value.strip()):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHOP_TZ)


def _number(value: Any, name: str) -> int | float:
    """A JSON or form value as a number (form values arrive as strings); ints stay ints."""
    if isinstance(value, bool):
        raise ShopError(0, f"Invalid value of field {name}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ShopError(0, f"Invalid value of field {name}") from None
    if isinstance(value, int) or (isinstance(value, str) and number.is_integer() and "." not in value):
        return int(number)
    return number


def _int(value: Any, name: str) -> int:
    number = _number(value, name)
    if isinstance(number, float) and not number.is_integer():
        raise ShopError(0, f"Invalid value of field {name}")
    return int(number)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "y", "yes"}


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def _php_map(mapping: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """json_encode of a PHP array: [] when empty, a JSON list when the keys are "0".."n-1" in order."""
    if not mapping:
        return []
    if list(mapping) == [str(i) for i in range(len(mapping))]:
        return list(mapping.values())
    return mapping


def _like_existing(existing: Any, value: Any, name: str) -> Any:
    """Coerce a form-encoded string to the type the field already holds."""
    if isinstance(existing, bool) or not isinstance(value, str):
        return value
    if isinstance(existing, int):
        return _int(value, name)
    if isinstance(existing, float):
        return float(_number(value, name))
    return value


# ---------------------------------------------------------------------------------------------------------
# select / filter / order / start, shared by every list method

_OPERATORS = sorted(
    ("!@", "!=%", "!%=", "=%", "%=", "!%", ">=", "<=", "!=", ">", "<", "@", "=", "!", "%"), key=len, reverse=True
)


def _split_key(key: str) -> tuple[str, str]:
    for operator in _OPERATORS:
        if key.startswith(operator):
            return operator, key[len(operator) :]
    return "=", key


def _scalar(value: Any) -> Any:
    """An iblock property value ``{"value": …, "valueId": …}`` compares by its value."""
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    return value


def _pair(current: Any, wanted: Any) -> tuple[Any, Any] | None:
    """Both sides in one comparable type (numbers, datetimes or strings), or None when incomparable."""
    if current is None or wanted is None or isinstance(wanted, dict | list):
        return None
    if isinstance(current, bool):
        current = "Y" if current else "N"
    if isinstance(wanted, bool):
        wanted = "Y" if wanted else "N"
    if isinstance(current, int | float):
        try:
            return float(current), float(wanted)
        except (TypeError, ValueError):
            raise ShopError(0, f"Invalid filter value {wanted!r}") from None
    if isinstance(current, str) and (moment := _parse_datetime(current)) is not None:
        other = _parse_datetime(str(wanted))
        if other is None:
            raise ShopError(0, f"Invalid date value {wanted!r}")
        return moment, other
    return str(current), str(wanted)


def _equal(current: Any, wanted: Any) -> bool:
    if isinstance(current, list):
        return any(_equal(item, wanted) for item in current)
    if current is None or current == "":
        return wanted is None or wanted == "" or wanted is False
    pair = _pair(current, wanted)
    return pair is not None and pair[0] == pair[1]


def _like(current: Any, pattern: str, *, explicit: bool) -> bool:
    if current is None:
        return False
    if isinstance(current, list):
        return any(_like(item, pattern, explicit=explicit) for item in current)
    text = str(current).lower()
    if not explicit:
        return pattern.lower() in text
    regex = "^" + ".*".join(re.escape(part) for part in pattern.lower().split("%")) + "$"
    return re.match(regex, text, re.DOTALL) is not None


def _matches(item: dict[str, Any], key: str, wanted: Any) -> bool:
    operator, field = _split_key(key)
    current = _scalar(item.get(field))
    if operator in ("@", "!@") or (operator in ("=", "!", "!=") and isinstance(wanted, list | dict)):
        hit = any(_equal(current, value) for value in _as_list(wanted))
        return not hit if operator.startswith("!") else hit
    if operator in ("=", "!", "!="):
        return _equal(current, wanted) != (operator != "=")
    if operator in ("%", "!%"):
        return _like(current, str(wanted), explicit=False) != (operator == "!%")
    if operator in ("=%", "%=", "!=%", "!%="):
        return _like(current, str(wanted), explicit=True) != operator.startswith("!")
    if isinstance(current, list):
        return any(_matches({field: value}, key, wanted) for value in current)
    pair = _pair(current, wanted)
    if pair is None:
        return False
    left, right = pair
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[operator]


def _sort_key(value: Any) -> tuple[int, Any]:
    value = _scalar(value)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, float(value))
    if (moment := _parse_datetime(value)) is not None:
        return (1, moment.timestamp())
    return (2, str(value))


def _check_fields(names: Iterable[str], known: Collection[str], dynamic: bool) -> None:
    for name in names:
        if name not in known and not (dynamic and _PROPERTY_KEY.match(name)):
            raise ShopError(0, f'Unknown field definition "{name}"')


def list_answer(
    items: Iterable[dict[str, Any]],
    params: dict[str, Any],
    *,
    key: str,
    fields: Collection[str],
    exclude: Collection[str] = (),
    dynamic: bool = False,
) -> Answer:
    """The shared body of every camelCase ``*.list`` method: filter, order, one page of 50, select."""
    select = [str(name) for name in _as_list(params.get("select"))]
    raw_filter = params.get("filter") or {}
    if not isinstance(raw_filter, dict):
        raise ShopError(0, "Parameter filter must be an object")
    raw_order = params.get("order") or {"id": "asc"}
    if not isinstance(raw_order, dict):
        raise ShopError(0, "Parameter order must be an object")
    start = _int(params.get("start") or 0, "start")
    _check_fields((_split_key(k)[1] for k in raw_filter), fields, dynamic)
    _check_fields(raw_order, fields, dynamic)

    rows = [item for item in items if all(_matches(item, k, v) for k, v in raw_filter.items())]
    for field, direction in reversed(list(raw_order.items())):
        rows.sort(key=lambda item, f=field: _sort_key(item.get(f)), reverse=str(direction).lower() == "desc")
    if start < 0:  # the fast mode of huge-data.md: no COUNT(*), no next
        page, total, next_start = rows[:PAGE_SIZE], 0, None
    else:
        page, total = rows[start : start + PAGE_SIZE], len(rows)
        next_start = start + PAGE_SIZE if start + PAGE_SIZE < total else None

    def project(item: dict[str, Any]) -> dict[str, Any]:
        if not select or "*" in select:
            return {k: copy.deepcopy(v) for k, v in item.items() if k not in exclude}
        out = {name: copy.deepcopy(item[name]) for name in select if name in item and name not in exclude}
        for name in select:  # a selected property without a value comes back as null
            if dynamic and _PROPERTY_KEY.match(name) and name not in out:
                out[name] = None
        return out

    return Answer({key: [project(item) for item in page]}, total=total, next=next_start)


# ---------------------------------------------------------------------------------------------------------


class ShopEmulator:
    """In-memory shop: catalog, orders, fault switches and a record of every call.

    Records: ``requests`` has one entry per HTTP request that reached ``/rest/`` (a batch is one entry,
    "batch"); ``commands`` has one entry per method the shop actually ran, including each command inside a
    batch, but not calls refused before running (auth, rate limit, overload, pause, ``fail_next``);
    ``status_counts`` counts the HTTP statuses answered.
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
        # switches
        self.legacy_200_errors = False
        self.storeproduct_writes = True
        self.inventory_accounting = True  # catalog.document.mode.status; conduct refuses when off
        self.auth_error = "NO_AUTH_FOUND"  # or "INVALID_CREDENTIALS": which one a live shop sends is unknown
        self.latency = 0.0
        self.clock: Callable[[], datetime] = lambda: datetime.now(SHOP_TZ)
        self.member_id = "d897063e1ce7c5eb9f04b9751eef5915"
        self.event_handler_id = "7"
        self.lock = threading.RLock()
        # data
        self.orders: dict[int, dict[str, Any]] = {}
        self.products: dict[int, dict[str, Any]] = {}
        self.stores: dict[int, dict[str, Any]] = {}
        self.store_products: dict[int, dict[str, Any]] = {}
        self.prices: dict[int, dict[str, Any]] = {}
        self.price_types: dict[int, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {
            sid: {"id": sid, "type": kind, "sort": sort, "notify": "Y", "color": color, "xmlId": None}
            for sid, kind, sort, color in DEFAULT_STATUSES
        }
        self.product_properties: dict[int, dict[str, Any]] = {}
        self.documents: dict[int, dict[str, Any]] = {}
        self.document_elements: dict[int, dict[str, Any]] = {}
        self._next_ids: dict[str, int] = {
            "order": 300, "basket": 255, "property_value": 1001, "shipment": 1, "payment": 1, "product": 11,
            "store": 1, "store_product": 1, "price": 1, "price_type": 1, "property": 257, "value": 9735,
            "document": 1, "document_element": 1, "order_prop": 20, "delivery": 2,
        }  # fmt: skip
        self._order_prop_ids: dict[str, int] = {code: pid for code, pid, _, _ in DEFAULT_ORDER_PROPERTIES}
        self._delivery_ids: dict[str, int] = {}
        self._add_property(1, "Бренд", "BRAND", property_id=257)
        self._add_property(1, "Артикул", ARTICLE_CODE, property_id=258)
        self._add_property(1, "Картинки", "MORE_PHOTO", property_id=259, multiple="Y", kind="F")
        # faults
        self._rate: float | None = None
        self._burst = 50
        self._level = 0.0
        self._level_at = time.monotonic()
        self._failures: dict[str, collections.deque[ShopError]] = {}
        self._paused_until: dict[str, float] = {}
        self._overload = False
        # records
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.status_counts: collections.Counter[int] = collections.Counter()
        self._methods: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "sale.order.get": self._sale_order_get,
            "sale.order.list": self._sale_order_list,
            "sale.order.update": self._sale_order_update,
            "sale.status.list": self._sale_status_list,
            "catalog.store.list": self._store_list,
            "catalog.storeproduct.list": self._store_product_list,
            "catalog.storeproduct.get": self._store_product_get,
            "catalog.storeproduct.add": self._store_product_add,
            "catalog.storeproduct.update": self._store_product_update,
            "catalog.product.list": self._product_list,
            "catalog.product.update": self._product_update,
            "catalog.productproperty.list": self._product_property_list,
            "catalog.price.list": self._price_list,
            "catalog.price.add": self._price_add,
            "catalog.price.update": self._price_update,
            "catalog.price.modify": self._price_modify,
            "catalog.pricetype.list": self._price_type_list,
            "catalog.document.add": self._document_add,
            "catalog.document.list": self._document_list,
            "catalog.document.element.add": self._document_element_add,
            "catalog.document.element.list": self._document_element_list,
            "catalog.document.conduct": self._document_conduct,
            "catalog.document.cancel": self._document_cancel,
            "catalog.document.mode.status": self._document_mode_status,
            "batch": self._batch,
            "methods": self._methods_list,
        }

    # -- ids and time --------------------------------------------------------------------------------------

    def _new_id(self, kind: str, explicit: int | None = None) -> int:
        if explicit is not None:
            self._next_ids[kind] = max(self._next_ids[kind], explicit + 1)
            return explicit
        value = self._next_ids[kind]
        self._next_ids[kind] = value + 1
        return value

    def now(self) -> str:
        """The shop's current time as it writes it (ISO-8601, seconds, +03:00)."""
        return _iso(self.clock())

    # -- arranging data ------------------------------------------------------------------------------------

    def add_order(
        self,
        *,
        account_number: str | None = None,
        status: str = "N",
        items: list[dict[str, Any]] | None = None,
        delivery: tuple[str, float] | None = ("Courier", 300.0),
        properties: dict[str, str] | None = None,
        discount: float = 0.0,
        currency: str = "RUB",
        comment: str = "",
    ) -> dict[str, Any]:
        """Create an order shaped as ``sale.order.get`` returns it; returns a copy."""
        with self.lock:
            order_id = self._new_id("order")
            account = account_number if account_number is not None else str(order_id)
            now = self.now()
            basket = [
                self._basket_item(order_id, item, currency) for item in (items if items is not None else [DEFAULT_ITEM])
            ]
            goods = sum(item["price"] * item["quantity"] for item in basket)
            delivery_price = float(delivery[1]) if delivery else 0.0
            total = round(goods + delivery_price - discount, 2)
            tax = sum(
                item["price"] * item["quantity"] * item["vatRate"] / (1 + item["vatRate"])
                for item in basket
                if item["vatRate"]
            )
            order: dict[str, Any] = {
                "id": order_id,
                "accountNumber": account,
                "statusId": status,
                "dateInsert": now,
                "dateUpdate": now,
                "dateStatus": now,
                "version": 1,
                "price": total,
                "currency": currency,
                "discountValue": float(discount),
                "taxValue": round(tax, 2),
                "canceled": "N",
                "dateCanceled": None,
                "reasonCanceled": "",
                "empCanceledId": None,
                "userDescription": comment,
                "comments": "",
                "additionalInfo": "",
                "lid": "s1",
                "personTypeId": 1,
                "personTypeXmlId": "",
                "payed": "N",
                "deducted": "N",
                "marked": "N",
                "dateMarked": None,
                "reasonMarked": "",
                "empMarkedId": None,
                "userId": 2,
                "responsibleId": self.user_id,
                "empStatusId": self.user_id,
                "companyId": None,
                "xmlId": f"bx_{uuid.uuid4().hex[:13]}",
                "id1c": "",
                "version1c": "",
                "updated1c": "N",
                "externalOrder": "N",
                "lockedBy": "",
                "dateLock": None,
                "orderTopic": "",
                "recountFlag": "Y",
                "recurringId": "",
                "affiliateId": None,
                "statusXmlId": "",
                "basketItems": basket,
                "propertyValues": self._property_values(properties or {}),
                "shipments": self._shipments(order_id, account, delivery, currency, basket),
                "payments": [
                    {
                        "id": self._new_id("payment"),
                        "orderId": order_id,
                        "accountNumber": f"{account}/1",
                        "paid": "N",
                        "datePaid": None,
                        "sum": total,
                        "currency": currency,
                        "paySystemId": 1,
                        "paySystemName": "Cash",
                        "isReturn": "N",
                    }
                ],
                "clients": [],
                "requisiteLink": [],  # an empty PHP array, as the docs show it
                "tradeBindings": [],
            }
            self.orders[order_id] = order
            return copy.deepcopy(order)

    def _basket_item(self, order_id: int, item: dict[str, Any], currency: str) -> dict[str, Any]:
        product_id = int(item.get("product_id", DEFAULT_ITEM["product_id"]))
        product = self.products.get(product_id, {})
        article = item["article"] if "article" in item else self._article_of(product) or f"ART-{product_id:03d}"
        xml_id = item.get("xml_id") or product.get("xmlId") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"p/{product_id}"))
        price = float(item.get("price", DEFAULT_ITEM["price"]))
        base_price = float(item.get("base_price", price))
        properties = [{"code": "PRODUCT.XML_ID", "name": "Product XML_ID", "value": xml_id}]
        properties.append({"code": "CATALOG.XML_ID", "name": "Catalog XML_ID", "value": "catalog-1"})
        if article:
            properties.append({"code": "ARTICLE", "name": "Article", "value": article})
        return {
            "id": str(self._new_id("basket")),  # strings here, ints elsewhere: as sale.order.get documents it
            "orderId": str(order_id),
            "productId": product_id,
            "productXmlId": xml_id,
            "catalogXmlId": "catalog-1",
            "name": item.get("name") or product.get("name") or DEFAULT_ITEM["name"],
            "price": price,
            "basePrice": base_price,
            "discountPrice": round(base_price - price, 2),
            "currency": currency,
            "quantity": item.get("quantity", 1),
            "measureCode": "796",
            "measureName": "шт",
            "vatRate": item.get("vat_rate", 0.2),
            "vatIncluded": "Y",
            "xmlId": f"bx_{uuid.uuid4().hex[:13]}",
            "properties": properties,
            "reservations": [],
        }

    def _property_values(self, overrides: dict[str, str]) -> list[dict[str, Any]]:
        values = {code: value for code, _, _, value in DEFAULT_ORDER_PROPERTIES}
        names = {code: name for code, _, name, _ in DEFAULT_ORDER_PROPERTIES}
        values.update(overrides)
        out = []
        for code, value in values.items():
            if code not in self._order_prop_ids:
                self._order_prop_ids[code] = self._new_id("order_prop")
            out.append(
                {
                    "id": self._new_id("property_value"),
                    "orderPropsId": self._order_prop_ids[code],
                    "orderPropsXmlId": None,
                    "code": code,
                    "name": names.get(code, code.replace("_", " ").capitalize()),
                    "value": value,
                }
            )
        return out

    def _shipments(
        self,
        order_id: int,
        account: str,
        delivery: tuple[str, float] | None,
        currency: str,
        basket: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        if not delivery:
            return []
        name, price = delivery
        if name not in self._delivery_ids:
            self._delivery_ids[name] = self._new_id("delivery")
        return [
            {
                "id": self._new_id("shipment"),
                "orderId": order_id,
                "accountNumber": f"{account}/2",
                "deliveryId": self._delivery_ids[name],
                "deliveryName": name,
                "priceDelivery": float(price),
                "basePriceDelivery": float(price),
                "currency": currency,
                "statusId": "DN",
                "system": "N",
                "deducted": "N",
                "allowDelivery": "N",
                "trackingNumber": "",
                "shipmentItems": [{"basketId": int(item["id"]), "quantity": item["quantity"]} for item in basket],
            }
        ]

    def update_order(self, order_id: int, **fields: Any) -> dict[str, Any]:
        """Change an order as a shop manager would (camelCase fields); bumps version and dateUpdate."""
        with self.lock:
            order = self.orders[order_id]
            self._apply_order_fields(order, fields)
            return copy.deepcopy(order)

    def _apply_order_fields(self, order: dict[str, Any], fields: dict[str, Any]) -> None:
        now = self.now()
        old_status, old_canceled = order["statusId"], order["canceled"]
        for name, value in fields.items():
            order[name] = _like_existing(order.get(name), value, name)
        order["version"] += 1
        order["dateUpdate"] = now
        if order["statusId"] != old_status:
            order["dateStatus"] = now
        if order["canceled"] != old_canceled:
            order["dateCanceled"] = now if order["canceled"] == "Y" else None

    def delete_order(self, order_id: int) -> None:
        with self.lock:
            del self.orders[order_id]

    def _add_property(
        self,
        iblock_id: int,
        name: str,
        code: str,
        *,
        property_id: int | None = None,
        multiple: str = "N",
        kind: str = "S",
    ) -> dict[str, Any]:
        prop = {
            "id": self._new_id("property", property_id),
            "iblockId": iblock_id,
            "name": name,
            "code": code,
            "active": "Y",
            "propertyType": kind,
            "multiple": multiple,
            "sort": 500,
            "xmlId": None,
        }
        self.product_properties[prop["id"]] = prop
        return prop

    def article_property_id(self, iblock_id: int = 1) -> int:
        """The id N of ``propertyN`` holding the article (``CML2_ARTICLE``) in that iblock."""
        with self.lock:
            for prop in self.product_properties.values():
                if prop["iblockId"] == iblock_id and prop["code"] == ARTICLE_CODE:
                    return int(prop["id"])
            return int(self._add_property(iblock_id, "Артикул", ARTICLE_CODE)["id"])

    def _article_of(self, product: dict[str, Any]) -> str | None:
        if not product:
            return None
        value = product.get(f"property{self.article_property_id(product['iblockId'])}")
        return value["value"] if isinstance(value, dict) else None

    def add_product(
        self,
        *,
        product_id: int | None = None,
        xml_id: str | None = None,
        article: str | None = None,
        iblock_id: int = 1,
        name: str = "Product",
    ) -> dict[str, Any]:
        """A catalog product; ``xmlId`` defaults to the id as text (as 1C-Bitrix does for manual products)."""
        with self.lock:
            pid = self._new_id("product", product_id)
            now = self.now()
            product: dict[str, Any] = {
                "id": pid,
                "iblockId": iblock_id,
                "name": name,
                "code": f"product-{pid}",
                "xmlId": xml_id if xml_id is not None else str(pid),
                "active": "Y",
                "available": "Y",
                "type": 1,
                "quantity": 0,
                "quantityReserved": 0,
                "purchasingPrice": None,
                "purchasingCurrency": None,
                "sort": 500,
                "dateCreate": now,
                "timestampX": now,
            }
            if article is not None:
                product[f"property{self.article_property_id(iblock_id)}"] = {
                    "value": article,
                    "valueId": str(self._new_id("value")),
                }
            self.products[pid] = product
            return copy.deepcopy(product)

    def add_store(
        self, *, store_id: int | None = None, code: str | None = None, xml_id: str | None = None, title: str = "Store"
    ) -> dict[str, Any]:
        with self.lock:
            sid = self._new_id("store", store_id)
            now = self.now()
            store = {
                "id": sid,
                "title": title,
                "active": "Y",
                "address": f"Warehouse street, {sid}",
                "description": "",
                "code": code,
                "xmlId": xml_id,
                "sort": 100,
                "issuingCenter": "N",
                "shippingCenter": "Y",
                "isDefault": "Y" if not self.stores else "N",
                "dateCreate": now,
                "dateModify": now,
            }
            self.stores[sid] = store
            return copy.deepcopy(store)

    def add_price_type(self, *, price_type_id: int | None = None, name: str = "BASE") -> dict[str, Any]:
        with self.lock:
            tid = self._new_id("price_type", price_type_id)
            now = self.now()
            price_type = {
                "id": tid,
                "name": name,
                "base": "Y" if not self.price_types else "N",
                "sort": 100 * (len(self.price_types) + 1),
                "xmlId": None,
                "dateCreate": now,
                "timestampX": now,
            }
            self.price_types[tid] = price_type
            return copy.deepcopy(price_type)

    def set_amount(self, product_id: int, store_id: int, amount: float) -> dict[str, Any]:
        """Set a stock record directly (as if a manager had edited it)."""
        with self.lock:
            record = self._store_product(product_id, store_id, create=True)
            record["amount"] = amount
            self._recount(product_id)
            return copy.deepcopy(record)

    def amount(self, product_id: int, store_id: int) -> float | None:
        """The stock of a product in a store, None when there is no record."""
        with self.lock:
            record = self._store_product(product_id, store_id)
            return None if record is None else record["amount"]

    def set_price(self, product_id: int, price_type_id: int, price: float, currency: str = "RUB") -> dict[str, Any]:
        """Create or change a price record directly."""
        with self.lock:
            for record in self.prices.values():
                if record["productId"] == product_id and record["catalogGroupId"] == price_type_id:
                    record.update(price=price, currency=currency, timestampX=self.now())
                    return copy.deepcopy(record)
            return copy.deepcopy(self._new_price(product_id, price_type_id, price, currency))

    def price_of(self, product_id: int, price_type_id: int) -> dict[str, Any] | None:
        with self.lock:
            for record in self.prices.values():
                if record["productId"] == product_id and record["catalogGroupId"] == price_type_id:
                    return copy.deepcopy(record)
            return None

    # -- faults --------------------------------------------------------------------------------------------

    def set_rate_limit(self, rate: float | None, burst: int = 50) -> None:
        """Leaky bucket: the level drains at ``rate``/s; a request that would lift it above ``burst`` gets 503."""
        with self.lock:
            self._rate, self._burst, self._level, self._level_at = rate, burst, 0.0, time.monotonic()

    @property
    def bucket_level(self) -> float:
        with self.lock:
            if self._rate is None:
                return 0.0
            return max(0.0, self._level - (time.monotonic() - self._level_at) * self._rate)

    def fail_next(self, method: str, *, error: str | int, status: int, description: str = "", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (alone or inside a batch) answer this error without running."""
        with self.lock:
            queue = self._failures.setdefault(method.lower(), collections.deque())
            queue.extend(ShopError(error, description, status) for _ in range(times))

    def pause_method(self, method: str, seconds: float) -> None:
        """429 OPERATION_TIME_LIMIT for ``method`` until now + seconds (``time.operating_reset_at`` says when)."""
        with self.lock:
            self._paused_until[method.lower()] = time.time() + seconds

    def set_overload(self, on: bool) -> None:
        """Every call answers 503 OVERLOAD_LIMIT (the manual block by Bitrix support)."""
        with self.lock:
            self._overload = on

    # -- records -------------------------------------------------------------------------------------------

    def count(self, method: str) -> int:
        """How many times the shop ran ``method`` (case-insensitive), batched or not."""
        with self.lock:
            return sum(1 for name, _ in self.commands if name.lower() == method.lower())

    def clear_records(self) -> None:
        with self.lock:
            self.requests.clear()
            self.commands.clear()
            self.status_counts.clear()

    # -- outgoing webhooks ---------------------------------------------------------------------------------

    def event_payload(self, event: str, order_id: int, *, token: str | None = None) -> dict[str, Any]:
        """The shop's outgoing-webhook payload, every value a string as on the wire."""
        event = event.upper()
        with self.lock:
            order = self.orders.get(order_id, {})
        fields: dict[str, str] = {"ID": str(order_id)}
        if event in ("ONSALEORDERSAVED", "ONSALEBEFOREORDERDELETE"):
            fields["XML_ID"] = str(order.get("xmlId") or "")
            fields["ACTION"] = "delete" if event == "ONSALEBEFOREORDERDELETE" else "save"
        parts = urlsplit(self.url) if self.url else None
        domain = parts.netloc if parts else "shop.example.ru"
        scheme = parts.scheme if parts else "https"
        return {
            "event": event,
            "event_handler_id": self.event_handler_id,
            "data": {"FIELDS": fields},
            "ts": str(int(time.time())),
            "auth": {
                "domain": domain,
                "client_endpoint": f"{scheme}://{domain}/rest/",
                "server_endpoint": "https://oauth.bitrix.info/rest/",
                "member_id": self.member_id,
                "application_token": self.application_token if token is None else token,
            },
        }

    def fire_event(
        self,
        target_url: str,
        event: str,
        order_id: int,
        *,
        token: str | None = None,
        duplicates: int = 1,
        as_json: bool = False,
    ) -> list[httpx.Response]:
        """POST the event to ``target_url`` ``duplicates`` times, form-encoded with percent-encoded brackets."""
        payload = self.event_payload(event, order_id, token=token)
        responses = []
        with httpx.Client(timeout=30) as client:
            for _ in range(duplicates):
                if as_json:
                    response = client.post(target_url, json=payload)
                else:
                    response = client.post(
                        target_url,
                        content=phpquery.build(payload).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                responses.append(response)
        return responses

    # -- the HTTP side -------------------------------------------------------------------------------------

    def handle(self, user_id: str, code: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one HTTP request: (status, JSON body)."""
        started = time.time()
        with self.lock:
            self.requests.append((method, copy.deepcopy(params)))
            try:
                if user_id != str(self.user_id) or not hmac.compare_digest(
                    code.encode("utf-8"), self.webhook_code.encode("utf-8")
                ):
                    raise ShopError(self.auth_error, "Wrong authorization data", 401)
                if self._overload:
                    raise ShopError("OVERLOAD_LIMIT", "REST API is blocked due to overload", 503)
                self._admit()
                answer = self._execute(method, params, nested=False)
            except ShopError as exc:
                return self._error_answer(exc)
            body: dict[str, Any] = {"result": answer.result}
            if answer.total is not None:
                body["total"] = answer.total
            if answer.next is not None:
                body["next"] = answer.next
            body["time"] = _time_block(started)
            self.status_counts[200] += 1
            return 200, body

    def refuse(self, method: str, description: str) -> tuple[int, dict[str, Any]]:
        """Answer a request whose body could not be read."""
        with self.lock:
            self.requests.append((method, {}))
            return self._error_answer(ShopError("INVALID_REQUEST", description, 400))

    def _error_answer(self, exc: ShopError) -> tuple[int, dict[str, Any]]:
        status = 200 if self.legacy_200_errors else exc.status
        self.status_counts[status] += 1
        return status, exc.body()

    def _admit(self) -> None:
        if self._rate is None:
            return
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._level_at) * self._rate)
        self._level_at = now
        if self._level + 1 > self._burst:
            raise ShopError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
        self._level += 1

    def _handler(self, name: str) -> Callable[[dict[str, Any]], Answer] | None:
        if not self.storeproduct_writes and name in ("catalog.storeproduct.add", "catalog.storeproduct.update"):
            return None
        return self._methods.get(name)

    def _execute(self, method: str, params: dict[str, Any], *, nested: bool) -> Answer:
        name = method.strip().lower().removesuffix(".json")
        if nested and name == "batch":
            raise ShopError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405)
        handler = self._handler(name)
        if handler is None:
            raise ShopError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        until = self._paused_until.get(name)
        if until is not None and until > time.time():
            raise ShopError(
                "OPERATION_TIME_LIMIT",
                f"Method {name} is blocked due to operation time limit.",
                429,
                time=_time_block(time.time(), reset_at=until) | {"operating": 480.0},
            )
        queue = self._failures.get(name)
        if queue:
            raise queue.popleft()
        if name != "batch":
            self.commands.append((method, copy.deepcopy(params)))
        return handler(params)

    # -- batch and methods ---------------------------------------------------------------------------------

    def _batch(self, params: dict[str, Any]) -> Answer:
        cmd = params.get("cmd") or {}
        if isinstance(cmd, list):  # ids 0..n-1 read back from a form body as a list
            cmd = {str(i): command for i, command in enumerate(cmd)}
        if not isinstance(cmd, dict):
            raise ShopError("INVALID_ARG_VALUE", "cmd must be a map of commands", 400)
        halt = _truthy(params.get("halt", 0))
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for index, (cmd_id, command) in enumerate(cmd.items()):
            started = time.time()
            try:
                if index >= BATCH_LIMIT:
                    raise ShopError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
                method, _, query = str(command).partition("?")
                try:
                    sub_params = phpquery.listify(phpquery.parse(query)) if query else {}
                except (phpquery.QueryError, UnicodeDecodeError) as exc:
                    raise ShopError("INVALID_ARG_VALUE", str(exc), 400) from None
                answer = self._execute(method, _substitute(sub_params, results), nested=True)
            except ShopError as exc:
                errors[str(cmd_id)] = exc.body()
                if halt:
                    break
                continue
            results[str(cmd_id)] = answer.result
            if answer.total is not None:
                totals[str(cmd_id)] = answer.total
            if answer.next is not None:
                nexts[str(cmd_id)] = answer.next
            times[str(cmd_id)] = _time_block(started)
        return Answer(
            {
                "result": _php_map(results),
                "result_error": _php_map(errors),
                "result_total": _php_map(totals),
                "result_next": _php_map(nexts),
                "result_time": _php_map(times),
            }
        )

    def _methods_list(self, params: dict[str, Any]) -> Answer:
        return Answer(sorted(name for name in self._methods if self._handler(name) is not None))

    # -- sale ----------------------------------------------------------------------------------------------

    @staticmethod
    def _required_id(params: dict[str, Any], name: str = "id") -> int:
        value = params.get(name)
        if value is None or value == "":
            raise ShopError(100, f"Required parameter '{name}' is not specified")
        return _int(value, name)

    @staticmethod
    def _required_fields(params: dict[str, Any]) -> dict[str, Any]:
        fields = params.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise ShopError(100, "Required parameter 'fields' is not specified or empty")
        return fields

    def _sale_order_get(self, params: dict[str, Any]) -> Answer:
        order = self.orders.get(self._required_id(params))
        if order is None:
            raise ShopError(NOT_FOUND_ORDER, "order does not exist")
        return Answer({"order": copy.deepcopy(order)})

    def _sale_order_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.orders.values(), params, key="orders", fields=ORDER_FIELDS, exclude=ORDER_NESTED)

    def _sale_order_update(self, params: dict[str, Any]) -> Answer:
        order_id = self._required_id(params)
        fields = self._required_fields(params)
        order = self.orders.get(order_id)
        if order is None:
            raise ShopError(NOT_FOUND_ORDER, "order does not exist")
        unknown = sorted(set(fields) - ORDER_UPDATABLE)
        if unknown:
            raise ShopError(0, f"Unknown or read-only fields: {', '.join(unknown)}")
        if "statusId" in fields:
            status = self.statuses.get(str(fields["statusId"]))
            if status is None or status["type"] != "O":
                raise ShopError(0, f"Order status {fields['statusId']!r} does not exist")
        self._apply_order_fields(order, fields)
        return Answer({"order": copy.deepcopy(order)})

    def _sale_status_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.statuses.values(), params, key="statuses", fields=STATUS_FIELDS)

    # -- stores and stock ----------------------------------------------------------------------------------

    def _store_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.stores.values(), params, key="stores", fields=STORE_FIELDS)

    def _store_product(self, product_id: int, store_id: int, *, create: bool = False) -> dict[str, Any] | None:
        for record in self.store_products.values():
            if record["productId"] == product_id and record["storeId"] == store_id:
                return record
        if not create:
            return None
        record = {
            "id": self._new_id("store_product"),
            "productId": product_id,
            "storeId": store_id,
            "amount": 0,
            "quantityReserved": 0,
        }
        self.store_products[record["id"]] = record
        return record

    def _recount(self, product_id: int) -> None:
        """With inventory accounting, a product's quantity is the sum over its stores."""
        product = self.products.get(product_id)
        if product is not None:
            product["quantity"] = sum(r["amount"] for r in self.store_products.values() if r["productId"] == product_id)

    def _store_product_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.store_products.values(), params, key="storeProducts", fields=STORE_PRODUCT_FIELDS)

    def _store_product_get(self, params: dict[str, Any]) -> Answer:
        record = self.store_products.get(self._required_id(params))
        if record is None:
            raise ShopError(0, "Store product does not exist")
        return Answer({"storeProduct": copy.deepcopy(record)})

    def _store_product_add(self, params: dict[str, Any]) -> Answer:
        fields = self._required_fields(params)
        missing = [name for name in ("productId", "storeId", "amount") if fields.get(name) in (None, "")]
        if missing:
            raise ShopError(0, f"Required fields: {', '.join(missing)}")
        product_id, store_id = _int(fields["productId"], "productId"), _int(fields["storeId"], "storeId")
        if product_id not in self.products:
            raise ShopError(0, "Product does not exist")
        if store_id not in self.stores:
            raise ShopError(0, "Store does not exist")
        if self._store_product(product_id, store_id) is not None:
            raise ShopError(0, "Store product already exists")
        record = self._store_product(product_id, store_id, create=True)
        assert record is not None
        record["amount"] = _number(fields["amount"], "amount")
        self._recount(product_id)
        return Answer({"storeProduct": copy.deepcopy(record)})

    def _store_product_update(self, params: dict[str, Any]) -> Answer:
        record = self.store_products.get(self._required_id(params))
        fields = self._required_fields(params)
        if record is None:
            raise ShopError(0, "Store product does not exist")
        for name, value in fields.items():
            if name not in ("amount", "quantityReserved"):
                raise ShopError(0, f"Field {name} cannot be changed")
            record[name] = _number(value, name)
        self._recount(record["productId"])
        return Answer({"storeProduct": copy.deepcopy(record)})

    # -- products ------------------------------------------------------------------------------------------

    def _product_list(self, params: dict[str, Any]) -> Answer:
        raw_filter = params.get("filter")
        select = [str(name) for name in _as_list(params.get("select"))]
        if not isinstance(raw_filter, dict) or raw_filter.get("iblockId") in (None, ""):
            raise ShopError(0, "Required filter fields: iblockId")
        if "id" not in select or "iblockId" not in select:
            raise ShopError(0, "Required select fields: id, iblockId")
        return list_answer(self.products.values(), params, key="products", fields=PRODUCT_FIELDS, dynamic=True)

    def _product_update(self, params: dict[str, Any]) -> Answer:
        product = self.products.get(self._required_id(params))
        fields = self._required_fields(params)
        if product is None:
            raise ShopError(0, "Product with the specified identifier does not exist")
        for name, value in fields.items():
            if _PROPERTY_KEY.match(name):
                product[name] = value if isinstance(value, dict) else {"value": value, "valueId": None}
            elif name in PRODUCT_UPDATABLE:
                existing = product.get(name)
                numeric = name in ("quantity", "quantityReserved", "purchasingPrice")
                product[name] = _number(value, name) if numeric else _like_existing(existing, value, name)
            else:
                raise ShopError(0, f"Field {name} cannot be changed")
        product["timestampX"] = self.now()
        return Answer({"element": copy.deepcopy(product)})

    def _product_property_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.product_properties.values(), params, key="productProperties", fields=PROPERTY_FIELDS)

    # -- prices --------------------------------------------------------------------------------------------

    def _new_price(self, product_id: int, price_type_id: int, price: float, currency: str) -> dict[str, Any]:
        record = {
            "id": self._new_id("price"),
            "productId": product_id,
            "catalogGroupId": price_type_id,
            "price": price,
            "currency": currency,
            "extraId": None,
            "priceScale": price,
            "quantityFrom": None,
            "quantityTo": None,
            "timestampX": self.now(),
        }
        self.prices[record["id"]] = record
        return record

    def _price_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.prices.values(), params, key="prices", fields=PRICE_FIELDS)

    def _price_type_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.price_types.values(), params, key="priceTypes", fields=PRICE_TYPE_FIELDS)

    def _check_price_target(self, product_id: int, price_type_id: int) -> None:
        if product_id not in self.products:
            raise ShopError(0, "Product does not exist")
        if price_type_id not in self.price_types:
            raise ShopError(0, "Price type does not exist")

    def _price_add(self, params: dict[str, Any]) -> Answer:
        fields = self._required_fields(params)
        missing = [n for n in ("productId", "catalogGroupId", "price", "currency") if fields.get(n) in (None, "")]
        if missing:
            raise ShopError(0, f"Required fields: {', '.join(missing)}")
        product_id, type_id = _int(fields["productId"], "productId"), _int(fields["catalogGroupId"], "catalogGroupId")
        self._check_price_target(product_id, type_id)
        if any(p["productId"] == product_id and p["catalogGroupId"] == type_id for p in self.prices.values()):
            raise ShopError(0, "A price of this type already exists for the product")
        record = self._new_price(product_id, type_id, _number(fields["price"], "price"), str(fields["currency"]))
        return Answer({"price": copy.deepcopy(record)})

    def _price_update(self, params: dict[str, Any]) -> Answer:
        price_id = self._required_id(params)
        fields = self._required_fields(params)
        if fields.get("price") in (None, "") or fields.get("currency") in (None, ""):
            raise ShopError(0, "Required fields: price, currency")
        record = self.prices.get(price_id)
        if record is None:
            raise ShopError(0, "Price does not exist")
        record["price"] = record["priceScale"] = _number(fields["price"], "price")
        record["currency"] = str(fields["currency"])
        record["timestampX"] = self.now()
        return Answer({"price": copy.deepcopy(record)})

    def _price_modify(self, params: dict[str, Any]) -> Answer:
        """Replace a product's whole price collection: prices not named by id are deleted (the trap)."""
        fields = self._required_fields(params)
        product = fields.get("product")
        if not isinstance(product, dict) or product.get("id") in (None, ""):
            raise ShopError(0, "Required fields: product.id")
        product_id = _int(product["id"], "product.id")
        entries = _as_list(product.get("prices"))
        if not all(isinstance(entry, dict) for entry in entries):
            raise ShopError(0, "Each price must be an object")
        type_ids = [_int(e.get("catalogGroupId"), "catalogGroupId") for e in entries]
        if len(type_ids) != len(set(type_ids)):
            raise ShopError(0, "Duplicate price types in the price collection")
        kept: set[int] = set()
        for entry, type_id in zip(entries, type_ids, strict=True):
            self._check_price_target(product_id, type_id)
            price, currency = _number(entry.get("price"), "price"), str(entry.get("currency") or "")
            if entry.get("id") not in (None, ""):
                record = self.prices.get(_int(entry["id"], "id"))
                if record is None or record["productId"] != product_id:
                    raise ShopError(0, "Price does not exist")
                record.update(catalogGroupId=type_id, price=price, priceScale=price, currency=currency)
                record["timestampX"] = self.now()
            else:
                record = self._new_price(product_id, type_id, price, currency)
            kept.add(record["id"])
        for price_id in [pid for pid, p in self.prices.items() if p["productId"] == product_id and pid not in kept]:
            del self.prices[price_id]
        return Answer({"prices": [copy.deepcopy(p) for p in self.prices.values() if p["productId"] == product_id]})

    # -- inventory documents -------------------------------------------------------------------------------

    def _document_add(self, params: dict[str, Any]) -> Answer:
        fields = self._required_fields(params)
        missing = [n for n in ("docType", "currency", "responsibleId") if fields.get(n) in (None, "")]
        if missing:
            raise ShopError(0, f"Required fields: {', '.join(missing)}")
        if fields["docType"] not in ("A", "S", "M", "R", "D"):
            raise ShopError(0, f"Unknown document type {fields['docType']!r}")
        now = self.now()
        document = {
            "id": self._new_id("document"),
            "docType": fields["docType"],
            "docNumber": fields.get("docNumber"),
            "title": fields.get("title"),
            "status": "N",
            "currency": fields["currency"],
            "responsibleId": _int(fields["responsibleId"], "responsibleId"),
            "createdBy": self.user_id,
            "total": 0,
            "commentary": fields.get("commentary"),
            "siteId": "s1",
            "dateCreate": now,
            "dateModify": now,
            "dateStatus": None,
            "dateDocument": fields.get("dateDocument", now),
        }
        self.documents[document["id"]] = document
        return Answer({"document": copy.deepcopy(document)})

    def _document_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(self.documents.values(), params, key="documents", fields=DOCUMENT_FIELDS)

    def _document_element_add(self, params: dict[str, Any]) -> Answer:
        fields = self._required_fields(params)
        missing = [n for n in ("docId", "elementId", "amount") if fields.get(n) in (None, "")]
        if missing:
            raise ShopError(0, f"Required fields: {', '.join(missing)}")
        document = self.documents.get(_int(fields["docId"], "docId"))
        if document is None:
            raise ShopError(0, "Document does not exist")
        if document["status"] == "Y":
            raise ShopError(0, "Conducted document cannot be changed")
        element = {
            "id": self._new_id("document_element"),
            "docId": document["id"],
            "elementId": _int(fields["elementId"], "elementId"),
            "storeFrom": _int(fields["storeFrom"], "storeFrom") if fields.get("storeFrom") else None,
            "storeTo": _int(fields["storeTo"], "storeTo") if fields.get("storeTo") else None,
            "amount": _number(fields["amount"], "amount"),
            "purchasingPrice": _number(fields["purchasingPrice"], "purchasingPrice")
            if fields.get("purchasingPrice") not in (None, "")
            else None,
        }
        self.document_elements[element["id"]] = element
        return Answer({"documentElement": copy.deepcopy(element)})

    def _document_element_list(self, params: dict[str, Any]) -> Answer:
        return list_answer(
            self.document_elements.values(), params, key="documentElements", fields=DOCUMENT_ELEMENT_FIELDS
        )

    def _document_deltas(self, document: dict[str, Any], sign: int) -> dict[tuple[int, int], float]:
        """(product, store) → change of amount when the document is conducted (sign=1) or cancelled (-1)."""
        deltas: dict[tuple[int, int], float] = collections.defaultdict(float)
        for element in self.document_elements.values():
            if element["docId"] != document["id"]:
                continue
            kind, amount = document["docType"], element["amount"]
            targets: list[tuple[int | None, float]] = []
            if kind in ("A", "S", "R", "M"):
                targets.append((element["storeTo"], amount))
            if kind in ("D", "M"):
                targets.append((element["storeFrom"], -amount))
            for store_id, change in targets:
                if store_id is None or store_id not in self.stores:
                    raise ShopError(0, f"Store is not specified or does not exist (element {element['id']})")
                deltas[(element["elementId"], store_id)] += sign * change
        return deltas

    def _apply_deltas(self, deltas: dict[tuple[int, int], float]) -> None:
        for (product_id, store_id), change in deltas.items():
            record = self._store_product(product_id, store_id)
            if (record["amount"] if record else 0) + change < 0:
                raise ShopError(0, f"Insufficient quantity of product {product_id} in store {store_id}")
        for (product_id, store_id), change in deltas.items():
            record = self._store_product(product_id, store_id, create=True)
            assert record is not None
            total = record["amount"] + change
            record["amount"] = int(total) if float(total).is_integer() else total
            self._recount(product_id)

    def _document_conduct(self, params: dict[str, Any]) -> Answer:
        document = self.documents.get(self._required_id(params))
        if document is None:
            raise ShopError(0, "Document does not exist")
        if not self.inventory_accounting:
            raise ShopError(0, "Warehouse accounting must be enabled to conduct the document")
        if document["status"] == "Y":
            raise ShopError(0, "Document has already been conducted")
        self._apply_deltas(self._document_deltas(document, 1))
        document.update(status="Y", dateStatus=self.now())
        return Answer(True)

    def _document_cancel(self, params: dict[str, Any]) -> Answer:
        document = self.documents.get(self._required_id(params))
        if document is None:
            raise ShopError(0, "Document does not exist")
        if document["status"] != "Y":
            raise ShopError(0, "Document has not been conducted")
        self._apply_deltas(self._document_deltas(document, -1))
        document.update(status="C", dateStatus=self.now())
        return Answer(True)

    def _document_mode_status(self, params: dict[str, Any]) -> Answer:
        return Answer("Y" if self.inventory_accounting else "N")


_REFERENCE = re.compile(r"\$result\[([^\[\]]*)\]((?:\[[^\[\]]*\])*)")


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``$result[cmd][field]…`` by what an earlier batch command returned."""
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    if not isinstance(value, str) or "$result[" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:
        return _resolve(whole, results)
    return _REFERENCE.sub(lambda m: str(_resolve(m, results) or ""), value)


def _resolve(match: re.Match[str], results: dict[str, Any]) -> Any:
    node: Any = results.get(match.group(1))
    for part in re.findall(r"\[([^\[\]]*)\]", match.group(2)):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


# ---------------------------------------------------------------------------------------------------------
# Starlette app


async def _read_params(request: Request) -> dict[str, Any]:
    """Query string and body (JSON, urlencoded or multipart with PHP brackets) as one nested dict.

    The body wins over the query string when both name a parameter: which one Bitrix prefers is unknown.
    """
    params: dict[str, Any] = {}
    if request.url.query:
        params.update(phpquery.listify(phpquery.parse(request.url.query)))
    body = await request.body()
    if request.method != "POST" or not body.strip():
        return params
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or (not media and body.lstrip().startswith(b"{")):
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
    elif media == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        pairs = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name is not None and part.get_filename() is None:
                pairs.append((str(name), str(part.get_content()).rstrip("\r\n") if part.get_content() else ""))
        data = phpquery.listify(phpquery.parse_pairs(pairs))
    else:
        data = phpquery.listify(phpquery.parse(body))
    params.update(data)
    return params


def create_shop_app(emulator: ShopEmulator) -> Starlette:
    """``/rest/{user_id}/{webhook_code}/{method}[.json][/]``; ``/rest/{method}`` (OAuth form) gets 401."""

    async def rest(request: Request) -> JSONResponse:
        user_id = request.path_params.get("user_id", "")
        code = request.path_params.get("code", "")
        method = request.path_params["method"].strip("/").removesuffix(".json")
        try:
            params = await _read_params(request)
        except (ValueError, phpquery.QueryError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            status, body = emulator.refuse(method, f"Malformed request: {exc}")
            return JSONResponse(body, status_code=status)
        if emulator.latency:
            await asyncio.sleep(emulator.latency)
        status, body = emulator.handle(user_id, code, method, params)
        return JSONResponse(body, status_code=status)

    routes = [
        Route("/rest/{user_id}/{code}/{method:path}", rest, methods=["GET", "POST"]),
        Route("/rest/{method:path}", rest, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)
