"""The shop order (``sale.order.get``) → the order document 1C receives (docs/reference.md). Pure: no I/O.

The one subtle part is money. 1C books what the lines say, so the lines must add up to what the buyer pays:
a basket item's ``price`` already has its own discounts applied, but an order-level discount (a coupon on
the whole cart) exists only as the difference between the order's ``price`` and the sum of the lines plus
delivery. That difference is spread over the lines in proportion to their amounts, in kopecks, with the
rounding remainder on the largest line, so that ``Σ Amount + Delivery.Price == DocumentAmount`` exactly.
``Decimal`` is used throughout because binary floats would lose that kopeck.

Field names come from the mappings (``DocumentMapping``), so an integrator can match an existing 1C handler
without code. Everything the shop may send as a string (numbers, ids) is tolerated.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from bridge.errors import PermanentError
from bridge.mappings import STATUSES_FILE, Mappings

KOPECK = Decimal("0.01")


def should_send(order: dict[str, Any], mappings: Mappings) -> bool:
    """Whether orders in this status go to 1C at all (``send`` in statuses.toml)."""
    if mappings.send_statuses is None:
        return True
    return _text(_unwrap(order).get("statusId")) in mappings.send_statuses


def build_document(order: dict[str, Any], mappings: Mappings, *, cancelled: bool = False) -> dict[str, Any]:
    """The 1C document for ``order``. ``PermanentError`` when the order cannot be mapped (never guessed)."""
    order = _unwrap(order)
    names = mappings.document
    f = names.fields
    order_id = _id_text(order.get("id"))
    label = f"order {order.get('accountNumber') or order_id or '?'}"

    status_id = _text(order.get("statusId"))
    status = mappings.statuses.get(status_id)
    if status is None:
        raise PermanentError(
            f"{label} has status {status_id!r}, which {_mappings_file(mappings, STATUSES_FILE)} does not map to a "
            f"1C status; add it under [statuses]"
        )

    properties = _order_properties(order)
    goods, amounts, delivery, total = _money(order, mappings, label)

    document: dict[str, Any] = {
        f["number"]: _text(order.get("accountNumber")) or order_id,
        f["site_id"]: order_id,
        f["date"]: _local_date(order.get("dateInsert"), label),
        f["status"]: status,
        f["counterparty"]: {
            names.counterparty_fields[key]: _first(properties, names.sources[f"counterparty_{key}"])
            for key in ("tin", "name", "email", "phone")
        },
        f["goods"]: [_line(item, amount, mappings, label) for item, amount in zip(goods, amounts, strict=True)],
        f["delivery"]: _delivery(order, delivery, properties, mappings),
        f["document_amount"]: _money_out(total),
        f["currency"]: _text(order.get("currency")),
        f["comment"]: _text(order.get("userDescription")),
        f["properties"]: {code: properties.get(code.casefold()) for code in names.properties},
        f["cancelled"]: cancelled or _text(order.get("canceled")).upper() == "Y",
    }
    return document


def document_digest(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a document: equal documents, equal digests (key order ignored)."""
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- money ------------------------------------------------------------------------------------------------


def _money(
    order: dict[str, Any], mappings: Mappings, label: str
) -> tuple[list[dict[str, Any]], list[Decimal], Decimal | None, Decimal]:
    """The basket items, their final amounts, the delivery price (None without a shipment), and the total."""
    items = [item for item in _as_list(order.get("basketItems")) if isinstance(item, dict)]
    raw = []
    for item in items:
        what = f"{label}, basket item {_id_text(item.get('id')) or item.get('name') or '?'}"
        price = _decimal(item.get("price"), f"{what}: price")
        quantity = _decimal(item.get("quantity"), f"{what}: quantity")
        raw.append(_kopecks(price * quantity))
    shipments = _shipments(order)
    delivery = None
    if shipments:
        delivery = _kopecks(
            sum((_decimal(s.get("priceDelivery"), f"{label}: delivery price", default=0) for s in shipments), Decimal())
        )
    lines_total = sum(raw, Decimal())
    total = (
        _kopecks(_decimal(order.get("price"), f"{label}: price"))
        if order.get("price") not in (None, "")
        else lines_total + (delivery or 0)
    )
    target = total - (delivery or 0)
    if target < 0:
        raise PermanentError(
            f"{label}: the delivery price {delivery} is more than the order total {total}; cannot spread it over the lines"
        )
    return items, _spread(raw, target), delivery, total


def _spread(amounts: list[Decimal], target: Decimal) -> list[Decimal]:
    """Scale ``amounts`` so they add up to ``target`` exactly, in kopecks, remainder on the largest line.

    Normally the difference is an order-level discount (target < sum); any difference is folded the same
    way so that the document always adds up to what the buyer pays.
    """
    current = sum(amounts, Decimal())
    if not amounts or current == target:
        return list(amounts)
    if current == 0:
        scaled = [Decimal("0.00")] * len(amounts)
    else:
        scaled = [_kopecks(amount * target / current) for amount in amounts]
    largest = max(range(len(amounts)), key=lambda i: (amounts[i], -i))
    scaled[largest] += target - sum(scaled, Decimal())
    return scaled


def _line(item: dict[str, Any], amount: Decimal, mappings: Mappings, label: str) -> dict[str, Any]:
    names = mappings.document
    lf = names.line_fields
    quantity = _decimal(item.get("quantity"), f"{label}: quantity")
    price = _kopecks(amount / quantity) if quantity else _kopecks(_decimal(item.get("price"), f"{label}: price"))
    basket_properties = _properties(item.get("properties"))
    try:
        vat = names.vat_text(item.get("vatRate"))
    except ValueError as error:
        raise PermanentError(f"{label}, basket item {_id_text(item.get('id'))}: {error}") from None
    return {
        lf["article"]: _first(basket_properties, names.sources["article"]),
        lf["xml_id"]: _text(item.get("productXmlId")) or basket_properties.get("product.xml_id"),
        lf["name"]: _text(item.get("name")),
        lf["quantity"]: _number_out(quantity),
        lf["price"]: _money_out(price),
        lf["amount"]: _money_out(amount),
        lf["vat_rate"]: vat,
    }


def _delivery(
    order: dict[str, Any], price: Decimal | None, properties: dict[str, Any], mappings: Mappings
) -> dict[str, Any] | None:
    if price is None:
        return None
    names = mappings.document
    shipments = _shipments(order)
    delivery_names = [_text(s.get("deliveryName")) for s in shipments if _text(s.get("deliveryName"))]
    return {
        names.delivery_fields["name"]: ", ".join(dict.fromkeys(delivery_names)) or None,
        names.delivery_fields["price"]: _money_out(price),
        names.delivery_fields["address"]: _first(properties, names.sources["delivery_address"]),
    }


def _shipments(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The real shipments: 1C-Bitrix keeps a "system" one holding whatever is not shipped yet."""
    return [
        s
        for s in _as_list(order.get("shipments"))
        if isinstance(s, dict) and _text(s.get("system")).upper() not in ("Y", "TRUE", "1")
    ]


# --- small helpers ----------------------------------------------------------------------------------------


def _unwrap(order: dict[str, Any]) -> dict[str, Any]:
    """Accept the ``result`` of sale.order.get (``{"order": {...}}``) as well as the order itself."""
    inner = order.get("order")
    if isinstance(inner, dict) and "id" not in order:
        return inner
    return order


def _as_list(value: Any) -> list[Any]:
    """Lists as JSON has them; PHP-ish dicts keyed by index are taken in order."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


def _properties(values: Any) -> dict[str, Any]:
    """``[{code, value}, …]`` → {code (case-folded): value}, skipping empty values; lists are joined."""
    found: dict[str, Any] = {}
    for entry in _as_list(values):
        if not isinstance(entry, dict) or entry.get("code") in (None, ""):
            continue
        value = entry.get("value")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v not in (None, ""))
        if value in (None, ""):
            continue
        found.setdefault(str(entry["code"]).casefold(), value if isinstance(value, str) else str(value))
    return found


def _order_properties(order: dict[str, Any]) -> dict[str, Any]:
    return _properties(order.get("propertyValues"))


def _first(properties: dict[str, Any], codes: tuple[str, ...]) -> Any:
    for code in codes:
        value = properties.get(code.casefold())
        if value not in (None, ""):
            return value
    return None


def _decimal(value: Any, what: str, *, default: int | None = None) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not None:
            return Decimal(default)
        raise PermanentError(f"{what} is missing")
    if isinstance(value, bool):
        raise PermanentError(f"{what} is not a number: {value!r}")
    try:
        number = Decimal(str(value).strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise PermanentError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite():
        raise PermanentError(f"{what} is not a number: {value!r}")
    return number


def _kopecks(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


def _money_out(value: Decimal) -> float:
    """JSON has no decimals; a float of a two-place value prints exactly ("3000.0", "1499.99")."""
    return float(value)


def _number_out(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _id_text(value: Any) -> str:
    """300, "300" and 300.0 are the same id."""
    if value is None:
        return ""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return str(value).strip()
    return str(int(number)) if number.is_finite() and number == number.to_integral_value() else str(value).strip()


def _local_date(value: Any, label: str) -> str:
    """The shop's local time without its offset, as 1C stores dates ("2024-03-15T10:30:00")."""
    text = _text(value).strip()
    if not text:
        raise PermanentError(f"{label} has no dateInsert")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"{label}: dateInsert {text!r} is not an ISO date") from None
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def _mappings_file(mappings: Mappings, name: str) -> str:
    directory = mappings.directory
    return f"{directory.as_posix().rstrip('/')}/{name}" if directory is not None else f"mappings/{name}"
