"""The shop order → 1C document mapping: the contract's shape, money that adds up to the kopeck, no guessing."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import PermanentError
from bridge.mappings import default_mappings, load_mappings
from bridge.orders.document import build_document, document_digest, should_send

ORDER: dict[str, Any] = {
    "id": 300,
    "accountNumber": "300",
    "statusId": "N",
    "dateInsert": "2024-03-15T10:30:00+03:00",
    "dateUpdate": "2024-03-15T10:31:00+03:00",
    "version": 1,
    "price": 3300.0,
    "currency": "RUB",
    "discountValue": 0.0,
    "canceled": "N",
    "userDescription": "Позвоните за час",
    "comments": "",
    "lid": "s1",
    "basketItems": [
        {
            "id": "255",
            "orderId": "300",
            "productId": 11,
            "productXmlId": "guid-11",
            "name": "Чайник",
            "price": 1500.0,
            "basePrice": 1600.0,
            "discountPrice": 100.0,
            "currency": "RUB",
            "quantity": 2,
            "vatRate": 0.2,
            "vatIncluded": "Y",
            "properties": [
                {"code": "PRODUCT.XML_ID", "value": "guid-11"},
                {"code": "ARTICLE", "name": "Article", "value": "ART-001"},
            ],
        }
    ],
    "propertyValues": [
        {"code": "FIO", "value": "Иванов Иван"},
        {"code": "EMAIL", "value": "ivan@example.com"},
        {"code": "PHONE", "value": "+7 900 000-00-00"},
        {"code": "INN", "value": "7712345678"},
        {"code": "COMPANY", "value": "ИП Иванов"},
        {"code": "ADDRESS", "value": "Москва, ул. Ленина, 1"},
        {"code": "UTM_SOURCE", "value": "yandex"},
    ],
    "shipments": [
        {"id": 1, "deliveryName": "Courier", "priceDelivery": 300.0, "system": "N"},
        {"id": 2, "deliveryName": "", "priceDelivery": 0.0, "system": "Y"},
    ],
    "payments": [{"id": 1, "sum": 3300.0, "paid": "N"}],
}


def order(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(ORDER)
    result.update(changes)
    return result


def item(item_id: str, price: Any, quantity: Any, vat: Any = 0.2, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "name": f"item {item_id}", "productXmlId": f"guid-{item_id}", "price": price,
            "quantity": quantity, "vatRate": vat, "properties": [], **extra}  # fmt: skip


def money(value: Any) -> Decimal:
    """Floats in the document are exact two-place values; Decimal(str()) reads them back exactly."""
    return Decimal(str(value))


def assert_adds_up(document: dict[str, Any]) -> None:
    lines = sum((money(line["Amount"]) for line in document["Goods"]), Decimal())
    delivery = money(document["Delivery"]["Price"]) if document["Delivery"] else Decimal(0)
    assert lines + delivery == money(document["DocumentAmount"])
    for line in document["Goods"]:
        assert money(line["Amount"]) == money(line["Amount"]).quantize(Decimal("0.01"))
        assert money(line["Price"]) == money(line["Price"]).quantize(Decimal("0.01"))


def test_the_contract_example() -> None:
    assert build_document(ORDER, default_mappings()) == {
        "Number": "300",
        "SiteId": "300",
        "Date": "2024-03-15T10:30:00",
        "Status": "New",
        "Counterparty": {"TIN": "7712345678", "Name": "ИП Иванов", "Email": "ivan@example.com",
                         "Phone": "+7 900 000-00-00"},
        "Goods": [{"Article": "ART-001", "XmlId": "guid-11", "Name": "Чайник", "Quantity": 2, "Price": 1500.0,
                   "Amount": 3000.0, "VATRate": "20%"}],
        "Delivery": {"Name": "Courier", "Price": 300.0, "Address": "Москва, ул. Ленина, 1"},
        "DocumentAmount": 3300.0,
        "Currency": "RUB",
        "Comment": "Позвоните за час",
        "Properties": {"UTM_SOURCE": "yandex", "PROMO_CODE": None},
        "Cancelled": False,
    }  # fmt: skip


def test_the_document_is_json_as_1c_reads_it() -> None:
    text = json.dumps(build_document(ORDER, default_mappings()), ensure_ascii=False)
    assert '"Amount": 3000.0' in text and '"DocumentAmount": 3300.0' in text


def test_an_order_discount_is_spread_over_the_lines_to_the_kopeck() -> None:
    # Lines 1000 + 3×333.33 + 2×50 = 2099.99; delivery 250; the buyer pays 2000 after a cart coupon.
    source = order(
        price=2000.0,
        discountValue=349.99,
        basketItems=[item("1", 1000.0, 1), item("2", 333.33, 3), item("3", 50.0, 2)],
        shipments=[{"deliveryName": "Courier", "priceDelivery": 250.0, "system": "N"}],
    )
    document = build_document(source, default_mappings())
    assert_adds_up(document)
    amounts = [money(line["Amount"]) for line in document["Goods"]]
    assert sum(amounts) == Decimal("1750.00")
    # Proportional: each line × 1750/2099.99, rounded to kopecks; they happen to add up here.
    assert amounts == [Decimal("833.34"), Decimal("833.33"), Decimal("83.33")]
    prices = [money(line["Price"]) for line in document["Goods"]]
    assert prices == [Decimal("833.34"), Decimal("277.78"), Decimal("41.67")]  # Amount / Quantity, rounded
    assert document["Delivery"]["Price"] == 250.0


def test_the_remainder_goes_to_the_largest_line() -> None:
    # 1.00 + 1.00 + 1.01 paid as 2.00: the shares round to 0.66, 0.66, 0.67 (1.99); the missing kopeck goes
    # to the largest line, not to the first or the last.
    source = order(price=2.0, basketItems=[item("1", 1.0, 1), item("2", 1.0, 1), item("3", 1.01, 1)], shipments=[])
    document = build_document(source, default_mappings())
    assert [money(line["Amount"]) for line in document["Goods"]] == [Decimal("0.66"), Decimal("0.66"), Decimal("0.68")]
    assert_adds_up(document)


def test_item_discounts_are_already_in_the_price() -> None:
    document = build_document(ORDER, default_mappings())
    assert document["Goods"][0]["Price"] == 1500.0  # not basePrice 1600


@given(
    lines=st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2),
            st.integers(min_value=1, max_value=50),
        ),
        min_size=1,
        max_size=8,
    ),
    delivery=st.decimals(min_value=Decimal(0), max_value=Decimal("999.99"), places=2),
    discount_share=st.floats(min_value=0, max_value=0.9),
)
@settings(max_examples=200, deadline=None)
def test_totals_always_add_up(lines: list[tuple[Decimal, int]], delivery: Decimal, discount_share: float) -> None:
    gross = sum((price * qty for price, qty in lines), Decimal())
    discount = (gross * Decimal(str(discount_share))).quantize(Decimal("0.01"))
    total = gross - discount + delivery
    source = order(
        price=str(total),  # strings, as some shops send them
        basketItems=[item(str(i), str(price), str(qty)) for i, (price, qty) in enumerate(lines)],
        shipments=[{"deliveryName": "Courier", "priceDelivery": str(delivery), "system": "N"}],
    )
    document = build_document(source, default_mappings())
    assert_adds_up(document)
    assert money(document["DocumentAmount"]) == total
    assert all(money(line["Amount"]) >= 0 for line in document["Goods"])


@pytest.mark.parametrize(("rate", "text"), [(0.2, "20%"), (0.1, "10%"), ("0.20", "20%"), (0, "0%"), (None, "Без НДС")])
def test_vat_text(rate: Any, text: str) -> None:
    source = order(basketItems=[item("1", 3000.0, 1, vat=rate)])
    assert build_document(source, default_mappings())["Goods"][0]["VATRate"] == text


def test_unknown_status_is_not_guessed() -> None:
    with pytest.raises(PermanentError) as caught:
        build_document(order(statusId="ZZ"), default_mappings())
    message = str(caught.value)
    assert "'ZZ'" in message
    assert "mappings/statuses.toml" in message
    assert "order 300" in message


def test_cancelled() -> None:
    assert build_document(order(canceled="Y"), default_mappings())["Cancelled"] is True
    assert build_document(order(canceled="N"), default_mappings(), cancelled=True)["Cancelled"] is True
    assert build_document(order(canceled="N"), default_mappings())["Cancelled"] is False


def test_strings_for_numbers_and_ids() -> None:
    source = order(id="300", price="3300.00")
    source["basketItems"][0].update(price="1500,00", quantity="2", vatRate="0.20", id=255)
    source["shipments"][0].update(id="1", priceDelivery="300")
    assert build_document(source, default_mappings()) == build_document(ORDER, default_mappings())
    assert build_document(order(id=300.0), default_mappings())["SiteId"] == "300"


def test_fractional_quantities() -> None:
    source = order(price=450.0, basketItems=[item("1", 300.0, "1.5")], shipments=[])
    line = build_document(source, default_mappings())["Goods"][0]
    assert line["Quantity"] == 1.5
    assert line["Amount"] == 450.0
    assert line["Price"] == 300.0


def test_a_number_that_is_not_one_is_permanent() -> None:
    with pytest.raises(PermanentError, match="price is not a number"):
        build_document(order(basketItems=[item("1", "abc", 1)]), default_mappings())


def test_no_shipment_means_no_delivery() -> None:
    for shipments in ([], [{"deliveryName": "", "priceDelivery": 0, "system": "Y"}]):
        document = build_document(order(price=3000.0, shipments=shipments), default_mappings())
        assert document["Delivery"] is None
        assert_adds_up(document)


def test_counterparty_name_falls_back_to_the_person() -> None:
    values = [p for p in ORDER["propertyValues"] if p["code"] not in ("COMPANY", "INN")]
    document = build_document(order(propertyValues=values), default_mappings())
    assert document["Counterparty"]["Name"] == "Иванов Иван"
    assert document["Counterparty"]["TIN"] is None


def test_article_falls_back_to_cml2_article() -> None:
    line = item("1", 3000.0, 1, properties=[{"code": "CML2_ARTICLE", "value": "A-77"}])
    line.pop("productXmlId")
    line["properties"].append({"code": "PRODUCT.XML_ID", "value": "guid-from-props"})
    goods = build_document(order(basketItems=[line]), default_mappings())["Goods"][0]
    assert goods["Article"] == "A-77"
    assert goods["XmlId"] == "guid-from-props"


def test_date_is_the_shops_local_time() -> None:
    assert build_document(order(dateInsert="2024-12-31T23:59:59+05:00"), default_mappings())["Date"] == (
        "2024-12-31T23:59:59"
    )
    assert build_document(order(dateInsert="2024-01-02T03:04:05Z"), default_mappings())["Date"] == "2024-01-02T03:04:05"
    with pytest.raises(PermanentError, match="dateInsert"):
        build_document(order(dateInsert="yesterday"), default_mappings())


def test_the_result_envelope_is_accepted() -> None:
    assert build_document({"order": ORDER}, default_mappings()) == build_document(ORDER, default_mappings())


def test_field_names_come_from_the_mappings(tmp_path: Path) -> None:
    (tmp_path / "order.toml").write_text(
        'properties = ["UTM_SOURCE"]\n[fields]\nnumber = "Номер"\ngoods = "Товары"\n'
        '[line_fields]\namount = "Сумма"\n[counterparty_fields]\ntin = "ИНН"\n[vat]\nnone = "без НДС"\n',
        encoding="utf-8",
    )
    mappings = load_mappings(tmp_path)
    document = build_document(order(basketItems=[item("1", 3000.0, 1, vat=None)]), mappings)
    assert document["Номер"] == "300"
    assert document["Товары"][0]["Сумма"] == 3000.0
    assert document["Товары"][0]["VATRate"] == "без НДС"
    assert document["Counterparty"]["ИНН"] == "7712345678"
    assert document["Properties"] == {"UTM_SOURCE": "yandex"}
    assert "Number" not in document and "Goods" not in document


def test_should_send(tmp_path: Path) -> None:
    assert should_send(ORDER, default_mappings())
    (tmp_path / "statuses.toml").write_text('send = ["P", "F"]\n', encoding="utf-8")
    mappings = load_mappings(tmp_path)
    assert not should_send(ORDER, mappings)
    assert should_send(order(statusId="P"), mappings)


def test_digest_is_canonical() -> None:
    document = build_document(ORDER, default_mappings())
    reordered = dict(reversed(list(document.items())))
    assert document_digest(document) == document_digest(reordered)
    assert len(document_digest(document)) == 64
    changed = build_document(order(userDescription="другой комментарий"), default_mappings())
    assert document_digest(changed) != document_digest(document)
