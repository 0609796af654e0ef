"""Order statuses set in 1C, into the shop: ``sale.order.update {"id", "fields": {"statusId"}}``.

1C knows an order by the number the buyer saw (``accountNumber``) or by the shop's id, and names the
status in its own words ("In progress"), which ``statuses.toml`` maps to the shop's id ("P"). The orders
are found 50 at a time with ``sale.order.list`` inside one ``batch``: by accountNumber first, and by id
for a number that is no accountNumber. An order that already has the status is not written.

The module is the whole kind: the body 1C sends (``StatusItem``), its pending key and value, the writer, and
``KIND`` at the end, which ties them together for the registry (``bridge.updates.kinds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from bridge.runtime import Runtime
from bridge.shop.lists import ListCommand, chunked, run_lists
from bridge.updates.intake.fast import KEY, ORDER, STATUS_ID
from bridge.updates.intake.models import STRICT, TS_DESCRIPTION, Key, OrderRef, StatusId, Timestamp, one_of
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.refs import named_ref, quote
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry
from bridge.updates.writes import Write, run_writes

# --- what 1C sends: POST /1c/order-status -----------------------------------------------------------------

CHOICES = (("status", "status_id"),)


@with_config(ConfigDict(**STRICT, json_schema_extra=one_of(CHOICES)))
class StatusItem(TypedDict, total=False):
    """The status of one shop order."""

    order: Required[Annotated[OrderRef, Field(description="the shop order's accountNumber, or its id")]]
    status: Annotated[Key | None, Field(description="a 1C status name, mapped to a shop status in statuses.toml")]
    status_id: Annotated[StatusId | None, Field(description="the shop's status id, such as P")]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**STRICT))
class StatusBody(TypedDict):
    """``POST /1c/order-status``: order statuses set in 1C; the latest value per order wins."""

    items: list[StatusItem]


def key_of(item: dict[str, Any]) -> str:
    return f"[{quote(item['order'])}]"


def value_of(item: dict[str, Any]) -> str:
    return f"[{named_ref(item, 'status', 'status_id')}]"


def describe_key(key: list[Any]) -> str:
    return f"order {key[0]!r}"


# --- the writer -----------------------------------------------------------------------------------------

SELECT = ["id", "accountNumber", "statusId", "canceled"]


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    """Set the statuses of ``entries``; every entry ends up in ``outcomes``."""
    wanted: list[tuple[Entry, str]] = []
    for entry in entries:
        how, value = entry.value
        status_id = rt.mappings.shop_status(value) if how == "key" else value
        if status_id is None:
            reason = f"1C status {value!r} is not mapped to a shop status; add it under [statuses] in statuses.toml"
            outcomes.hold([entry], reason, why="unmapped_status")
        else:
            wanted.append((entry, status_id))
    if not wanted:
        return
    orders = find_orders(rt, {str(entry.key[0]) for entry, _ in wanted})
    winners: dict[int, tuple[Entry, str]] = {}
    for entry, status_id in wanted:
        ref = str(entry.key[0])
        order = orders.get(ref)
        if order is None:
            outcomes.drop([entry], f"no order with accountNumber or id {ref!r} in the shop", why="unknown_order")
            continue
        order_id = int(str(order["id"]))
        known = winners.get(order_id)
        if known is not None and not entry.newer_than(known[0]):
            outcomes.supersede([entry])
            continue
        if known is not None:
            outcomes.supersede([known[0]])
        winners[order_id] = (entry, status_id)
    writes: list[Write] = []
    for order_id, (entry, status_id) in winners.items():
        if str(orders[str(entry.key[0])].get("statusId")) == status_id:
            outcomes.apply([entry])  # the order already has this status
            continue
        params = {"id": order_id, "fields": {"statusId": status_id}}
        writes.append(Write("sale.order.update", params, [entry], details={"order_id": order_id}))
    run_writes(rt.shop, writes, outcomes)


def find_orders(rt: Runtime, refs: set[str]) -> dict[str, dict[str, object]]:
    """Order rows (id, accountNumber, statusId) by the ref 1C used; refs not found are absent."""
    ordered = sorted(refs)
    numbers = [ref for ref in ordered if ref.isdigit()]
    commands: dict[str, ListCommand] = {}
    for n, chunk in enumerate(chunked(ordered)):
        commands[f"number{n}"] = ListCommand(
            "sale.order.list", {"select": SELECT, "filter": {"@accountNumber": chunk}}, "orders"
        )
    for n, chunk in enumerate(chunked(numbers)):
        ids = [int(ref) for ref in chunk]
        commands[f"id{n}"] = ListCommand("sale.order.list", {"select": SELECT, "filter": {"@id": ids}}, "orders")
    by_number: dict[str, dict[str, object]] = {}
    by_id: dict[str, dict[str, object]] = {}
    for cmd_id, rows in run_lists(rt.shop, commands).items():
        for row in rows:
            if cmd_id.startswith("number"):
                by_number[str(row.get("accountNumber"))] = row
            else:
                by_id[str(row.get("id"))] = row
    return {ref: by_number.get(ref) or by_id[ref] for ref in ordered if ref in by_number or ref in by_id}


KIND = UpdateKind(
    name="order-status",
    summary="order statuses set in 1C",
    body=StatusBody,
    item=StatusItem,
    choices=CHOICES,
    required=("order",),
    fast_fields={"order": ORDER, "status": KEY, "status_id": STATUS_ID},
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
)
