"""One ``type=sale&mode=query`` reply: the waiting orders, fetched from the shop 50 to a request, streamed.

The reply is a generator of byte chunks (one per 50 orders) for a streaming response, so a page of a
thousand orders never sits in memory whole: each chunk's orders are fetched with one ``batch`` of
``sale.order.get`` (within the shared rate limit), written, handed on and forgotten. A page holds at most
``BRIDGE_EXCHANGE_SALE_PAGE`` orders, oldest first; 1C confirms it with ``success`` and the next query
brings the next page.

Only what was actually written is recorded as offered, chunk by chunk, with the stamp each order had when it
was read (``bridge.exchange.sale.offers``). An order the shop no longer has leaves the waiting set; one that
cannot be mapped (a status statuses.toml lacks) is left out with its reason in the sync log, and waits.
If the shop fails half-way the document is closed properly with what it has: the rest come next time.

This is the one place a request handler waits for the shop: 1C's protocol has no way to ask again later
for a reply, so the reply is made while 1C waits, in chunks small enough to keep the connection busy.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree

from bridge.errors import BridgeError, PermanentError
from bridge.exchange.sale import documents, offers
from bridge.ops.synclog import Entry
from bridge.runtime import Runtime
from bridge.shop.batch import MAX_COMMANDS

log = logging.getLogger("bridge.exchange.sale.query")

ORDER_NOT_FOUND = ("200540400001", "201240400001")
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Reply:
    """What the web layer sends: the content type (naming the charset) and the body, chunk by chunk."""

    content_type: str
    chunks: Iterator[bytes]


def label(session: str) -> str:
    """How the sync log names a session: its public id (``sid``), never its cookie."""
    return session


def content_type(encoding: str) -> str:
    return f"application/xml; charset={encoding}"


def reply(rt: Runtime, session: str, version: str | None, *, now: datetime | None = None) -> Reply:
    """The reply to this session's query. The first chunk of orders is fetched before this returns, so a
    shop that cannot be reached at all raises ``BridgeError`` here, while a ``failure`` can still be sent."""
    encoding = rt.settings.exchange_sale_encoding
    offers.begin_offer(rt.redis, session)
    waiting = offers.page(rt.redis, rt.settings.exchange_sale_page)
    chunks = [waiting[i : i + MAX_COMMANDS] for i in range(0, len(waiting), MAX_COMMANDS)]
    first = _fetch(rt, chunks[0]) if chunks else {}
    body = _stream(rt, session, version, encoding, chunks, first, now or datetime.now())
    return Reply(content_type(encoding), body)


def _stream(
    rt: Runtime,
    session: str,
    version: str | None,
    encoding: str,
    chunks: list[list[tuple[str, str]]],
    first: dict[str, dict[str, Any] | None],
    now: datetime,
) -> Iterator[bytes]:
    buffer = io.BytesIO()
    if encoding == "utf-8":
        buffer.write(BOM)  # 1C's reader and Windows editors tell UTF-8 from windows-1251 by it
    buffer.write(f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode("ascii"))
    offered_total = skipped = 0
    with (
        etree.xmlfile(buffer, encoding=encoding) as xf,
        xf.element("КоммерческаяИнформация", documents.root_attributes(version, now)),
    ):
        for n, chunk in enumerate(chunks):
            try:
                fetched = first if n == 0 else _fetch(rt, chunk)
            except BridgeError as error:  # the rest wait for the next query
                log.warning("exchange query: the shop failed after %d orders: %s", offered_total, error)
                break
            offered, missing = [], []
            for order_id, stamp in chunk:
                if order_id not in fetched:
                    continue  # its command failed: it waits for the next query
                order = fetched[order_id]
                if order is None:
                    missing.append(order_id)
                    continue
                try:
                    elements = documents.order_elements(order, rt.mappings, version)
                except PermanentError as error:
                    skipped += 1
                    _note_skipped(rt, session, order_id, str(error))
                    continue
                for element in elements:
                    xf.write(element)
                offered.append((order_id, stamp))
            xf.flush()
            yield _take(buffer)
            offers.record_offered(rt.redis, session, offered)
            offers.drop(rt.redis, missing)
            _note_offered(rt, session, offered)
            offered_total += len(offered)
    yield _take(buffer)
    _note_query(rt, session, version, offered_total, skipped, offers.waiting_count(rt.redis))


def _take(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data


def _fetch(rt: Runtime, chunk: Sequence[tuple[str, str]]) -> dict[str, dict[str, Any] | None]:
    """One batch of ``sale.order.get``: order id → the order, or None when the shop has no such order.

    An order whose command failed otherwise is absent (offered next time). Raises when the request failed."""
    commands = {
        f"o{order_id}": ("sale.order.get", {"id": int(order_id)}) for order_id, _ in chunk if order_id.isdigit()
    }
    if not commands:
        return {}
    result = rt.shop.batch(commands)
    found: dict[str, dict[str, Any] | None] = {}
    for cmd_id, answer in result.results.items():
        order = answer.get("order") if isinstance(answer, dict) else None
        if isinstance(order, dict):
            found[cmd_id[1:]] = order
    for cmd_id, error in result.errors.items():
        if str(error.code) in ORDER_NOT_FOUND:
            found[cmd_id[1:]] = None
    return found


# --- what the operators see ---------------------------------------------------------------------------------


def _note_offered(rt: Runtime, session: str, offered: Sequence[tuple[str, str]]) -> None:
    for order_id, _ in offered:
        entry = Entry(
            "1c", "exchange.sale.query", "offered", "order", order_id, detail=f"offered to 1C in query {label(session)}"
        )
        rt.telemetry.record(entry, log_line=False)


def _note_skipped(rt: Runtime, session: str, order_id: str, reason: str) -> None:
    entry = Entry(
        "1c",
        "exchange.sale.query",
        "skipped",
        "order",
        order_id,
        error=reason,
        detail=f"left out of query {label(session)}",
    )
    rt.telemetry.record(entry)


def _note_query(rt: Runtime, session: str, version: str | None, offered: int, skipped: int, waiting: int) -> None:
    detail = f"session {label(session)}, version {version or '-'}: {offered} orders offered, {skipped} left out, {waiting} waiting"
    rt.telemetry.record(Entry("1c", "exchange.sale.query", "offered", detail=detail))


def note_success(rt: Runtime, session: str, confirmation: offers.Confirmation) -> None:
    """The session's ``success`` in the sync log, and one entry per order it confirmed."""
    for order_id in confirmation.confirmed:
        entry = Entry(
            "1c",
            "exchange.sale.success",
            "confirmed",
            "order",
            order_id,
            detail=f"confirmed by 1C in session {label(session)}",
        )
        rt.telemetry.record(entry, log_line=False)
    if confirmation.offered is None:
        detail = f"session {label(session)}: " + (
            "already confirmed" if confirmation.repeated else "no query to confirm"
        )
        rt.telemetry.record(Entry("1c", "exchange.sale.success", "ignored", detail=detail))
        return
    detail = (
        f"session {label(session)}: {len(confirmation.confirmed)} of {confirmation.offered} offered orders confirmed, "
        f"{confirmation.changed} changed since and offered again"
    )
    rt.telemetry.record(Entry("1c", "exchange.sale.success", "confirmed", detail=detail))
