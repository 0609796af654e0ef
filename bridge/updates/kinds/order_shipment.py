"""Shipments allowed or shipped in 1C, into the shop: ``sale.shipment.update``.

Like ``order-payment``: 1C names the order and optionally one shipment (its shop id or number); without one,
every real shipment of the order (not the shop's "system" one). ``sale.shipment.update`` requires
``allowDelivery``, ``deducted`` and ``deliveryId``, and sets the delivery price to 0 when neither
``basePriceDelivery`` nor ``priceDelivery`` is sent, so the shipment's current values go along with the
change: the buyer's delivery price is never lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from bridge.runtime import Runtime
from bridge.updates.intake.models import STRICT, TS_DESCRIPTION, Key, OrderRef, Timestamp
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.order_payment import matching, parts_of
from bridge.updates.kinds.order_status import find_orders
from bridge.updates.kinds.refs import quote
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry
from bridge.updates.writes import Write, run_writes


@with_config(ConfigDict(**STRICT))
class ShipmentItem(TypedDict, total=False):
    """Whether a shop order's shipment (or every one) may go out, or has gone."""

    order: Required[Annotated[OrderRef, Field(description="the shop order's accountNumber, or its id")]]
    shipment: Annotated[Key | None, Field(description="one shipment: its shop id or number (A-300/2); absent: all")]
    allow_delivery: Annotated[bool | None, Field(description="true: delivery is allowed")]
    shipped: Annotated[bool | None, Field(description="true: shipped (the goods left the warehouse)")]
    date: Annotated[Timestamp | None, Field(description="the shipping document's date")]
    number: Annotated[Key | None, Field(description="the shipping document's number in 1C")]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**STRICT))
class ShipmentBody(TypedDict):
    """``POST /1c/order-shipment``: shipments allowed or shipped in 1C; the latest value per shipment wins."""

    items: list[ShipmentItem]


def key_of(item: dict[str, Any]) -> str:
    return f"[{quote(item['order'])},{quote(item.get('shipment') or '')}]"


def value_of(item: dict[str, Any]) -> str:
    doc = {k: item[k] for k in ("allow_delivery", "shipped", "date", "number") if item.get(k) is not None}
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def describe_key(key: list[Any]) -> str:
    return f"order {key[0]!r}" + (f", shipment {key[1]!r}" if len(key) > 1 and key[1] else "")


SELECT = [
    "id", "orderId", "accountNumber", "deliveryId", "allowDelivery", "deducted", "basePriceDelivery",
    "priceDelivery", "system", "deliveryDocNum", "deliveryDocDate", "id1c",
]  # fmt: skip


def _flag(value: Any) -> str:
    return "Y" if str(value).upper() in ("Y", "TRUE", "1") else "N"


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    orders = find_orders(rt, {str(entry.key[0]) for entry in entries})
    found = [(entry, orders[str(entry.key[0])]) for entry in entries if str(entry.key[0]) in orders]
    for entry in entries:
        if str(entry.key[0]) not in orders:
            outcomes.drop([entry], f"no order with accountNumber or id {entry.key[0]!r} in the shop")
    shipments = parts_of(rt, "sale.shipment.list", "shipments", SELECT, [int(str(o["id"])) for _, o in found])
    writes: list[Write] = []
    for entry, order in found:
        wanted = json.loads(entry.value_json)
        real = [s for s in shipments.get(int(str(order["id"])), []) if _flag(s.get("system")) == "N"]
        rows = matching(real, str(entry.key[1]))
        if not rows:
            outcomes.drop([entry], f"order {entry.key[0]!r} has no shipment {entry.key[1]!r}")
            continue
        changes = []
        for row in rows:
            fields: dict[str, Any] = {
                "allowDelivery": _flag(row.get("allowDelivery")),
                "deducted": _flag(row.get("deducted")),
            }
            if wanted.get("allow_delivery") is not None:
                fields["allowDelivery"] = "Y" if wanted["allow_delivery"] else "N"
            if wanted.get("shipped") is not None:
                fields["deducted"] = "Y" if wanted["shipped"] else "N"
                if wanted["shipped"]:
                    fields["allowDelivery"] = "Y"  # shipped goods were allowed to go
            extra = {}
            if wanted.get("date"):
                extra["deliveryDocDate"] = wanted["date"]
            if wanted.get("number"):
                extra["deliveryDocNum"] = wanted["number"]
            differs = any(_flag(row.get(k)) != v for k, v in fields.items()) or any(
                str(row.get(k) or "") != str(v) for k, v in extra.items() if k == "deliveryDocNum"
            )
            if differs:
                price = row.get("basePriceDelivery", row.get("priceDelivery"))
                changes.append(
                    (row, {**fields, **extra, "deliveryId": row.get("deliveryId"), "basePriceDelivery": price})
                )
        if not changes:
            outcomes.apply([entry])
        for n, (row, fields) in enumerate(changes):
            params = {"id": int(str(row["id"])), "fields": fields}
            writes.append(
                Write("sale.shipment.update", params, [entry] if n == 0 else [], details={"shipment_id": row["id"]})
            )
    run_writes(rt.shop, writes, outcomes)


KIND = UpdateKind(
    name="order-shipment",
    summary="order shipments allowed or shipped in 1C",
    body=ShipmentBody,
    item=ShipmentItem,
    choices=(),
    required=("order",),
    fast_fields=None,
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
)
