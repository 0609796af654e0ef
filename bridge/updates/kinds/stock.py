"""Stock from 1C into the shop, by the strategy the mappings choose (docs/reference.md).

- ``storeproduct`` (default): the stock record per (product, store) is found with
  ``catalog.storeproduct.list`` (its id is then cached) and set with ``catalog.storeproduct.update``, or
  created with ``catalog.storeproduct.add``. Absolute values: repeating one is harmless.
- ``document``: inventory documents, for shops whose stock may only change that way. 1C sends the target
  amount; the document carries the difference from the current amount, read fresh just before: increases
  go into one "S" document (goods receipt, ``storeTo``), decreases into one "D" document (write-off,
  ``storeFrom``), each conducted at the end of its batch.
- ``quantity``: ``catalog.product.update {"quantity"}``, for shops without inventory accounting. That
  quantity is per product, so it is set to the sum of the latest amounts 1C sent for each of its stores
  (kept in ``bridge:stock:quantity:<product id>``).

The module is the whole kind: the body 1C sends (``StockItem``), its pending key and value, the writer, and
``KIND`` at the end, which ties them together for the registry (``bridge.updates.kinds``).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from bridge import keys
from bridge.errors import PermanentError, TransientError
from bridge.runtime import Runtime
from bridge.shop.errors import ShopError
from bridge.shop.lists import ListCommand
from bridge.updates.catalog import find_records, shop_stores
from bridge.updates.intake.fast import KEY, NUMBER, PRODUCT_FIELDS, SHOP_ID
from bridge.updates.intake.models import PRODUCT_CHOICE, STRICT, TS_DESCRIPTION, Amount, Key, ShopId, Timestamp, one_of
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.refs import describe_product_in, named_ref, product_ref
from bridge.updates.outcomes import Outcomes, Problem
from bridge.updates.pending import Entry
from bridge.updates.records import EPSILON, RecordKind, number, same, write_records
from bridge.updates.resolve import Pair, mapped_or_xml_id, resolve
from bridge.updates.writes import Write, is_fatal, judge, result_id, run_writes, shop_words

log = logging.getLogger("bridge.updates.kinds.stock")

# --- what 1C sends: POST /1c/stock ------------------------------------------------------------------------

CHOICES = (PRODUCT_CHOICE, ("store", "store_id"))


@with_config(ConfigDict(**STRICT, json_schema_extra=one_of(CHOICES)))
class StockItem(TypedDict, total=False):
    """The amount of one product in one store."""

    product_id: Annotated[ShopId | None, Field(description="the shop's product id")]
    xml_id: Annotated[Key | None, Field(description="the shop product's xmlId (1C-Bitrix sets it to the 1C GUID)")]
    sku: Annotated[Key | None, Field(description="the article, found through the article property of the mappings")]
    store: Annotated[Key | None, Field(description="a 1C warehouse key, mapped to a shop store in catalog.toml")]
    store_id: Annotated[ShopId | None, Field(description="the shop's store id")]
    amount: Required[Annotated[Amount, Field(description="the amount in stock, a finite number ≥ 0")]]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**STRICT))
class StockBody(TypedDict):
    """``POST /1c/stock``: amounts per product and store; the latest value per key wins."""

    items: list[StockItem]


def key_of(item: dict[str, Any]) -> str:
    return f"[{product_ref(item)},{named_ref(item, 'store', 'store_id')}]"


def value_of(item: dict[str, Any]) -> str:
    return f"[{float(item['amount'])!r}]"


def describe_key(key: list[Any]) -> str:
    return describe_product_in(key, "store")


# --- the writer -----------------------------------------------------------------------------------------

RECORDS = ListCommand(
    "catalog.storeproduct.list", {"select": ["id", "productId", "storeId", "amount"]}, "storeProducts"
)
MODE_TTL = 300


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    """Write the stock of ``entries``; every entry ends up in ``outcomes``."""
    if not entries:
        return
    strategy = rt.mappings.stock_strategy
    # The quantity strategy writes no per-store record, so it needs no store to exist in the shop.
    existing = shop_stores(rt) if strategy != "quantity" else None

    def store_of(entry: Entry) -> int | Problem:
        how, value = entry.key[2], entry.key[3]
        store_id = mapped_or_xml_id(rt, rt.mappings.stores, "stores", value) if how == "key" else int(value)
        if store_id is None:
            return Problem(
                f"1C warehouse {value!r} is not mapped to a shop store and no shop store has it as xmlId; "
                f'add it under [stores] in catalog.toml (e.g. "{value}" = <the shop\'s store id>)',
                "unmapped_store",
                setup=True,
            )
        if existing is not None and store_id not in existing:
            if how == "key":  # the mappings name a store the shop does not have
                return Problem(
                    f"1C warehouse {value!r} is mapped to store {store_id}, which does not exist in the shop; "
                    "fix it under [stores] in catalog.toml",
                    "unmapped_store",
                    setup=True,
                )
            return Problem(f"store {store_id} does not exist in the shop", "unknown_store")
        return store_id

    targets = resolve(rt, entries, outcomes, store_of)
    if strategy == "document":
        by_documents(rt, targets, outcomes)
    elif strategy == "quantity":
        by_quantity(rt, targets, outcomes)
    else:
        write_records(rt, STORE_PRODUCTS, targets, outcomes)


# --- storeproduct ---------------------------------------------------------------------------------------


def _amount(entry: Entry) -> dict[str, Any]:
    return {"amount": number(float(entry.value[0]))}


STORE_PRODUCTS = RecordKind(
    listing=RECORDS,
    group_field="storeId",
    cache_key=lambda pair: keys.CACHE_STORE_PRODUCT.format(product_id=pair[0], store_id=pair[1]),
    update="catalog.storeproduct.update",
    add="catalog.storeproduct.add",
    result_key="storeProduct",
    fields=_amount,
    holds=lambda row, entry: same(row.get("amount"), float(entry.value[0])),
)


# --- document -------------------------------------------------------------------------------------------


def by_documents(rt: Runtime, targets: dict[Pair, Entry], outcomes: Outcomes) -> None:
    if not targets:
        return
    if not inventory_accounting(rt):
        outcomes.wait(targets.values(), TransientError("inventory accounting is off in the shop"))
        outcomes.fatal = PermanentError(
            'stock_strategy is "document", but the shop\'s inventory accounting is off, so documents cannot be '
            'conducted; switch it on in the shop or set stock_strategy = "quantity" in catalog.toml'
        )
        return
    rows = find_records(rt, RECORDS, "storeId", list(targets))  # fresh: the difference must be exact
    increases: list[tuple[Pair, Entry, float]] = []
    decreases: list[tuple[Pair, Entry, float]] = []
    for pair, entry in targets.items():
        current = float(rows[pair].get("amount") or 0) if pair in rows else 0.0
        change = float(entry.value[0]) - current
        if abs(change) < EPSILON:
            outcomes.apply([entry])
        elif change > 0:
            increases.append((pair, entry, change))
        else:
            decreases.append((pair, entry, -change))
    if increases:
        _document(rt, "S", "storeTo", increases, outcomes)
    if decreases:
        _document(rt, "D", "storeFrom", decreases, outcomes)


def inventory_accounting(rt: Runtime) -> bool:
    """``catalog.document.mode.status`` (cached for a few minutes): documents are conducted only when "Y"."""
    cached = rt.redis.get(keys.CACHE_INVENTORY_MODE)
    if cached is None:
        answer = rt.shop.result("catalog.document.mode.status")
        cached = json.dumps(answer)
        rt.redis.set(keys.CACHE_INVENTORY_MODE, cached, ex=MODE_TTL)
    return json.loads(cached) in ("Y", True)


def _document(
    rt: Runtime, doc_type: str, store_field: str, moves: list[tuple[Pair, Entry, float]], outcomes: Outcomes
) -> None:
    """One document holding ``moves``, its elements and its conduct in as few batches as fit."""
    entries = [entry for _, entry, _ in moves]
    settings = rt.mappings.document_strategy
    fields = {
        "docType": doc_type,
        "currency": settings.currency,
        "responsibleId": settings.responsible_id,
        "title": f"1C stock update: {len(moves)} {'increases' if doc_type == 'S' else 'decreases'}",
    }
    try:
        doc_id = result_id(rt.shop.result("catalog.document.add", {"fields": fields}), "document")
    except ShopError as error:
        judge(outcomes, entries, error, "catalog.document.add")
        return
    if doc_id is None:
        outcomes.wait(entries, TransientError("catalog.document.add answered without a document id"))
        return
    commands: dict[str, tuple[str, dict[str, Any]]] = {}
    for index, ((product_id, store_id), _, amount) in enumerate(moves):
        element = {"docId": doc_id, "elementId": product_id, store_field: store_id, "amount": number(amount)}
        commands[str(index)] = ("catalog.document.element.add", {"fields": element})
    commands["conduct"] = ("catalog.document.conduct", {"id": doc_id})
    answer = rt.shop.batch_many(commands)
    included: list[Entry] = []
    for index, (_, entry, _) in enumerate(moves):
        refused = answer.errors.get(str(index))
        if refused is not None:
            judge(outcomes, [entry], refused, "catalog.document.element.add")
        else:
            included.append(entry)
    conduct_error = answer.errors.get("conduct")
    if conduct_error is None and "conduct" in answer.results:
        outcomes.apply(included)
        outcomes.written += 1
        return
    # Not conducted: the document changed nothing, so its items wait and are computed afresh next time
    # (stock may have moved in between, which is the usual reason a write-off is refused).
    if conduct_error is not None and (isinstance(conduct_error, TransientError) or is_fatal(conduct_error)):
        judge(outcomes, included, conduct_error, "catalog.document.conduct")
        return
    reason = shop_words(conduct_error) if conduct_error is not None else "the shop did not answer"
    log.error("stock: inventory document %s (%s) was not conducted: %s", doc_id, doc_type, reason)
    outcomes.wait(included, TransientError(f"inventory document {doc_id} was not conducted: {reason}"))


# --- quantity -------------------------------------------------------------------------------------------


def by_quantity(rt: Runtime, targets: dict[Pair, Entry], outcomes: Outcomes) -> None:
    by_product: dict[int, list[tuple[int, Entry]]] = defaultdict(list)
    for (product_id, store_id), entry in targets.items():
        by_product[product_id].append((store_id, entry))
    products = sorted(by_product)
    pipe = rt.redis.pipeline(transaction=False)
    for product_id in products:
        pipe.hgetall(keys.STOCK_QUANTITY.format(product_id=product_id))
    known = pipe.execute()
    writes: list[Write] = []
    for product_id, stored in zip(products, known, strict=True):
        amounts = {int(store): float(value) for store, value in stored.items()}
        latest = {store_id: float(entry.value[0]) for store_id, entry in by_product[product_id]}
        amounts.update(latest)
        total = number(sum(amounts.values()))
        params = {"id": product_id, "fields": {"quantity": total}}
        entries = [entry for _, entry in by_product[product_id]]
        writes.append(Write("catalog.product.update", params, entries, _storing(rt, product_id, latest)))
    run_writes(rt.shop, writes, outcomes)


def _storing(rt: Runtime, product_id: int, latest: dict[int, float]) -> Any:
    def store(_result: Any) -> None:
        rt.redis.hset(keys.STOCK_QUANTITY.format(product_id=product_id), mapping={str(k): v for k, v in latest.items()})

    return store


KIND = UpdateKind(
    name="stock",
    summary="stock per product and store",
    body=StockBody,
    item=StockItem,
    choices=CHOICES,
    required=("amount",),
    fast_fields={**PRODUCT_FIELDS, "store": KEY, "store_id": SHOP_ID, "amount": NUMBER},
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
)
