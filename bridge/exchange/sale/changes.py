"""1C's order documents become shop updates, through the same coalesced, rate-limited path as ``/1c/order-status``.

What acts, by the names 1C-Bitrix's loader reads: on an order document «Статуса заказа ИД» / «Статус заказа»
(``order-status``), «Отменен» or the deletion mark (``order-cancel``: cancelled, or taken back when a later
document says «Отменен» false), «Дата оплаты по 1С» with «Номер оплаты по 1С» (``order-payment``: every
payment of the order paid), «Дата отгрузки по 1С» with «Номер отгрузки по 1С» (``order-shipment``: delivery
allowed); on a payment document «Оплачен» (that payment), on a shipment document «Отгружен» (that shipment
shipped). 1C writes an empty date as ``T``: it counts as no date.

An order document's status is «Статуса заказа ИД» (the shop's status id, as the shop sent it in the query)
when it names a status statuses.toml knows, else «Статус заказа» (``[F] Handed to courier`` or the bare
name) through the mapping. The order is named by ``Номер`` (the shop's ``accountNumber``), else by ``Ид``;
the ``order-status`` kind finds it by accountNumber, then by id. A status that maps to nothing is never
guessed: it is held as a dead letter (``bridge failed list`` shows the reason) and applied by
``bridge failed retry`` once the mapping names it (restart the workers after editing statuses.toml).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import PermanentError
from bridge.exchange.sale.incoming import DocumentKind, IncomingDocument
from bridge.mappings import Mappings
from bridge.queue.retry import give_up
from bridge.queue.work import HELD_STATUS_JOB
from bridge.runtime import Runtime, current
from bridge.updates import inbox
from bridge.updates.flush import queue_flush
from bridge.updates.kinds import order_cancel, order_payment, order_shipment, order_status

STATUS_KIND = order_status.KIND.name
PAYMENT_KIND = order_payment.KIND.name
SHIPMENT_KIND = order_shipment.KIND.name
CANCEL_KIND = order_cancel.KIND.name
_CODE = re.compile(r"^\s*\[([^\]]+)\]\s*(.*)$")


@dataclass
class DocumentCounts:
    """What one upload of 1C's documents did, for the ``success`` line 1C's operator reads."""

    documents: Counter[str] = field(default_factory=Counter)
    staged: Counter[str] = field(default_factory=Counter)  # kind → items staged
    held: int = 0

    @property
    def statuses(self) -> int:
        return self.staged[STATUS_KIND]

    def summary(self) -> str:
        return (
            f"Документов: {sum(self.documents.values())}; в очередь магазина: статусов {self.staged[STATUS_KIND]}, "
            f"оплат {self.staged[PAYMENT_KIND]}, отгрузок {self.staged[SHIPMENT_KIND]}, отмен {self.staged[CANCEL_KIND]}"
            f"; отложено (статус не сопоставлен): {self.held}"
        )


def status_of(document: IncomingDocument, mappings: Mappings) -> tuple[str | None, str]:
    """(the shop status id or None, the status as 1C wrote it); ("", "") when the document names none."""
    by_id = document.requisites.get("Статуса заказа ИД", "").strip()
    by_name = document.requisites.get("Статус заказа", "").strip()
    if by_id and by_id in mappings.statuses:
        return by_id, by_id
    if by_name:
        return resolve_name(by_name, mappings), by_name
    if by_id:
        return None, by_id
    return "", ""


def resolve_name(text: str, mappings: Mappings) -> str | None:
    """``[F] Handed to courier`` or ``Handed to courier`` → ``F`` through statuses.toml; None when unmapped."""
    found = _CODE.match(text)
    name = found.group(2) if found else text
    shop_id = mappings.shop_status(name) if name else None
    if shop_id is None and found and found.group(1).strip() in mappings.statuses:
        shop_id = found.group(1).strip()
    return shop_id


def apply_documents(rt: Runtime, documents: Iterable[IncomingDocument], *, batch: str) -> DocumentCounts:
    """Stage what the documents change; hold unmapped statuses as dead letters. Queues the kinds' flushes."""
    counts = DocumentCounts()
    items: dict[str, list[dict[str, Any]]] = {STATUS_KIND: [], PAYMENT_KIND: [], SHIPMENT_KIND: [], CANCEL_KIND: []}
    for document in documents:
        counts.documents[document.kind.value] += 1
        ref = document.order_ref
        if not ref:
            continue
        values = document.requisites
        if document.kind is DocumentKind.PAYMENT:
            if "Оплачен" in values:
                item = {"order": ref, "payment": document.number or document.id, "paid": _true(values["Оплачен"])}
                items[PAYMENT_KIND].append(_with(item, date=_date(values.get("Дата оплаты по 1С"))))
            continue
        if document.kind is DocumentKind.SHIPMENT:
            if "Отгружен" in values:
                item = {"order": ref, "shipment": document.number or document.id, "shipped": _true(values["Отгружен"])}
                items[SHIPMENT_KIND].append(_with(item, date=_date(values.get("Дата отгрузки по 1С"))))
            continue
        if document.deleted or "Отменен" in values:
            items[CANCEL_KIND].append({"order": ref, "cancelled": document.deleted or _true(values.get("Отменен", ""))})
        paid = _date(values.get("Дата оплаты по 1С"))
        if paid:
            items[PAYMENT_KIND].append(
                _with({"order": ref, "paid": True, "date": paid}, number=values.get("Номер оплаты по 1С"))
            )
        shipped = _date(values.get("Дата отгрузки по 1С"))
        if shipped:
            item = {"order": ref, "allow_delivery": True, "date": shipped}
            items[SHIPMENT_KIND].append(_with(item, number=values.get("Номер отгрузки по 1С")))
        shop_id, written = status_of(document, rt.mappings)
        if shop_id:
            items[STATUS_KIND].append({"order": ref, "status_id": shop_id})
        elif written:
            hold_status(rt, ref, written)
            counts.held += 1
    for kind, staged in items.items():
        if staged:
            inbox.stage_after_inbox(rt.redis, kind, staged, [None] * len(staged), batch=batch)
            queue_flush(rt, kind)
            counts.staged[kind] = len(staged)
    return counts


def _true(value: str) -> bool:
    return value.strip().casefold() in ("true", "1", "да", "истина")


def _date(value: str | None) -> str | None:
    """1C's date as the shop takes it; 1C writes an empty one as "T" (the separator alone)."""
    text = (value or "").strip()
    if len(text) <= 1:
        return None
    return text.replace(" ", "T")


def _with(item: dict[str, Any], **optional: str | None) -> dict[str, Any]:
    item.update({k: v for k, v in optional.items() if v})
    return item


def hold_status(rt: Runtime, order_ref: str, written: str) -> None:
    """A dead letter waiting for the mapping: the job fails at once with the reason, and a retry applies it."""
    work = HELD_STATUS_JOB.work(order_ref, written)
    work.put(rt.queue(HELD_STATUS_JOB.queue), timeout=rt.settings.job_timeout)


def apply_held_status(order_ref: str, written: str, **_: object) -> str:
    """The held status of one order, tried again (the job a dead letter replays)."""
    rt = current()
    shop_id = written if written in rt.mappings.statuses else resolve_name(written, rt.mappings)
    if shop_id is None:
        raise give_up(
            PermanentError(
                f"1C set order {order_ref} to status {written!r}, which statuses.toml does not map to a shop status; "
                "add it under [statuses], restart the workers, then bridge failed retry this job"
            )
        )
    inbox.stage_after_inbox(rt.redis, STATUS_KIND, [{"order": order_ref, "status_id": shop_id}], [None], batch="held")
    queue_flush(rt, STATUS_KIND)
    return f"status {shop_id} staged"
