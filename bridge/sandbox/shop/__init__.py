"""Emulator of a 1C-Bitrix shop's REST API, reached through an incoming webhook.

It reproduces the wire behaviour the bridge must cope with: camelCase envelopes with the list under a named
key, ``total``/``next`` paging by 50, numeric domain errors with HTTP 400, system errors by HTTP status
*and* body (or HTTP 200 on old servers), the leaky-bucket limit, per-method operating-time pauses, ``batch``
with its PHP artefacts, ``catalog.price.modify`` deleting the prices it is not given, and the
outgoing-webhook payload. Test code arranges state and faults through the ``ShopEmulator`` methods; the
bridge sees only HTTP.

The package is cut by area of the shop's API, because that is how it grows (the catalogue's sections and
images come next). Each area module (``sale``, ``catalog``, ``stock``, ``prices``, ``documents``) holds
its field sets, a mixin with the methods tests use to arrange its data, and a ``METHODS`` table of its REST
handlers, plain functions ``(shop, params) -> Answer``. A new group of methods is one new module listed in
``emulator.AREAS`` (and its mixin among ``ShopEmulator``'s bases). What the areas share sits beneath them:
``state`` (the tables, ids and clock: shared because areas read each other's data), ``filters`` (the
select/filter/order/paging of every list), ``values`` and ``wire`` (parameter reading, answer shapes) and
``methods`` (the tables). Across them sit ``faults`` (refusals tests switch on), ``batch``, ``events`` (the
outgoing webhooks), ``emulator`` (one request from authentication to records) and ``app`` (HTTP).

Everything runs under one lock: the uvicorn thread answers requests while the test thread arranges data.
"""

from bridge.sandbox.shop.app import create_shop_app
from bridge.sandbox.shop.batch import BATCH_LIMIT
from bridge.sandbox.shop.catalog import ARTICLE_CODE, PRODUCT_FIELDS, PRODUCT_UPDATABLE, PROPERTY_FIELDS
from bridge.sandbox.shop.documents import DOCUMENT_ELEMENT_FIELDS, DOCUMENT_FIELDS
from bridge.sandbox.shop.emulator import ShopEmulator
from bridge.sandbox.shop.filters import PAGE_SIZE, list_answer, split_key
from bridge.sandbox.shop.prices import PRICE_FIELDS, PRICE_TYPE_FIELDS
from bridge.sandbox.shop.sale import (
    DEFAULT_ITEM,
    DEFAULT_ORDER_PROPERTIES,
    DEFAULT_STATUSES,
    NOT_FOUND_ORDER,
    ORDER_FIELDS,
    ORDER_NESTED,
    ORDER_UPDATABLE,
    ORDER_UPDATABLE_FIELDS,
    STATUS_FIELDS,
)
from bridge.sandbox.shop.stock import STORE_FIELDS, STORE_PRODUCT_FIELDS
from bridge.sandbox.shop.values import as_list
from bridge.sandbox.shop.wire import SHOP_TZ, Answer, ShopError

__all__ = [
    "ARTICLE_CODE",
    "BATCH_LIMIT",
    "DEFAULT_ITEM",
    "DEFAULT_ORDER_PROPERTIES",
    "DEFAULT_STATUSES",
    "DOCUMENT_ELEMENT_FIELDS",
    "DOCUMENT_FIELDS",
    "NOT_FOUND_ORDER",
    "ORDER_FIELDS",
    "ORDER_NESTED",
    "ORDER_UPDATABLE",
    "ORDER_UPDATABLE_FIELDS",
    "PAGE_SIZE",
    "PRICE_FIELDS",
    "PRICE_TYPE_FIELDS",
    "PRODUCT_FIELDS",
    "PRODUCT_UPDATABLE",
    "PROPERTY_FIELDS",
    "SHOP_TZ",
    "STATUS_FIELDS",
    "STORE_FIELDS",
    "STORE_PRODUCT_FIELDS",
    "Answer",
    "ShopEmulator",
    "ShopError",
    "as_list",
    "create_shop_app",
    "list_answer",
    "split_key",
]
