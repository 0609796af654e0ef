"""``UpdateKind``: everything the bridge knows about one kind of update from 1C, in one object.

The intake, the split into pending entries, the flush, the reports of dropped updates and ``/openapi.json``
all take what they need from here, so that no module keeps a table of its own keyed by the kind's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from bridge.updates.intake import fast
from bridge.updates.intake.fast import FastField

if TYPE_CHECKING:  # the kind modules import this one, and these import it back
    from redis.asyncio import Redis as AsyncRedis

    from bridge.runtime import Runtime
    from bridge.updates.outcomes import Outcomes
    from bridge.updates.pending import Entry

# The writer: brings the shop to the entries' values, and puts every entry in exactly one place of Outcomes.
Apply = Callable[["Runtime", "Sequence[Entry]", "Outcomes"], None]


@dataclass(frozen=True, eq=False, repr=False)
class UpdateKind:
    """One kind of update: what 1C sends, how it is coalesced, and how it reaches the shop.

    ``key_of`` and ``value_of`` run once per item of bodies with 50,000 items: they build their JSON with
    f-strings (``bridge.updates.kinds.refs``), which is several times faster than ``json.dumps``. A kind
    whose value is a whole document (a product with many fields) may use ``json.dumps(sort_keys=True)``:
    what matters is that equal values give equal text, since the flush compares them as text.
    """

    name: str  # the endpoint's last path segment (``POST /1c/<name>``) and the Redis key part
    summary: str  # what 1C pushes, in a few words, for /openapi.json
    body: type[Any]  # the model of the whole body (a TypedDict with ``items``); the schema file is made from it
    item: type[Any]  # the model of one item: its fields are what an "unknown field" hint offers
    choices: tuple[tuple[str, ...], ...]  # groups of fields of which an item must give exactly one
    required: tuple[str, ...]  # the fields every item carries besides its choices
    # How the fast check reads each field of the choices and the required ones; None: no fast check, every
    # body goes through the full validation.
    fast_fields: Mapping[str, FastField] | None
    key_of: Callable[[dict[str, Any]], str]  # a validated item → its coalescing key, as JSON text
    value_of: Callable[[dict[str, Any]], str]  # a validated item → the value the shop should hold, as JSON
    describe_key: Callable[[list[Any]], str]  # a decoded key as a person reads it, for reports
    apply: Apply  # writes the pending entries to the shop
    # Content an accepted body carries that its pending values only name (the pictures of products, kept by
    # digest): stored by the intake before it answers 202. None: nothing to keep.
    keep_content: Callable[[AsyncRedis, Sequence[dict[str, Any]]], Awaitable[None]] | None = None
    adapter: TypeAdapter[Any] = field(init=False, repr=False)  # validates the body; built once, up front

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.body))
        fast.shapes(self)  # built up front too, so that the first push does not wait for them

    def __repr__(self) -> str:
        return f"UpdateKind({self.name!r})"
