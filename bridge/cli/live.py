"""``bridge check --live``: call the shop and 1C once each way the bridge will, and say in plain words what
is wrong before the first order finds out.

The shop: ``catalog.catalog.list`` (is the webhook key right, has it the ``catalog`` scope, is the configured
iblock a product catalog), ``sale.status.list`` (the ``sale`` scope; the statuses the mapping names),
``catalog.store.list`` and ``catalog.priceType.list`` (every store and price type id in the mappings exists).
1C: one harmless lookup (``GET counterparties`` with no criteria) that meets the same gate as every call:
the credentials, and the session-start lock of a 1C under maintenance. Nothing is written anywhere.

Each call is one plain HTTP request with a short timeout, outside the bridge's rate-limit bucket (which
lives in Redis, perhaps not reachable from where ``check`` runs): a handful of calls stays far below the
shop's limit.
"""

from __future__ import annotations

from typing import Any

import httpx

from bridge.mappings import Mappings
from bridge.settings import Settings

TIMEOUT = 10.0
LOCK_PREFIX = "Начало сеанса с информационной базой запрещено"
AUTH_ERRORS = ("NO_AUTH_FOUND", "INVALID_CREDENTIALS", "expired_token")


class Refused(Exception):
    """One line: what the peer said and what to do about it."""


def live_check(
    settings: Settings, mappings: Mappings, transport: httpx.BaseTransport | None = None
) -> tuple[list[str], list[str]]:
    """(notes, errors) from calling the shop and 1C."""
    notes: list[str] = []
    errors: list[str] = []
    with httpx.Client(timeout=TIMEOUT, transport=transport) as client:
        if settings.shop_url is not None:
            _check_shop(client, settings.shop_url.get_secret_value(), settings, mappings, notes, errors)
        else:
            notes.append("shop: not called (BRIDGE_SHOP_URL is not set)")
        if settings.onec_url:
            _check_onec(client, settings, mappings, notes, errors)
        else:
            notes.append("1C: not called (BRIDGE_ONEC_URL is not set)")
    return notes, errors


def _shop_call(client: httpx.Client, base: str, method: str, params: dict[str, Any]) -> Any:
    url = base if base.endswith("/") else base + "/"
    try:
        answer = client.post(f"{url}{method}.json", json=params)
    except httpx.HTTPError as exc:
        raise Refused(
            f"shop: {method} did not answer ({type(exc).__name__}); check the host in BRIDGE_SHOP_URL"
        ) from None
    try:
        body = answer.json()
    except ValueError:
        raise Refused(
            f"shop: {method} answered HTTP {answer.status_code} without JSON: BRIDGE_SHOP_URL must be the "
            "webhook address https://<shop>/rest/<user id>/<key>/"
        ) from None
    error = body.get("error") if isinstance(body, dict) else None
    if error is not None:
        described = f"{error}: {body.get('error_description') or ''}".strip().rstrip(":")
        if error in AUTH_ERRORS:
            raise Refused(
                f"shop: the webhook key was refused ({described}, HTTP {answer.status_code}); check the user id "
                "and key in BRIDGE_SHOP_URL (https://<shop>/rest/<user id>/<key>/) and that the webhook still exists"
            )
        if error == "insufficient_scope":
            scope = method.split(".")[0]
            raise Refused(
                f"shop: the webhook has no '{scope}' scope ({method} answered insufficient_scope); add '{scope}' "
                "to the webhook's permissions in the shop (Developer resources → the webhook)"
            )
        if error == "ERROR_METHOD_NOT_FOUND":
            raise Refused(f"shop: {method} does not exist in this shop ({described}); is the sale/catalog module on?")
        raise Refused(f"shop: {method} failed: {described} (HTTP {answer.status_code})")
    return body.get("result") if isinstance(body, dict) else None


def _rows(result: Any, key: str) -> list[dict[str, Any]]:
    rows = result.get(key) if isinstance(result, dict) else result
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _ids(rows: list[dict[str, Any]]) -> set[str]:
    return {str(row.get("id")) for row in rows}


def _check_shop(
    client: httpx.Client, base: str, settings: Settings, mappings: Mappings, notes: list[str], errors: list[str]
) -> None:
    try:
        catalogs = _rows(_shop_call(client, base, "catalog.catalog.list", {}), "catalogs")
    except Refused as exc:
        errors.append(str(exc))
        return  # a bad key or host fails every other call the same way
    products = {int(c["iblockId"]): c for c in catalogs if c.get("productIblockId") in (None, "", 0)}
    offers = {int(c["iblockId"]): c for c in catalogs if c.get("productIblockId") not in (None, "", 0)}
    iblock = settings.shop_iblock_id or mappings.products.iblock_id
    listed = ", ".join(str(i) for i in sorted(products)) or "none"
    if iblock is None:
        notes.append(f"shop: product catalogs (iblocks): {listed}")
    elif iblock in offers:
        errors.append(
            f"shop: iblock {iblock} is the trade-offers (SKU) catalog of iblock {offers[iblock]['productIblockId']}, "
            f"not a product catalog; set the product catalog's iblock ({listed})"
        )
    elif iblock not in products:
        errors.append(f"shop: iblock {iblock} is not a product catalog in this shop; its product catalogs: {listed}")
    else:
        notes.append(f"shop: iblock {iblock} is a product catalog")
    for method, key, mapped, what, file_key in (
        ("catalog.store.list", "stores", mappings.stores, "store", "stores"),
        ("catalog.priceType.list", "priceTypes", mappings.price_types, "price type", "price_types"),
    ):
        try:
            have = _ids(_rows(_shop_call(client, base, method, {"select": ["id"]}), key))
        except Refused as exc:
            errors.append(str(exc))
            continue
        for onec_name, shop_id in mapped.items():
            if str(shop_id) not in have:
                errors.append(
                    f"shop: catalog.toml maps 1C {what} {onec_name!r} to {what} {shop_id}, which the shop does not "
                    f"have (it has {', '.join(sorted(have, key=int)) or 'none'}); fix [{file_key}]"
                )
    try:
        statuses = _ids(_rows(_shop_call(client, base, "sale.status.list", {"select": ["id"]}), "statuses"))
    except Refused as exc:
        errors.append(str(exc))
        return
    unknown = sorted(status for status in mappings.statuses if status not in statuses)
    if unknown:
        notes.append(f"shop: statuses.toml maps statuses the shop does not have: {', '.join(unknown)}")
    if not errors:
        notes.append("shop: the webhook key, its scopes, the catalog, stores and price types are fine")


def _check_onec(
    client: httpx.Client, settings: Settings, mappings: Mappings, notes: list[str], errors: list[str]
) -> None:
    base = str(settings.onec_url)
    url = (base if base.endswith("/") else base + "/") + "counterparties"
    try:
        answer = client.get(url, auth=(settings.onec_user, settings.onec_password.get_secret_value()))
    except httpx.HTTPError as exc:
        errors.append(f"1C: {type(exc).__name__} calling the HTTP service; check the host in BRIDGE_ONEC_URL")
        return
    text = answer.text
    if LOCK_PREFIX in text:
        reason = text.split(LOCK_PREFIX, 1)[1].split('"', 1)[0].replace("\\n", " ").strip(" .\n")
        errors.append(
            f"1C: the infobase refuses new sessions ({LOCK_PREFIX}{': ' + reason if reason else ''}); orders wait "
            "until an administrator lifts the lock"
        )
    elif answer.status_code == 401:
        errors.append(
            "1C: the user name or password was refused (HTTP 401); check BRIDGE_ONEC_USER and BRIDGE_ONEC_PASSWORD"
        )
    elif answer.status_code == 403:
        errors.append("1C: access denied (HTTP 403); the user needs the right to use the HTTP service")
    elif answer.status_code == 404 and "json" not in answer.headers.get("content-type", ""):
        line = (
            "1C: HTTP 404 for …/counterparties: BRIDGE_ONEC_URL may not be the HTTP service's root "
            "(…/hs/<service>/), or the service has no counterparties resource"
        )
        (errors if mappings.counterparty_mode != "off" else notes).append(line)
    elif answer.status_code >= 500:
        errors.append(f"1C: HTTP {answer.status_code}; the HTTP service fails: look at 1C's event log")
    else:
        notes.append(f"1C: the HTTP service answers (HTTP {answer.status_code})")
