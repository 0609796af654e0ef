"""1C's order documents become shop updates, through the same coalesced, rate-limited path as ``/1c/order-status``.

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

from bridge.errors import PermanentError
from bridge.exchange.sale.incoming import DocumentKind, IncomingDocument
from bridge.mappings import Mappings
from bridge.queue.retry import give_up
from bridge.queue.work import HELD_STATUS_JOB
from bridge.runtime import Runtime, current
from bridge.updates import pending
from bridge.updates.flush import queue_flush
from bridge.updates.kinds import order_status

STATUS_KIND = order_status.KIND.name
_CODE = re.compile(r"^\s*\[([^\]]+)\]\s*(.*)$")


@dataclass
class DocumentCounts:
    """What one upload of 1C's documents did, for the ``success`` line 1C's operator reads."""

    documents: Counter[str] = field(default_factory=Counter)
    statuses: int = 0
    held: int = 0
    not_applied: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        line = (
            f"Документов: {sum(self.documents.values())}; статусов заказов поставлено в очередь: {self.statuses}"
            f"; отложено (статус не сопоставлен): {self.held}"
        )
        if self.not_applied:
            line += "; не переносятся в магазин: " + ", ".join(
                f"{k} ({n})" for k, n in sorted(self.not_applied.items())
            )
        return line


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
    """Stage the statuses the documents set; hold the unmapped ones as dead letters. Queues the flush."""
    counts = DocumentCounts()
    items: list[dict[str, str]] = []
    for document in documents:
        counts.documents[document.kind.value] += 1
        if document.kind is not DocumentKind.ORDER:
            counts.not_applied[_fact(document)] += 1
            continue
        ref = document.order_ref
        if not ref:
            continue
        if document.deleted or document.requisites.get("Отменен", "").casefold() == "true":
            counts.not_applied["отмена"] += 1
        for name in ("Дата оплаты по 1С", "Дата отгрузки по 1С"):
            if len(document.requisites.get(name, "").strip()) > 1:  # 1C writes an empty date as "T"
                counts.not_applied[name] += 1
        shop_id, written = status_of(document, rt.mappings)
        if shop_id:
            items.append({"order": ref, "status_id": shop_id})
        elif written:
            hold_status(rt, ref, written)
            counts.held += 1
    if items:
        pending.stage_items(rt.redis, STATUS_KIND, items, [None] * len(items), batch=batch)
        queue_flush(rt, STATUS_KIND)
        counts.statuses = len(items)
    return counts


def _fact(document: IncomingDocument) -> str:
    return "оплаты" if document.kind is DocumentKind.PAYMENT else "отгрузки"


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
    pending.stage_items(rt.redis, STATUS_KIND, [{"order": order_ref, "status_id": shop_id}], [None], batch="held")
    queue_flush(rt, STATUS_KIND)
    return f"status {shop_id} staged"
