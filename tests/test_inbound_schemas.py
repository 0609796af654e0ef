"""The JSON Schema files of the 1C bodies match the models, say what the validator enforces, and are served.

A 1C developer may check bodies against the files with any JSON Schema tool; these tests make sure that
tool and the bridge agree, on the good bodies and on the bad ones.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from bridge.settings import Settings
from bridge.updates.intake import schema_files
from bridge.updates.intake.validation import InvalidPayload, validate
from bridge.updates.kinds import KINDS
from bridge.web.app import create_app
from bridge.web.openapi import document


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_schema_files_are_what_the_models_generate(kind: str) -> None:
    stored = schema_files.path(kind).read_text(encoding="utf-8")
    assert stored == schema_files.render(kind), (
        f"regenerate with: python -m bridge.updates.intake.schema_files ({kind})"
    )


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("stock", {"items": [{"xml_id": "a", "store": "Main", "amount": 5}]}),
    ("stock", {"items": [{"product_id": 7, "store_id": 2, "amount": 0.5, "ts": "2024-05-01T10:00:00+03:00"}]}),
    ("stock", {"items": [{"sku": "ART-1", "xml_id": None, "store": "Main", "amount": 0, "ts": None}]}),
    ("prices", {"items": [{"xml_id": "a", "price_type": "Retail", "price": 1500.5, "currency": "RUB"}]}),
    (
        "prices",
        {"items": [{"product_id": 7, "price_type_id": 1, "price": 0, "currency": "EUR", "ts": "2024-05-01 10:00"}]},
    ),
    ("order-status", {"items": [{"order": "A-300", "status": "In progress"}, {"order": 301, "status_id": "F"}]}),
    *((kind, {"items": []}) for kind in KINDS),  # a night with nothing to send
]
BAD: list[tuple[str, dict[str, Any]]] = [
    ("stock", {"items": [{"xml_id": "a", "store": "Main", "amout": 5}]}),
    ("stock", {"items": [{"xml_id": "a", "sku": "b", "store": "Main", "amount": 5}]}),
    ("stock", {"items": [{"store": "Main", "amount": 5}]}),
    ("stock", {"items": [{"xml_id": "a", "store": "Main", "store_id": 1, "amount": 5}]}),
    ("stock", {"items": [{"xml_id": None, "store": "Main", "amount": 5}]}),
    ("stock", {"items": [{"xml_id": "a", "store": "Main", "amount": "5"}]}),
    ("stock", {"items": [{"xml_id": "a", "store": "Main", "amount": 1e16}]}),
    ("stock", {"items": [{"xml_id": "a", "store": "Main", "amount": -1}]}),
    ("stock", {"items": [{"xml_id": "a", "store": "Main", "amount": 1, "ts": "1700000000"}]}),
    ("stock", {"items": [{"xml_id": "a", "store": "", "amount": 1}]}),
    ("stock", {"items": [{"product_id": 0, "store_id": 1, "amount": 1}]}),
    ("prices", {"items": [{"xml_id": "a", "price_type": "Retail", "price": 1, "currency": "rub"}]}),
    ("prices", {"items": [{"xml_id": "a", "price_type": "Retail", "price": 1}]}),
    ("order-status", {"items": [{"order": "A-1", "status": "New", "status_id": "N"}]}),
    ("order-status", {"items": [{"order": True, "status_id": "N"}]}),
    ("order-status", {"items": [{"status_id": "N"}]}),
]


@pytest.mark.parametrize(("kind", "body"), GOOD)
def test_good_bodies_pass_both_the_files_and_the_bridge(kind: str, body: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema_files.load(kind)).validate(body)
    assert len(validate(KINDS[kind], json.dumps(body)).items) == len(body["items"])


@pytest.mark.parametrize(("kind", "body"), BAD)
def test_bad_bodies_fail_both_the_files_and_the_bridge(kind: str, body: dict[str, Any]) -> None:
    assert not jsonschema.Draft202012Validator(schema_files.load(kind)).is_valid(body)
    with pytest.raises(InvalidPayload):
        validate(KINDS[kind], json.dumps(body))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_openapi_describes_every_endpoint_with_the_schema_files(redis_url: str) -> None:
    with TestClient(create_app(Settings(redis_url=redis_url))) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/shop/events", "/1c/stock", "/1c/prices", "/1c/order-status", "/healthz", "/readyz"):
        assert path in doc["paths"], path
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    stock = doc["paths"]["/1c/stock"]["post"]
    assert set(stock["responses"]) >= {"202", "400", "401", "403", "413", "415", "503"}
    body_ref = stock["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = doc["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert body["properties"]["items"]["items"]["$ref"] == "#/components/schemas/StockItem"
    assert doc["components"]["schemas"]["StockItem"] == schema_files.load("stock")["$defs"]["StockItem"]


def test_the_document_is_valid_json_schema_wherever_it_holds_one() -> None:
    for schema in document()["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
