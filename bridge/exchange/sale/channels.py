"""Which way an order goes to 1C: the HTTP service (``BRIDGE_ONEC_URL``), the exchange's query
(``BRIDGE_EXCHANGE_USER``), both, or neither yet.

The order job calls ``route`` once it has the order in hand. With the exchange configured the order is noted
as waiting for 1C's query (``bridge.exchange.sale.offers``). Without ``BRIDGE_ONEC_URL`` there is nothing to
send, so the job ends there: with the exchange, the order waits for the query; with neither, it waits for a
setting, held in ``bridge:orders:awaiting-channel``. That is one plain line in the log, never a dead letter:
nothing is wrong with the order. The clock's leader hands the held orders to the order job again once
``BRIDGE_ONEC_URL`` is set (``release_held``); the exchange, once switched on, offers them at its first query.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bridge import keys
from bridge.exchange.sale import offers
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.texts import as_text

log = logging.getLogger("bridge.exchange.sale.channels")

RELEASE_BATCH = 500  # held orders handed back per clock round

WAITING_FOR_QUERY = "waiting for 1C's exchange query"
WAITING_FOR_SETTING = "waiting: neither BRIDGE_ONEC_URL nor BRIDGE_EXCHANGE_USER is set"


def exchange_configured(settings: Settings) -> bool:
    """The exchange is on when its user and password are both set (as ``/1c/exchange`` itself requires)."""
    return not settings.missing_for("1C exchange")


def route(rt: Runtime, order_id: str, order: Mapping[str, Any]) -> str | None:
    """Note the order for the exchange when it is on; the job's outcome when there is nothing to send to 1C's
    HTTP service, else None (the job sends it)."""
    settings = rt.settings
    exchange = exchange_configured(settings)
    neither = not exchange and settings.onec_url is None
    if exchange or neither:  # with neither, the exchange (if it comes) offers the order at once
        offers.note(rt.redis, order_id, offers.stamp_of(order))
    if settings.onec_url is not None:
        return None
    if exchange:
        return WAITING_FOR_QUERY
    rt.redis.sadd(keys.ORDERS_AWAITING_CHANNEL, order_id)
    log.warning("order %s is kept until BRIDGE_ONEC_URL or BRIDGE_EXCHANGE_USER is set", order_id)
    return WAITING_FOR_SETTING


def release_held(rt: Runtime) -> int:
    """Hand the orders held for want of a channel to the order job, now that 1C's HTTP service is set."""
    if rt.settings.onec_url is None:
        return 0
    from bridge.orders.job import queue_order  # the order job imports this module

    released = 0
    popped: Any = rt.redis.spop(keys.ORDERS_AWAITING_CHANNEL, RELEASE_BATCH) or []
    for raw in popped:
        order_id = as_text(raw)
        if order_id and order_id.isdigit():
            queue_order(rt, order_id)
            released += 1
    if released:
        log.info("%d orders kept for want of a 1C setting are queued for 1C", released)
    return released
