"""Orders and their statuses: ``sale.order.get``, ``.list``, ``.update`` and ``sale.status.list``.

An order is kept whole, shaped as ``sale.order.get`` returns it (basket, property values, shipments,
payments); ``sale.order.list`` leaves the nested parts out, as the shop does.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from bridge.sandbox.shop import catalog
from bridge.sandbox.shop.filters import list_answer
from bridge.sandbox.shop.methods import MethodTable, require, required_fields, required_id
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import like_existing
from bridge.sandbox.shop.wire import Answer, ShopError

NOT_FOUND_ORDER = 200540400001  # sale's own error code for an order id that does not exist

ORDER_FIELDS = (
    "id", "accountNumber", "statusId", "dateInsert", "dateUpdate", "dateStatus", "version", "price", "currency",
    "discountValue", "taxValue", "canceled", "dateCanceled", "reasonCanceled", "empCanceledId", "userDescription",
    "comments", "additionalInfo", "lid", "personTypeId", "personTypeXmlId", "payed", "deducted", "marked",
    "dateMarked", "reasonMarked", "empMarkedId", "userId", "responsibleId", "empStatusId", "companyId", "xmlId",
    "id1c", "version1c", "updated1c", "externalOrder", "lockedBy", "dateLock", "orderTopic", "recountFlag",
    "recurringId", "affiliateId", "statusXmlId",
)  # fmt: skip
ORDER_NESTED = ("basketItems", "propertyValues", "shipments", "payments", "clients", "requisiteLink", "tradeBindings")
ORDER_UPDATABLE_FIELDS = (  # what sale.order.update accepts; the rest is read-only
    "price", "discountValue", "statusId", "empStatusId", "dateInsert", "marked", "empMarkedId", "reasonMarked",
    "userDescription", "additionalInfo", "comments", "responsibleId", "recurringId", "lockedBy", "recountFlag",
    "affiliateId", "updated1c", "orderTopic", "xmlId", "id1c", "version1c", "externalOrder", "canceled",
    "empCanceledId", "reasonCanceled",
)  # fmt: skip
ORDER_UPDATABLE = frozenset(ORDER_UPDATABLE_FIELDS)
STATUS_FIELDS = ("id", "type", "sort", "notify", "color", "xmlId")

# The order statuses (type "O") of the usual UT 11 table the bridge ships mappings for, plus two shipment
# statuses (type "D"): (id, type, sort, colour).
DEFAULT_STATUSES = (
    ("N", "O", 10, "#BEEDF1"),
    ("P", "O", 20, "#F1C5BE"),
    ("D", "O", 30, "#C2F1BE"),
    ("F", "O", 40, "#BEF1E3"),
    ("FF", "O", 50, "#B6C4E8"),
    ("C", "O", 60, "#E8B6B6"),
    ("DN", "D", 10, "#BEEDF1"),
    ("DF", "D", 20, "#C2F1BE"),
)
DEFAULT_ORDER_PROPERTIES = (  # (code, orderPropsId, name, default value)
    ("FIO", 1, "Full name", "Иванов Иван Иванович"),
    ("EMAIL", 2, "E-mail", "ivanov@example.ru"),
    ("PHONE", 3, "Phone", "+7 900 123-45-67"),
    ("INN", 4, "INN", ""),
    ("COMPANY", 5, "Company", ""),
    ("ADDRESS", 6, "Address", "г. Москва, ул. Тверская, д. 1, кв. 5"),
)
DEFAULT_ITEM: dict[str, Any] = {"product_id": 11, "name": "Чайник электрический", "price": 1500.0, "quantity": 2}


class SaleArranging(ShopState):
    """Tests create, change and delete orders as a shop manager would."""

    def __init__(self, **identity: Any) -> None:
        super().__init__(**identity)
        self.statuses.update(
            (sid, {"id": sid, "type": kind, "sort": sort, "notify": "Y", "color": color, "xmlId": None})
            for sid, kind, sort, color in DEFAULT_STATUSES
        )
        self._order_prop_ids: dict[str, int] = {code: pid for code, pid, _, _ in DEFAULT_ORDER_PROPERTIES}
        self._delivery_ids: dict[str, int] = {}

    def add_order(
        self,
        *,
        account_number: str | None = None,
        status: str = "N",
        items: list[dict[str, Any]] | None = None,
        delivery: tuple[str, float] | None = ("Courier", 300.0),
        properties: dict[str, str] | None = None,
        discount: float = 0.0,
        currency: str = "RUB",
        comment: str = "",
    ) -> dict[str, Any]:
        """Create an order shaped as ``sale.order.get`` returns it; returns a copy."""
        with self.lock:
            order_id = self.new_id("order")
            account = account_number if account_number is not None else str(order_id)
            now = self.now()
            basket = [
                self._basket_item(order_id, item, currency) for item in (items if items is not None else [DEFAULT_ITEM])
            ]
            goods = sum(item["price"] * item["quantity"] for item in basket)
            delivery_price = float(delivery[1]) if delivery else 0.0
            total = round(goods + delivery_price - discount, 2)
            tax = sum(
                item["price"] * item["quantity"] * item["vatRate"] / (1 + item["vatRate"])
                for item in basket
                if item["vatRate"]
            )
            order: dict[str, Any] = {
                "id": order_id,
                "accountNumber": account,
                "statusId": status,
                "dateInsert": now,
                "dateUpdate": now,
                "dateStatus": now,
                "version": 1,
                "price": total,
                "currency": currency,
                "discountValue": float(discount),
                "taxValue": round(tax, 2),
                "canceled": "N",
                "dateCanceled": None,
                "reasonCanceled": "",
                "empCanceledId": None,
                "userDescription": comment,
                "comments": "",
                "additionalInfo": "",
                "lid": "s1",
                "personTypeId": 1,
                "personTypeXmlId": "",
                "payed": "N",
                "deducted": "N",
                "marked": "N",
                "dateMarked": None,
                "reasonMarked": "",
                "empMarkedId": None,
                "userId": 2,
                "responsibleId": self.user_id,
                "empStatusId": self.user_id,
                "companyId": None,
                "xmlId": f"bx_{uuid.uuid4().hex[:13]}",
                "id1c": "",
                "version1c": "",
                "updated1c": "N",
                "externalOrder": "N",
                "lockedBy": "",
                "dateLock": None,
                "orderTopic": "",
                "recountFlag": "Y",
                "recurringId": "",
                "affiliateId": None,
                "statusXmlId": "",
                "basketItems": basket,
                "propertyValues": self._property_values(properties or {}),
                "shipments": self._shipments(order_id, account, delivery, currency, basket),
                "payments": [
                    {
                        "id": self.new_id("payment"),
                        "orderId": order_id,
                        "accountNumber": f"{account}/1",
                        "paid": "N",
                        "datePaid": None,
                        "sum": total,
                        "currency": currency,
                        "paySystemId": 1,
                        "paySystemName": "Cash",
                        "isReturn": "N",
                        "payVoucherNum": "",
                        "payVoucherDate": None,
                        "id1c": "",
                        "xmlId": "",
                        "comments": "",
                    }
                ],
                "clients": [],
                "requisiteLink": [],  # an empty PHP array, as the docs show it
                "tradeBindings": [],
            }
            self.orders[order_id] = order
            return copy.deepcopy(order)

    def _basket_item(self, order_id: int, item: dict[str, Any], currency: str) -> dict[str, Any]:
        product_id = int(item.get("product_id", DEFAULT_ITEM["product_id"]))
        product = self.products.get(product_id, {})
        article = item["article"] if "article" in item else catalog.article_of(self, product) or f"ART-{product_id:03d}"
        xml_id = item.get("xml_id") or product.get("xmlId") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"p/{product_id}"))
        price = float(item.get("price", DEFAULT_ITEM["price"]))
        base_price = float(item.get("base_price", price))
        properties = [{"code": "PRODUCT.XML_ID", "name": "Product XML_ID", "value": xml_id}]
        properties.append({"code": "CATALOG.XML_ID", "name": "Catalog XML_ID", "value": "catalog-1"})
        if article:
            properties.append({"code": "ARTICLE", "name": "Article", "value": article})
        return {
            "id": str(self.new_id("basket")),  # strings here, ints elsewhere: as sale.order.get documents it
            "orderId": str(order_id),
            "productId": product_id,
            "productXmlId": xml_id,
            "catalogXmlId": "catalog-1",
            "name": item.get("name") or product.get("name") or DEFAULT_ITEM["name"],
            "price": price,
            "basePrice": base_price,
            "discountPrice": round(base_price - price, 2),
            "currency": currency,
            "quantity": item.get("quantity", 1),
            "measureCode": "796",
            "measureName": "шт",
            "vatRate": item.get("vat_rate", 0.2),
            "vatIncluded": "Y",
            "xmlId": f"bx_{uuid.uuid4().hex[:13]}",
            "properties": properties,
            "reservations": [],
        }

    def _property_values(self, overrides: dict[str, str]) -> list[dict[str, Any]]:
        values = {code: value for code, _, _, value in DEFAULT_ORDER_PROPERTIES}
        names = {code: name for code, _, name, _ in DEFAULT_ORDER_PROPERTIES}
        values.update(overrides)
        out = []
        for code, value in values.items():
            if code not in self._order_prop_ids:
                self._order_prop_ids[code] = self.new_id("order_prop")
            out.append(
                {
                    "id": self.new_id("property_value"),
                    "orderPropsId": self._order_prop_ids[code],
                    "orderPropsXmlId": None,
                    "code": code,
                    "name": names.get(code, code.replace("_", " ").capitalize()),
                    "value": value,
                }
            )
        return out

    def _shipments(
        self,
        order_id: int,
        account: str,
        delivery: tuple[str, float] | None,
        currency: str,
        basket: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        if not delivery:
            return []
        name, price = delivery
        if name not in self._delivery_ids:
            self._delivery_ids[name] = self.new_id("delivery")
        return [
            {
                "id": self.new_id("shipment"),
                "orderId": order_id,
                "accountNumber": f"{account}/2",
                "deliveryId": self._delivery_ids[name],
                "deliveryName": name,
                "priceDelivery": float(price),
                "basePriceDelivery": float(price),
                "currency": currency,
                "statusId": "DN",
                "system": "N",
                "deducted": "N",
                "allowDelivery": "N",
                "trackingNumber": "",
                "deliveryDocNum": "",
                "deliveryDocDate": None,
                "id1c": "",
                "xmlId": "",
                "comments": "",
                "shipmentItems": [{"basketId": int(item["id"]), "quantity": item["quantity"]} for item in basket],
            }
        ]

    def update_order(self, order_id: int, **fields: Any) -> dict[str, Any]:
        """Change an order as a shop manager would (camelCase fields); bumps version and dateUpdate."""
        with self.lock:
            order = self.orders[order_id]
            apply_order_fields(self, order, fields)
            return copy.deepcopy(order)

    def delete_order(self, order_id: int) -> None:
        with self.lock:
            del self.orders[order_id]


def apply_order_fields(shop: ShopState, order: Row, fields: dict[str, Any]) -> None:
    """Change an order's fields as the shop does: the version and dates follow."""
    now = shop.now()
    old_status, old_canceled = order["statusId"], order["canceled"]
    for name, value in fields.items():
        order[name] = like_existing(order.get(name), value, name)
    order["version"] += 1
    order["dateUpdate"] = now
    if order["statusId"] != old_status:
        order["dateStatus"] = now
    if order["canceled"] != old_canceled:
        order["dateCanceled"] = now if order["canceled"] == "Y" else None


# -- the REST methods --------------------------------------------------------------------------------------

METHODS = MethodTable()


@METHODS.register("sale.order.get")
def sale_order_get(shop: ShopState, params: dict[str, Any]) -> Answer:
    order = shop.orders.get(required_id(params))
    if order is None:
        raise ShopError(NOT_FOUND_ORDER, "order does not exist")
    return Answer({"order": copy.deepcopy(order)})


@METHODS.register("sale.order.list")
def sale_order_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(shop.orders.values(), params, key="orders", fields=ORDER_FIELDS, exclude=ORDER_NESTED)


@METHODS.register("sale.order.update")
def sale_order_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    order_id = required_id(params)
    fields = required_fields(params)
    order = shop.orders.get(order_id)
    if order is None:
        raise ShopError(NOT_FOUND_ORDER, "order does not exist")
    unknown = sorted(set(fields) - ORDER_UPDATABLE)
    if unknown:
        raise ShopError(0, f"Unknown or read-only fields: {', '.join(unknown)}")
    if "statusId" in fields:
        status = shop.statuses.get(str(fields["statusId"]))
        if status is None or status["type"] != "O":
            raise ShopError(0, f"Order status {fields['statusId']!r} does not exist")
    apply_order_fields(shop, order, fields)
    return Answer({"order": copy.deepcopy(order)})


@METHODS.register("sale.status.list")
def sale_status_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(shop.statuses.values(), params, key="statuses", fields=STATUS_FIELDS)


# Payment systems and delivery services, as the exchange's mode=info asks for them: UPPER_SNAKE fields and a
# plain array as the result (these two methods predate the camelCase sale.* ones).
PAY_SYSTEMS = ({"ID": 1, "NAME": "Cash", "ACTIVE": "Y", "SORT": 100, "IS_CASH": "Y", "XML_ID": ""},)


@METHODS.register("sale.paysystem.list")
def sale_paysystem_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return Answer([dict(row) for row in PAY_SYSTEMS])


@METHODS.register("sale.delivery.getlist")
def sale_delivery_getlist(shop: ShopState, params: dict[str, Any]) -> Answer:
    ids: dict[str, int] = getattr(shop, "_delivery_ids", {})
    return Answer([{"ID": i, "NAME": name, "ACTIVE": "Y", "SORT": 100, "PARENT_ID": None} for name, i in ids.items()])


# Payments and shipments of the orders, as sale.payment.* and sale.shipment.* serve them. Their traps, from
# the method pages: sale.payment.update requires paySystemId; sale.shipment.update requires allowDelivery,
# deducted and deliveryId, and sets the delivery price to 0 when neither basePriceDelivery nor priceDelivery
# is given.
PAYMENT_FIELDS = (
    "id", "orderId", "accountNumber", "paid", "datePaid", "sum", "currency", "paySystemId", "paySystemName",
    "isReturn", "payVoucherNum", "payVoucherDate", "id1c", "xmlId", "comments",
)  # fmt: skip
PAYMENT_UPDATABLE = frozenset(
    ("paySystemId", "paid", "datePaid", "payVoucherNum", "payVoucherDate", "sum", "comments", "id1c", "xmlId",
     "isReturn", "updated1c", "version1c", "externalPayment", "marked", "reasonMarked")
)  # fmt: skip
SHIPMENT_FIELDS = (
    "id", "orderId", "accountNumber", "deliveryId", "deliveryName", "priceDelivery", "basePriceDelivery",
    "currency", "statusId", "system", "deducted", "allowDelivery", "trackingNumber", "deliveryDocNum",
    "deliveryDocDate", "id1c", "xmlId", "comments",
)  # fmt: skip
SHIPMENT_UPDATABLE = frozenset(
    ("allowDelivery", "deducted", "deliveryId", "statusId", "deliveryDocDate", "deliveryDocNum", "trackingNumber",
     "basePriceDelivery", "priceDelivery", "comments", "companyId", "responsibleId", "xmlId")
)  # fmt: skip
NOT_FOUND_PAYMENT = 201240400001
NOT_FOUND_SHIPMENT = 201140400001


def _parts(shop: ShopState, name: str) -> list[tuple[Row, Row]]:
    return [(order, part) for order in shop.orders.values() for part in order.get(name, [])]


def _find_part(shop: ShopState, name: str, part_id: int, missing: int) -> tuple[Row, Row]:
    for order, part in _parts(shop, name):
        if int(part["id"]) == part_id:
            return order, part
    raise ShopError(missing, f"{name[:-1]} is not found")


def _change(shop: ShopState, order: Row, part: Row, fields: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ShopError(0, f"Unknown or read-only fields: {', '.join(unknown)}")
    for name, value in fields.items():
        part[name] = like_existing(part.get(name), value, name)
    order["version"] += 1
    order["dateUpdate"] = shop.now()


@METHODS.register("sale.payment.list")
def sale_payment_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    rows = [part for _, part in _parts(shop, "payments")]
    return list_answer(rows, params, key="payments", fields=PAYMENT_FIELDS)


@METHODS.register("sale.payment.update")
def sale_payment_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    order, payment = _find_part(shop, "payments", required_id(params), NOT_FOUND_PAYMENT)
    fields = required_fields(params)
    if fields.get("paySystemId") in (None, ""):
        raise ShopError(0, "Required fields: paySystemId")
    _change(shop, order, payment, fields, PAYMENT_UPDATABLE)
    order["payed"] = "Y" if all(p.get("paid") == "Y" for p in order["payments"]) else "N"
    return Answer({"payment": copy.deepcopy(payment)})


@METHODS.register("sale.shipment.list")
def sale_shipment_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    rows = [part for _, part in _parts(shop, "shipments")]
    return list_answer(rows, params, key="shipments", fields=SHIPMENT_FIELDS)


@METHODS.register("sale.shipment.update")
def sale_shipment_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    order, shipment = _find_part(shop, "shipments", required_id(params), NOT_FOUND_SHIPMENT)
    fields = dict(required_fields(params))
    require(fields, ("allowDelivery", "deducted", "deliveryId"))
    if "basePriceDelivery" not in fields and "priceDelivery" not in fields:
        fields["basePriceDelivery"] = fields["priceDelivery"] = 0.0  # as the shop does: the price is lost
    elif "basePriceDelivery" in fields:
        fields["priceDelivery"] = fields["basePriceDelivery"]
    _change(shop, order, shipment, fields, SHIPMENT_UPDATABLE)
    order["deducted"] = "Y" if all(s.get("deducted") == "Y" for s in order["shipments"]) else "N"
    return Answer({"shipment": copy.deepcopy(shipment)})
