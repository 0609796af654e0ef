"""Payments marked paid in 1C, into the shop: ``sale.payment.update {"id", "fields": {"paid", "datePaid", …}}``.

1C names the order (its ``accountNumber``, or the shop's id) and, optionally, one payment of it (the shop's
payment id or its number such as ``A-300/1``); without one, every payment of the order is meant (1C's order
document says "paid by 1C" for the order as a whole). The orders are found as for ``order-status``, their
payments with one ``sale.payment.list`` per 50 orders; a payment already in that state is not written.
``sale.payment.update`` requires ``paySystemId``, so the payment's own is sent along.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from bridge.runtime import Runtime
from bridge.shop.lists import ListCommand, chunked, run_lists
from bridge.updates.intake.models import STRICT, TS_DESCRIPTION, Key, OrderRef, Timestamp
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.order_status import find_orders
from bridge.updates.kinds.refs import quote
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry
from bridge.updates.writes import Write, run_writes


@with_config(ConfigDict(**STRICT))
class PaymentItem(TypedDict, total=False):
    """Whether a shop order (or one payment of it) is paid."""

    order: Required[Annotated[OrderRef, Field(description="the shop order's accountNumber, or its id")]]
    payment: Annotated[Key | None, Field(description="one payment: its shop id or number (A-300/1); absent: all")]
    paid: Required[Annotated[bool, Field(description="true: paid; false: not paid")]]
    date: Annotated[Timestamp | None, Field(description="when it was paid (the payment document's date)")]
    number: Annotated[Key | None, Field(description="the payment document's number in 1C")]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**STRICT))
class PaymentBody(TypedDict):
    """``POST /1c/order-payment``: payments paid in 1C; the latest value per order and payment wins."""

    items: list[PaymentItem]


def key_of(item: dict[str, Any]) -> str:
    return f"[{quote(item['order'])},{quote(item.get('payment') or '')}]"


def value_of(item: dict[str, Any]) -> str:
    doc = {k: item[k] for k in ("paid", "date", "number") if item.get(k) is not None}
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def describe_key(key: list[Any]) -> str:
    return f"order {key[0]!r}" + (f", payment {key[1]!r}" if len(key) > 1 and key[1] else "")


SELECT = ["id", "orderId", "accountNumber", "paid", "datePaid", "payVoucherNum", "paySystemId", "id1c"]


def parts_of(
    rt: Runtime, method: str, key: str, select: list[str], order_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """The payments (or shipments) of these orders, by order id."""
    commands = {
        f"p{n}": ListCommand(method, {"select": select, "filter": {"@orderId": chunk}}, key)
        for n, chunk in enumerate(chunked(sorted(set(order_ids))))
    }
    found: dict[int, list[dict[str, Any]]] = {}
    for rows in run_lists(rt.shop, commands).values():
        for row in rows:
            found.setdefault(int(str(row.get("orderId"))), []).append(row)
    return found


def matching(rows: list[dict[str, Any]], ref: str) -> list[dict[str, Any]]:
    """The rows 1C means: all of them without a ref, else the one whose id, number or 1C id is the ref."""
    if not ref:
        return rows
    return [r for r in rows if ref in (str(r.get("id")), str(r.get("accountNumber")), str(r.get("id1c") or ""))]


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    orders = find_orders(rt, {str(entry.key[0]) for entry in entries})
    found = [(entry, orders[str(entry.key[0])]) for entry in entries if str(entry.key[0]) in orders]
    for entry in entries:
        if str(entry.key[0]) not in orders:
            outcomes.drop([entry], f"no order with accountNumber or id {entry.key[0]!r} in the shop")
    payments = parts_of(rt, "sale.payment.list", "payments", SELECT, [int(str(o["id"])) for _, o in found])
    writes: list[Write] = []
    for entry, order in found:
        wanted = json.loads(entry.value_json)
        rows = matching(payments.get(int(str(order["id"])), []), str(entry.key[1]))
        if not rows:
            outcomes.drop([entry], f"order {entry.key[0]!r} has no payment {entry.key[1]!r}")
            continue
        changes = []
        for row in rows:
            fields: dict[str, Any] = {"paid": "Y" if wanted["paid"] else "N"}
            if wanted.get("date"):
                fields["datePaid"] = fields["payVoucherDate"] = wanted["date"]
            if wanted.get("number"):
                fields["payVoucherNum"] = wanted["number"]
            if str(row.get("paid")) != fields["paid"] or (
                wanted.get("number") and row.get("payVoucherNum") != wanted["number"]
            ):
                changes.append((row, fields))
        if not changes:
            outcomes.apply([entry])
        for n, (row, fields) in enumerate(changes):
            params = {"id": int(str(row["id"])), "fields": {**fields, "paySystemId": row.get("paySystemId")}}
            writes.append(
                Write("sale.payment.update", params, [entry] if n == 0 else [], details={"payment_id": row["id"]})
            )
    run_writes(rt.shop, writes, outcomes)


KIND = UpdateKind(
    name="order-payment",
    summary="order payments marked paid in 1C",
    body=PaymentBody,
    item=PaymentItem,
    choices=(),
    required=("order", "paid"),
    fast_fields=None,
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
)
