"""1C's order documents (``documents___*.xml``, uploaded by ``mode=file``) read into plain records.

1C sends back the orders it changed, and from 2.10 their payments and shipments, as ``Документ`` elements
(at the root, or inside ``Контейнер``), with or without a namespace, in UTF-8 or windows-1251. What each
document is comes from ``ХозОперация``, as 1C-Bitrix's loader reads it; anything else is skipped. Only the
fields that act are kept: ``Ид``, ``Номер``, ``Основание`` and the requisites.

The file is streamed (``iterparse``, each document freed once read), with no DTD loaded, no entity
expanded and no network: a hostile file (XXE, an entity bomb) is refused, never followed. A file that is
not well-formed raises ``DocumentsFileError`` naming the line and column, for 1C's exchange log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO

from lxml import etree

from bridge.exchange.parse import HeadKept, declares_dtd

ORDER_OPERATIONS = frozenset({"заказ товара"})
PAYMENT_OPERATIONS = frozenset({"выплата наличных денег", "выплата безналичных денег", "эквайринговая операция"})
SHIPMENT_OPERATIONS = frozenset({"отпуск товара"})
ROOT = "КоммерческаяИнформация"
DOCTYPE_REFUSED = "Файл содержит DOCTYPE: такие файлы не принимаются"


class DocumentKind(StrEnum):
    ORDER = "order"
    PAYMENT = "payment"
    SHIPMENT = "shipment"


class DocumentsFileError(ValueError):
    """The upload cannot be read as 1C's documents; the message is for 1C's operator."""


@dataclass(frozen=True)
class IncomingDocument:
    kind: DocumentKind
    id: str  # Ид: 1C's GUID, or the shop's id for a document that came from the shop
    number: str  # Номер
    basis: str  # Основание: the order a payment or shipment belongs to
    requisites: dict[str, str] = field(default_factory=dict)  # Наименование → Значение
    deleted: bool = False  # ПометкаУдаления

    @property
    def order_ref(self) -> str:
        """How the order is found in the shop: ``Номер``, else ``Ид`` (an order); ``Основание`` (the others)."""
        if self.kind is DocumentKind.ORDER:
            return self.number or self.id
        return self.basis


def read_documents(source: IO[bytes]) -> Iterator[IncomingDocument]:
    """The documents of one upload, in file order."""
    kept = HeadKept(source)
    parser = etree.iterparse(
        kept,
        events=("start", "end"),
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    depth = 0
    try:
        for event, element in parser:
            tag = _local(element.tag)
            if event == "start":
                depth += 1
                if depth == 1 and element.getroottree().docinfo.doctype:
                    raise DocumentsFileError(DOCTYPE_REFUSED)
                if depth == 1 and tag != ROOT:
                    raise DocumentsFileError(f"Файл не является документами CommerceML: корневой элемент {tag}")
                continue
            depth -= 1
            if tag == "Документ":
                document = _document(element)
                element.clear(keep_tail=False)
                if document is not None:
                    yield document
    except etree.XMLSyntaxError as error:
        if declares_dtd(kept):
            raise DocumentsFileError(DOCTYPE_REFUSED) from None
        line, column = error.position if error.position else (0, 0)
        raise DocumentsFileError(f"Ошибка XML в строке {line}, позиция {column}: {error.msg}") from None


def _document(element: etree._Element) -> IncomingDocument | None:
    values = {_local(child.tag): (child.text or "").strip() for child in element if isinstance(child.tag, str)}
    operation = values.get("ХозОперация", "").casefold()
    if operation in ORDER_OPERATIONS:
        kind = DocumentKind.ORDER
    elif operation in PAYMENT_OPERATIONS:
        kind = DocumentKind.PAYMENT
    elif operation in SHIPMENT_OPERATIONS:
        kind = DocumentKind.SHIPMENT
    else:
        return None
    requisites: dict[str, str] = {}
    for child in element:
        if isinstance(child.tag, str) and _local(child.tag) == "ЗначенияРеквизитов":
            for requisite in child:
                name = value = ""
                for part in requisite:
                    if not isinstance(part.tag, str):
                        continue
                    if _local(part.tag) == "Наименование":
                        name = (part.text or "").strip()
                    elif _local(part.tag) == "Значение":
                        value = (part.text or "").strip()
                if name:
                    requisites[name] = value
    return IncomingDocument(
        kind=kind,
        id=values.get("Ид", ""),
        number=values.get("Номер", ""),
        basis=values.get("Основание", ""),
        requisites=requisites,
        deleted=values.get("ПометкаУдаления", "").casefold() in ("true", "1", "да"),
    )


def _local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1]
