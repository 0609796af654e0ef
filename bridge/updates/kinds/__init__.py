"""The kinds of update 1C pushes (``POST /1c/<kind>``), one module each, and ``KINDS``, their registry.

**A new kind is one new module here plus one line in ``KINDS``.** The module defines what 1C sends (its
item and body models, from the field types of ``bridge.updates.intake.models``), how an item becomes a
pending key and value (``bridge.updates.kinds.refs`` has the JSON parts), how a key reads in a report, the
writer that brings the shop to the pending values, and ends with ``KIND = UpdateKind(...)`` tying them
together (``bridge.updates.kinds.base``). Nothing else names a kind: the endpoint, the fast check and the
full validation, the schema files, the split into pending entries, the flush, the sweep, the reports of
dropped updates and ``/openapi.json`` all go through ``KINDS``; ``tests/test_update_kinds.py`` holds them
to it with a kind that exists only in that test. After adding one, write its schema file with
``python -m bridge.updates.intake.schema_files``.

Stock and prices are keyed by (product, group): ``bridge.updates.resolve`` and ``bridge.updates.records``
are helpers for kinds of that shape. A kind keyed otherwise (a product without a group) writes its own
``apply`` and ``describe_key``; a kind whose value is a whole document builds ``value_of`` with
``json.dumps(sort_keys=True)`` and may leave out the fast check (``fast_fields=None``).
"""

from __future__ import annotations

from bridge.updates.kinds import (
    order_cancel,
    order_payment,
    order_shipment,
    order_status,
    prices,
    products,
    sections,
    stock,
)
from bridge.updates.kinds.base import UpdateKind

__all__ = ["KINDS", "UpdateKind"]

# Name (the endpoint's last path segment and the Redis key part) → kind, in the order /openapi.json lists them.
KINDS: dict[str, UpdateKind] = {
    kind.name: kind
    for kind in (
        stock.KIND,
        prices.KIND,
        order_status.KIND,
        sections.KIND,  # before products: a product names its section
        products.KIND,
        order_payment.KIND,
        order_shipment.KIND,
        order_cancel.KIND,
    )
}
