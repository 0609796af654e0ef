"""Finding what 1C names in the shop's catalog: products, stores, and the records that hold stock and prices.

1C names a product by the shop's id, by ``xmlId`` (the 1C GUID) or by its article, which the REST API can
only filter as ``propertyN`` where N is the id of the article property (``CML2_ARTICLE`` unless the
mappings say otherwise), resolved once through ``catalog.productProperty.list``. Lookups go out as batched
``@field`` filters (``bridge.shop.lists``) and what was found is cached in Redis with a TTL, so a daily
full upload pays for its lookups once and a product renamed in the shop heals within a day.

Nothing here guesses: a product that is not found is simply absent from the answer, for the caller to
report. The catalog's iblock is not guessed either: ``catalog.catalog.list`` names the shop's product
catalog and its SKU (trade offers) catalog, unless ``BRIDGE_SHOP_IBLOCK_ID`` or ``iblock_id`` in the
mappings names the product catalog (the setting wins).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from bridge import keys
from bridge.errors import PermanentError
from bridge.runtime import Runtime
from bridge.shop.errors import ShopError
from bridge.shop.lists import ListCommand, chunked, run_lists
from bridge.texts import as_text
from bridge.updates.outcomes import Problem

PRODUCT_TTL = 24 * 3600
STORES_TTL = 300
CATALOGS_TTL = 3600

ProductRef = tuple[str, str]  # ("id" | "xml" | "sku", value) as 1C gave it


def product_iblock(rt: Runtime) -> int:
    """The product catalog's iblock: the setting, else the mappings, else what the shop names."""
    named = rt.settings.shop_iblock_id or rt.mappings.products.iblock_id
    if named is not None:
        return int(named)
    products = [row for row in catalogs(rt) if not row.get("productIblockId")]
    if not products:
        raise PermanentError(
            "the shop's catalog.catalog.list names no product catalog; set BRIDGE_SHOP_IBLOCK_ID to its iblock id"
        )
    with_offers = {int(row["productIblockId"]) for row in catalogs(rt) if row.get("productIblockId")}
    ids = sorted(int(row["iblockId"]) for row in products)
    return next((i for i in ids if i in with_offers), ids[0])  # the one with trade offers, else the lowest


def offers_iblock(rt: Runtime) -> int | None:
    """The SKU (trade offers) catalog of the product catalog, None when the shop has none."""
    product = product_iblock(rt)
    for row in catalogs(rt):
        if row.get("productIblockId") and int(row["productIblockId"]) == product:
            return int(row["iblockId"])
    return None


def catalogs(rt: Runtime) -> list[dict[str, Any]]:
    """The rows of ``catalog.catalog.list`` (cached for an hour)."""
    cached = rt.redis.get(keys.CACHE_CATALOGS)
    if cached is not None:
        rows: list[dict[str, Any]] = json.loads(cached)
        return rows
    select = ["id", "iblockId", "productIblockId", "skuPropertyId", "name"]
    rows = [
        row for row in rt.shop.list_all("catalog.catalog.list", {"select": select}, "catalogs") if row.get("iblockId")
    ]
    rt.redis.set(keys.CACHE_CATALOGS, json.dumps(rows), ex=CATALOGS_TTL)
    return rows


def find_products(rt: Runtime, refs: Iterable[ProductRef]) -> dict[ProductRef, int]:
    """Shop product ids for the refs that exist; ``("id", n)`` is taken as given (the write will tell)."""
    wanted = set(refs)
    found: dict[ProductRef, int] = {ref: int(ref[1]) for ref in wanted if ref[0] == "id"}
    named = sorted(ref for ref in wanted if ref[0] != "id")
    if not named:
        return found
    cache_keys = [keys.CACHE_PRODUCT.format(how=how, value=value) for how, value in named]
    missing: list[ProductRef] = []
    for ref, cached in zip(named, rt.redis.mget(cache_keys), strict=True):
        if cached is None:
            missing.append(ref)
        else:
            found[ref] = int(cached)
    fresh = _look_up_products(rt, missing)
    if fresh:
        pipe = rt.redis.pipeline(transaction=False)
        for (how, value), product_id in fresh.items():
            pipe.set(keys.CACHE_PRODUCT.format(how=how, value=value), product_id, ex=PRODUCT_TTL)
        pipe.execute()
    found.update(fresh)
    return found


def _look_up_products(rt: Runtime, refs: Sequence[ProductRef]) -> dict[ProductRef, int]:
    if not refs:
        return {}
    iblock_id = product_iblock(rt)
    by_xml = [value for how, value in refs if how == "xml"]
    by_sku = [value for how, value in refs if how == "sku"]
    article = article_field(rt) if by_sku else None
    commands: dict[str, ListCommand] = {}
    for n, values in enumerate(chunked(by_xml)):
        commands[f"xml{n}"] = _product_list(iblock_id, "xmlId", values)
    if article is not None:
        for n, values in enumerate(chunked(by_sku)):
            commands[f"sku{n}"] = _product_list(iblock_id, article, values)
    found: dict[ProductRef, int] = {}
    for cmd_id, rows in run_lists(rt.shop, commands).items():
        how, field = ("xml", "xmlId") if cmd_id.startswith("xml") else ("sku", article or "")
        for row in sorted(rows, key=lambda r: int(r.get("id") or 0), reverse=True):
            value = row.get(field)
            if isinstance(value, dict):  # an iblock property: {"value": ..., "valueId": ...}
                value = value.get("value")
            if value is not None and row.get("id") is not None:
                found[(how, str(value))] = int(row["id"])  # the lowest id wins when a value repeats
    return found


def _product_list(iblock_id: int, field: str, values: list[str]) -> ListCommand:
    params = {"select": ["id", "iblockId", field], "filter": {"iblockId": iblock_id, f"@{field}": values}}
    return ListCommand("catalog.product.list", params, "products")


def article_field(rt: Runtime) -> str | None:
    """``propertyN`` of the article property named in the mappings, or None when the catalog has none.

    The answer is cached, a missing property too (for less long), so a flush of many articles asks once.
    """
    lookup = rt.mappings.products
    iblock_id = product_iblock(rt)
    cache_key = keys.CACHE_ARTICLE_PROPERTY.format(iblock_id=iblock_id, code=lookup.article_property)
    cached = rt.redis.get(cache_key)
    if cached is not None:
        return as_text(cached) or None
    params = {"select": ["id", "code"], "filter": {"iblockId": iblock_id, "code": lookup.article_property}}
    rows = list(rt.shop.list_all("catalog.productProperty.list", params, "productProperties"))
    if not rows or rows[0].get("id") is None:
        rt.redis.set(cache_key, "", ex=STORES_TTL)
        return None
    field = f"property{int(rows[0]['id'])}"
    rt.redis.set(cache_key, field, ex=PRODUCT_TTL)
    return field


def shop_stores(rt: Runtime) -> set[int]:
    """The shop's store ids (from ``catalog.store.list``, cached for a few minutes)."""
    cached = rt.redis.get(keys.CACHE_STORES)
    if cached is not None:
        return set(json.loads(cached))
    ids = sorted(int(row["id"]) for row in rt.shop.list_all("catalog.store.list", {"select": ["id"]}, "stores"))
    rt.redis.set(keys.CACHE_STORES, json.dumps(ids), ex=STORES_TTL)
    return set(ids)


def find_records(
    rt: Runtime, command: ListCommand, group_field: str, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    """Rows of a per-(product, group) list method, e.g. stock per (product, store), prices per (product, type).

    One command per group and 50 products (``filter: {group_field: g, "@productId": [...]}``), so each
    answer is about one page; ``command`` gives the method, list key and select.
    """
    by_group: dict[int, list[int]] = defaultdict(list)
    for product_id, group_id in sorted(set(pairs)):
        by_group[group_id].append(product_id)
    commands: dict[str, ListCommand] = {}
    for group_id, products in by_group.items():
        for n, chunk in enumerate(chunked(products)):
            params = {**command.params, "filter": {group_field: group_id, "@productId": chunk}}
            commands[f"{group_id}_{n}"] = ListCommand(command.method, params, command.key)
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for rows in run_lists(rt.shop, commands).values():
        for row in sorted(rows, key=lambda r: int(r.get("id") or 0), reverse=True):
            try:
                found[(int(row["productId"]), int(row[group_field]))] = row  # the lowest id wins
            except (KeyError, TypeError, ValueError):
                continue
    return found


def wrong_iblock(rt: Runtime, iblock_id: int) -> Problem | None:
    """The iblock the setting or the mappings name is no catalog of the shop: every lookup in it fails."""
    if rt.settings.shop_iblock_id is None and rt.mappings.products.iblock_id is None:
        return None  # found in catalog.catalog.list: a catalog by definition
    try:
        known = sorted(int(row["iblockId"]) for row in catalogs(rt))
    except (ShopError, KeyError, TypeError, ValueError):
        return None  # cannot tell: the item's own words follow
    if not known or iblock_id in known:
        return None
    return Problem(
        f"iblock {iblock_id}, named by BRIDGE_SHOP_IBLOCK_ID or iblock_id in catalog.toml, is not a catalog of the "
        f"shop (catalog.catalog.list names {', '.join(map(str, known))}); fix the setting or the mapping",
        "wrong_iblock",
        setup=True,
    )


def unknown_product(rt: Runtime, ref: ProductRef) -> Problem:
    """Why a product 1C named was not found, in words; held when the mappings are at fault, not the item."""
    how, value = ref
    iblock_id = product_iblock(rt)
    wrong = wrong_iblock(rt, iblock_id)
    if wrong is not None:
        return wrong
    if how == "sku" and article_field(rt) is None:
        code = rt.mappings.products.article_property
        return Problem(
            f"the shop's catalog (iblock {iblock_id}) has no article property {code!r} to find products by "
            "article; set article_property under [products] in catalog.toml to the property's code",
            "missing_article_property",
            setup=True,
        )
    if how == "xml":
        return Problem(f"no product with xmlId {value!r} in the shop's catalog (iblock {iblock_id})", "unknown_product")
    if how == "sku":
        return Problem(
            f"no product with article {value!r} in the shop's catalog (iblock {iblock_id})", "unknown_product"
        )
    return Problem(f"product {value} does not exist in the shop", "unknown_product")
