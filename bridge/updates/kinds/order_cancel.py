"""Orders cancelled (or taken back) in 1C, into the shop: ``sale.order.update {"id", "fields": {"canceled"}}``.

1C's order document says «Отменен» (or carries the deletion mark); a later document without it takes the
cancellation back, as 1C-Bitrix's own loader does. The orders are found as for ``order-status``; an order
already in that state is not written.
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
from bridge.updates.kinds.order_status import find_orders
from bridge.updates.kinds.refs import quote
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry
from bridge.updates.writes import Write, run_writes


@with_config(ConfigDict(**STRICT))
class CancelItem(TypedDict, total=False):
    """Whether a shop order is cancelled."""

    order: Required[Annotated[OrderRef, Field(description="the shop order's accountNumber, or its id")]]
    cancelled: Required[Annotated[bool, Field(description="true: cancelled; false: the cancellation is taken back")]]
    reason: Annotated[Key | None, Field(description="why, as the shop shows it")]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**STRICT))
class CancelBody(TypedDict):
    """``POST /1c/order-cancel``: orders cancelled in 1C; the latest value per order wins."""

    items: list[CancelItem]


def key_of(item: dict[str, Any]) -> str:
    return f"[{quote(item['order'])}]"


def value_of(item: dict[str, Any]) -> str:
    doc = {k: item[k] for k in ("cancelled", "reason") if item.get(k) is not None}
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def describe_key(key: list[Any]) -> str:
    return f"order {key[0]!r}"


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    orders = find_orders(rt, {str(entry.key[0]) for entry in entries})
    writes: list[Write] = []
    for entry in entries:
        order = orders.get(str(entry.key[0]))
        if order is None:
            outcomes.drop([entry], f"no order with accountNumber or id {entry.key[0]!r} in the shop")
            continue
        wanted = json.loads(entry.value_json)
        flag = "Y" if wanted["cancelled"] else "N"
        if str(order.get("canceled")) == flag:
            outcomes.apply([entry])
            continue
        fields: dict[str, Any] = {"canceled": flag}
        if wanted.get("reason") and wanted["cancelled"]:
            fields["reasonCanceled"] = wanted["reason"]
        writes.append(Write("sale.order.update", {"id": int(str(order["id"])), "fields": fields}, [entry]))
    run_writes(rt.shop, writes, outcomes)


KIND = UpdateKind(
    name="order-cancel",
    summary="orders cancelled in 1C",
    body=CancelBody,
    item=CancelItem,
    choices=(),
    required=("order", "cancelled"),
    fast_fields=None,
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
)
