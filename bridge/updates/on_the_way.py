"""Documents (products, sections) another kind's flush will still write: what an update naming them waits for.

The kinds flush one after the other in slices, so a price, a stock record or a product may come up before
the product or section it names has been written, though that document is in the same exchange file or the
push just before. Dropping such an update would lose it for good (1C does not send an unchanged value
again), so the flush that meets it asks here: still on its way, the update waits; held, it is held too.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis

from bridge import keys
from bridge.updates.outcomes import Problem
from bridge.updates.pending import pending_key


def on_their_way(redis: Redis, kind: str, xml_ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """(the ``xml_ids`` the kind's flush will still write, those it holds): a body in its inbox may hold any."""
    from bridge.updates.kinds.refs import xml_id_key  # the kinds package imports this module

    if not xml_ids:
        return set(), set()
    pipe = redis.pipeline(transaction=False)
    pipe.exists(keys.UPDATES_INBOX.format(kind=kind))
    for xml in xml_ids:
        pipe.hexists(pending_key(kind), xml_id_key(xml))
        pipe.hexists(keys.UPDATES_HELD.format(kind=kind), xml_id_key(xml))
    answers = pipe.execute()
    if answers[0]:
        return set(xml_ids), set()
    coming = {x for n, x in enumerate(xml_ids) if answers[1 + 2 * n]}
    held = {x for n, x in enumerate(xml_ids) if answers[2 + 2 * n]}
    return coming, held


def held_with(product: str) -> Problem:
    """Why an update naming a held product is held too (``product`` in words): the product's dead letter says
    what to fix, and once the product is sent on, this one must go too."""
    return Problem(
        f"{product} is held itself (see its dead letter); once it is sent on, `bridge failed retry` this one too",
        "product_held",
        setup=True,
    )
