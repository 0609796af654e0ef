"""Many list lookups in few requests: ``*.list`` commands packed 50 to a ``batch``.

Finding 2,000 products by xml id one call each would cost 2,000 slots of the shop's rate limit (17 minutes
at 2 requests a second); 40 commands of ``filter: {"@xmlId": [50 values]}`` in one ``batch`` cost one. A
command whose answer has another page (more than 50 rows) is followed up with plain paged calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.shop.client import ShopClient
from bridge.shop.errors import ShopTransientError

IN_FILTER = 50  # values per "@field" filter: one page of 50 rows when each value matches one row


@dataclass(frozen=True)
class ListCommand:
    """One list call: ``key`` names the list inside ``result`` (``products`` for catalog.product.list)."""

    method: str
    params: Mapping[str, Any]
    key: str


def run_lists(shop: ShopClient, commands: Mapping[str, ListCommand]) -> dict[str, list[dict[str, Any]]]:
    """Every row of every command, by command id.

    Lookups are all-or-nothing for the caller: a failed command raises its error (a transient one first,
    so the flush waits rather than gives up when both kinds occurred).
    """
    if not commands:
        return {}
    answer = shop.batch_many({cmd_id: (c.method, dict(c.params)) for cmd_id, c in commands.items()})
    if answer.errors:
        errors = list(answer.errors.values())
        raise next((e for e in errors if isinstance(e, ShopTransientError)), errors[0])
    rows: dict[str, list[dict[str, Any]]] = {}
    for cmd_id, command in commands.items():
        found = _rows(answer.results.get(cmd_id), command)
        following = answer.nexts.get(cmd_id)
        if following:
            found.extend(shop.list_all(command.method, {**command.params, "start": following}, command.key))
        rows[cmd_id] = found
    return rows


def _rows(result: Any, command: ListCommand) -> list[dict[str, Any]]:
    if isinstance(result, dict):
        listed = result.get(command.key) or []
    elif isinstance(result, list):
        listed = result
    else:
        listed = []
    return [row for row in listed if isinstance(row, dict)]


def chunked(values: Sequence[Any], size: int = IN_FILTER) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
