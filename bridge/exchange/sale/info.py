"""``type=sale&mode=info``: the shop's order statuses, payment systems and delivery services, for the lists
1C's exchange settings screen fills (which 1C status a shop status is, which payment a payment system).

The three lists come from the shop's REST API in one ``batch`` (``sale.status.list`` for the order statuses,
``sale.paysystem.list``, ``sale.delivery.getlist``); a status is named by statuses.toml when it maps, as
1C knows it, else by its id. A list the shop refuses (a webhook without the ``pay_system`` or ``delivery``
scope) is sent empty rather than failing the whole answer. The reply copies 1C-Bitrix's byte for byte,
including the tag ``Cтатусы`` that begins with a Latin C: 1C's reader expects exactly that.
"""

from __future__ import annotations

import io
from typing import Any

from lxml import etree

from bridge.runtime import Runtime
from bridge.shop.batch import as_map

STATUSES_TAG = "Cтатусы"  # the first letter is the Latin C (0x43), as 1C-Bitrix writes it


def info_xml(rt: Runtime) -> bytes:
    """The reply body, in the encoding the sale reply uses (``BRIDGE_EXCHANGE_SALE_ENCODING``)."""
    result = rt.shop.batch(
        {
            "statuses": (
                "sale.status.list",
                {"select": ["id", "type", "sort"], "filter": {"type": "O"}, "order": {"sort": "asc"}},
            ),
            "paysystems": ("sale.paysystem.list", {"SELECT": ["ID", "NAME", "ACTIVE"], "ORDER": {"SORT": "ASC"}}),
            "deliveries": ("sale.delivery.getlist", {"SELECT": ["ID", "NAME", "ACTIVE"], "ORDER": {"SORT": "ASC"}}),
        }
    )
    statuses = result.results.get("statuses")
    status_rows = statuses.get("statuses", []) if isinstance(statuses, dict) else []
    root = etree.Element("Справочник")
    _list(
        root,
        STATUSES_TAG,
        [
            (str(r.get("id", "")), rt.mappings.statuses.get(str(r.get("id")), str(r.get("id", ""))))
            for r in _rows(status_rows)
        ],
    )
    _list(
        root,
        "ПлатежныеСистемы",
        [(str(r.get("ID", "")), str(r.get("NAME", ""))) for r in _rows(result.results.get("paysystems"))],
    )
    _list(
        root,
        "СлужбыДоставки",
        [(str(r.get("ID", "")), str(r.get("NAME", ""))) for r in _rows(result.results.get("deliveries"))],
    )
    encoding = rt.settings.exchange_sale_encoding
    buffer = io.BytesIO()
    if encoding == "utf-8":
        buffer.write(b"\xef\xbb\xbf")
    buffer.write(f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode("ascii"))
    written = etree.tostring(root, encoding=encoding, xml_declaration=False)
    buffer.write(written if isinstance(written, bytes) else written.encode(encoding))
    return buffer.getvalue()


def _rows(value: Any) -> list[dict[str, Any]]:
    return [row for row in as_map(value).values() if isinstance(row, dict)]


def _list(root: etree._Element, tag: str, entries: list[tuple[str, str]]) -> None:
    wrapper = etree.SubElement(root, tag)
    for entry_id, name in entries:
        element = etree.SubElement(wrapper, "Элемент")
        etree.SubElement(element, "Ид").text = entry_id
        etree.SubElement(element, "Название").text = name
