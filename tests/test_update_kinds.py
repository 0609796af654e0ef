"""A kind of update is one module and one registry entry: every consumer takes it from ``KINDS``.

A kind that exists only in this test is registered, then pushed through the web intake (the fast check and
the full validation), split into pending entries, flushed to its own writer and reported when dropped, and
listed by ``/openapi.json``, the schema files and the sweep, with no other table to fill in.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Required

import pytest
from pydantic import ConfigDict, Field, with_config
from redis import Redis
from starlette.testclient import TestClient
from typing_extensions import TypedDict

from bridge import runtime
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.updates import flush as updates
from bridge.updates import pending
from bridge.updates.intake import schema_files
from bridge.updates.intake.fast import KEY, NUMBER, SHOP_ID, items_if_valid
from bridge.updates.intake.models import STRICT, Amount, Key, ShopId, Timestamp, one_of
from bridge.updates.kinds import KINDS, UpdateKind
from bridge.updates.kinds.refs import named_ref, quote
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry
from bridge.web.app import create_app
from bridge.web.openapi import onec_paths

TOKEN = "inbound-t0ken-0001"
AUTH = {"X-Api-Token": TOKEN}
CHOICES = (("gauge", "gauge_id"),)


@with_config(ConfigDict(**STRICT, json_schema_extra=one_of(CHOICES)))
class LevelItem(TypedDict, total=False):
    gauge: Key | None
    gauge_id: ShopId | None
    level: Required[Amount]
    ts: Timestamp | None


@with_config(ConfigDict(**STRICT))
class LevelBody(TypedDict):
    items: Annotated[list[LevelItem], Field(min_length=1)]


WRITTEN: list[tuple[list[Any], list[Any]]] = []


def apply_levels(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    """Writes nothing anywhere: keeps what it was given, and refuses a level of 13."""
    for entry in entries:
        if entry.value[0] == 13:
            outcomes.drop([entry], "13 is not a level")
        else:
            WRITTEN.append((entry.key, entry.value))
            outcomes.apply([entry])


LEVELS = UpdateKind(
    name="tank-levels",
    summary="tank levels per gauge",
    body=LevelBody,
    item=LevelItem,
    choices=CHOICES,
    required=("level",),
    fast_fields={"gauge": KEY, "gauge_id": SHOP_ID, "level": NUMBER},
    key_of=lambda item: f"[{named_ref(item, 'gauge', 'gauge_id')}]",
    value_of=lambda item: f"[{float(item['level'])!r},{quote('m')}]",
    describe_key=lambda key: f"gauge {key[1]!r}",
    apply=apply_levels,
)


@pytest.fixture
def levels(monkeypatch: pytest.MonkeyPatch) -> Iterator[UpdateKind]:
    monkeypatch.setitem(KINDS, LEVELS.name, LEVELS)
    WRITTEN.clear()
    yield LEVELS


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture
def env(redis_url: str, redis: Redis, levels: UpdateKind) -> Iterator[tuple[TestClient, Runtime]]:
    settings = Settings(redis_url=redis_url, shop_url="http://127.0.0.1:9/rest/1/key/", inbound_token=TOKEN)
    rt = Runtime.from_settings(settings, redis)
    runtime.install(rt)
    with TestClient(create_app(settings), client=("10.0.0.5", 1234)) as client:  # routes made with the kind in
        yield client, rt
    runtime.install(None)


def test_a_registered_kind_goes_from_the_intake_through_pending_and_the_flush_to_its_writer(
    env: tuple[TestClient, Runtime], redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = env
    uniform = {"items": [{"gauge": "North", "level": 2}, {"gauge": "South", "level": 13}]}
    assert items_if_valid(LEVELS, json.dumps(uniform)) is not None  # the fast check knows the kind
    answer = client.post("/1c/tank-levels", json=uniform, headers=AUTH)
    assert answer.status_code == 202, answer.text
    mixed = {"items": [{"gauge": "North", "level": 3}, {"gauge_id": 7, "level": 4.5}]}  # the full validation
    assert items_if_valid(LEVELS, json.dumps(mixed)) is None
    assert client.post("/1c/tank-levels", json=mixed, headers=AUTH).status_code == 202
    assert redis.exists(updates.marker_key("tank-levels"))  # the intake queued its flush

    with caplog.at_level(logging.WARNING, logger="bridge.updates.flush"):
        summary = updates.flush("tank-levels")
    assert summary.startswith("2 applied"), summary
    assert sorted(WRITTEN) == [(["id", "7"], [4.5, "m"]), (["key", "North"], [3.0, "m"])]
    assert any("update dropped for gauge 'South': 13 is not a level" in r.getMessage() for r in caplog.records)
    assert pending.count(redis, "tank-levels") == 0


def test_a_registered_kind_refuses_a_bad_body_in_its_own_words(env: tuple[TestClient, Runtime]) -> None:
    client, _ = env
    body = {"items": [{"gauge": "North", "gauge_id": 1, "levle": 2}]}
    answer = client.post("/1c/tank-levels", json=body, headers=AUTH)
    assert answer.status_code == 400
    messages = {d["path"]: d["message"] for d in answer.json()["details"]}
    assert messages["/items/0"] == "give exactly one of gauge, gauge_id (got gauge and gauge_id)"
    assert messages["/items/0/levle"] == "unknown field 'levle'; did you mean 'level'?"


def test_a_registered_kind_is_swept_described_and_given_a_schema(env: tuple[TestClient, Runtime], redis: Redis) -> None:
    client, rt = env
    assert client.post("/1c/tank-levels", json={"items": [{"gauge": "N", "level": 1}]}, headers=AUTH).status_code == 202
    redis.delete(updates.marker_key("tank-levels"))  # as a crash between storing the body and queueing would
    assert updates.sweep(rt) == 1
    assert onec_paths()["/1c/tank-levels"]["post"]["summary"] == "1C pushes tank levels per gauge"
    assert schema_files.generate("tank-levels")["title"] == "POST /1c/tank-levels"


def _keyed_constants(tree: ast.AST) -> Iterator[ast.Constant]:
    """Constants used as a table's key or compared with: where a kind's name would make a table of kinds.

    Kind names are ordinary words ("products", "sections", "prices"), which the shop's REST also uses as the
    keys of its list answers and the mappings as table names; those are not tables of kinds.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            candidates: list[ast.AST] = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Compare):
            candidates = [node.left, *node.comparators]
            candidates += [e for c in list(candidates) if isinstance(c, ast.Tuple | ast.List | ast.Set) for e in c.elts]
        elif isinstance(node, ast.MatchValue):
            candidates = [node.value]
        else:
            continue
        yield from (c for c in candidates if isinstance(c, ast.Constant))


def test_no_module_outside_the_kinds_names_a_kind() -> None:
    # A table keyed by kind names anywhere else would have to be extended for every new kind.
    names = set(KINDS)
    root = Path(__file__).resolve().parent.parent / "bridge"
    found = [
        f"{path.relative_to(root)}:{node.lineno} {node.value!r}"
        for path in root.rglob("*.py")
        if "kinds" not in path.relative_to(root).parts
        and "sandbox" not in path.relative_to(root).parts  # the emulated peers, not the product
        for node in _keyed_constants(ast.parse(path.read_text(encoding="utf-8")))
        if node.value in names
    ]
    assert found == []
    # the check itself sees a table keyed by a kind's name
    assert [c.value for c in _keyed_constants(ast.parse('{"stock": 1}; x == "prices"'))] == ["stock", "prices"]
