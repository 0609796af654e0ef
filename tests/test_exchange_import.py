"""A parsed CommerceML file → staged updates: only the changes, resolved, deactivated by the rules, counted.

Records are built here (no XML); staging goes into a real redis-server, and the flush of prices and stock
goes over real HTTP to the shop emulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from typing_extensions import TypedDict

from bridge import keys
from bridge.exchange import catalog_import
from bridge.exchange.catalog_import import ImportCounts, apply_file, normalise_currency, seen_key, vat_rate
from bridge.exchange.model import FileKind, Group, Header, Offer, Price, PriceType, Product, Record, Warehouse
from bridge.runtime import Runtime
from bridge.updates import batches, pending
from bridge.updates.kinds import KINDS, UpdateKind
from bridge.updates.outcomes import Outcomes
from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings

RETAIL = "pt-retail-guid"
WHOLESALE = "pt-wholesale-guid"
MAIN = "wh-main-guid"
FAR = "wh-far-guid"

CATALOG = f"""
[stores]
"{MAIN}" = 1
[price_types]
"Розничная" = 1
[exchange]
{{exchange}}
"""


class _AnyBody(TypedDict):
    items: list[dict[str, Any]]


def _document_kind(name: str) -> UpdateKind:
    """A stand-in for a document kind (products, sections) keyed by xml_id, whose writer accepts everything."""

    def apply(rt: Runtime, entries: Any, outcomes: Outcomes) -> None:
        outcomes.apply(entries)

    return UpdateKind(
        name=name,
        summary=name,
        body=_AnyBody,
        item=dict,
        choices=(),
        required=("xml_id",),
        fast_fields=None,
        key_of=lambda item: json.dumps([item["xml_id"]], ensure_ascii=False),
        value_of=lambda item: json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
        describe_key=lambda key: f"{name} {key[0]!r}",
        apply=apply,
    )


@pytest.fixture(autouse=True)
def document_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("products", "sections"):
        if name not in KINDS:
            monkeypatch.setitem(KINDS, name, _document_kind(name))


@pytest.fixture
def shop_catalog(shop: Any) -> Any:
    shop.add_product(product_id=101, xml_id="chair")
    shop.add_product(product_id=102, xml_id="desk")
    shop.add_store(store_id=1, title="Main")
    shop.add_store(store_id=2, title="Far", xml_id=FAR)
    shop.add_price_type(price_type_id=1, name="Retail")
    shop.add_price_type(price_type_id=2, name="Wholesale", xml_id=WHOLESALE)
    return shop


def env_with(redis_url: str, shop: Any, tmp_path: Path, exchange: str = "") -> UpdatesEnv:
    mappings = write_mappings(tmp_path / f"mappings{abs(hash(exchange))}", CATALOG.format(exchange=exchange))
    return make_env(redis_url, shop, mappings)


@pytest.fixture
def env(redis_url: str, shop_catalog: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    current = env_with(redis_url, shop_catalog, tmp_path)
    yield current
    close_env(current)


def offers_file(
    prices: dict[str, tuple[str, str]], stock: dict[str, str], *, only_changes: bool = False
) -> list[Record]:
    """An offers package: offer id → (retail, wholesale) prices, and → amount in the main store; Far has 1."""
    records: list[Record] = [
        Header(FileKind.OFFERS, "2.08", only_changes),
        PriceType(RETAIL, "Розничная", "руб"),
        PriceType(WHOLESALE, "Оптовая", "RUB"),
        Warehouse(MAIN, "Основной склад"),
        Warehouse(FAR, "Дальний"),
    ]
    for offer_id in sorted(set(prices) | set(stock)):
        retail, wholesale = prices.get(offer_id, (None, None))
        offer_prices = None
        if retail is not None:
            offer_prices = (Price(RETAIL, Decimal(retail)), Price(WHOLESALE, Decimal(wholesale or "0")))
        amounts = ((MAIN, Decimal(stock[offer_id])), (FAR, Decimal(1))) if offer_id in stock else None
        records.append(Offer(offer_id, digest=f"d-{offer_id}", prices=offer_prices, stock=amounts))
    return records


def product(pid: str, name: str = "", *, version: str | None = None, deleted: bool = False, **fields: Any) -> Product:
    return Product(
        pid, name or f"Товар {pid}", digest=f"digest-{pid}-{name}", version=version, deleted=deleted, **fields
    )


def catalog_file(
    products: list[Product], *, only_changes: bool = False, groups: tuple[Group, ...] = ()
) -> list[Record]:
    return [Header(FileKind.CATALOG, "2.08", only_changes), *groups, *products]


def run(env: UpdatesEnv, records: list[Record], **kwargs: Any) -> ImportCounts:
    return apply_file(env.rt, records, batch="s1-1", images=kwargs.pop("images", None), progress=lambda _t: None)


def staged(redis: Redis, kind: str) -> dict[Any, Any]:
    """What is pending for the kind, key → value, decoded."""
    found = {}
    for field, token in redis.hgetall(pending.pending_key(kind)).items():
        found[tuple(json.loads(field))] = json.loads(token.decode().split("|", 2)[2])
    return found


def settle_all(redis: Redis) -> None:
    """As if the flushes had run: nothing pending."""
    for kind in ("products", "sections", "prices", "stock"):
        redis.delete(pending.pending_key(kind))


# --- the diff -----------------------------------------------------------------------------------------------


def test_an_unchanged_re_export_stages_nothing(env: UpdatesEnv) -> None:
    files = [
        catalog_file([product("chair"), product("desk")], groups=(Group("g1", "Мебель", None),)),
        offers_file({"chair": ("10", "8"), "desk": ("20", "15")}, {"chair": "4", "desk": "0"}),
    ]
    first = [run(env, f) for f in files]
    assert first[0].of("products").added == 2 and first[0].of("sections").added == 1
    assert first[1].of("prices").added == 2 and first[1].of("stock").added == 2
    assert len(staged(env.redis, "prices")) == 4 and len(staged(env.redis, "stock")) == 4
    settle_all(env.redis)
    again = [run(env, f) for f in files]
    for kind in ("products", "sections", "prices", "stock"):
        assert env.redis.hlen(pending.pending_key(kind)) == 0, kind
    assert again[0].of("products").unchanged == 2 and again[1].of("prices").unchanged == 2
    assert sum(c.added + c.updated for counts in again for c in counts.kinds.values()) == 0


def test_one_changed_price_stages_that_offer_s_prices_only(env: UpdatesEnv) -> None:
    prices = {f"p{n}": ("10", "8") for n in range(100)}
    stock = {f"p{n}": "5" for n in range(100)}
    run(env, offers_file(prices, stock))
    settle_all(env.redis)
    prices["p42"] = ("11", "8")
    counts = run(env, offers_file(prices, stock))
    assert staged(env.redis, "prices") == {
        ("xml", "p42", "id", "1"): [11.0, "RUB"],
        ("xml", "p42", "id", "2"): [8.0, "RUB"],
    }
    assert env.redis.hlen(pending.pending_key("stock")) == 0  # the stock did not change: not sent again
    assert (counts.of("prices").updated, counts.of("prices").unchanged, counts.of("stock").unchanged) == (1, 99, 100)


def test_a_stock_change_does_not_send_the_prices_again(env: UpdatesEnv) -> None:
    run(env, offers_file({"chair": ("10", "8")}, {"chair": "4"}))
    settle_all(env.redis)
    counts = run(env, offers_file({"chair": ("10", "8")}, {"chair": "3"}))
    assert env.redis.hlen(pending.pending_key("prices")) == 0
    assert staged(env.redis, "stock") == {("xml", "chair", "id", "1"): [3.0], ("xml", "chair", "id", "2"): [1.0]}
    assert counts.of("stock").updated == 1


def test_a_version_number_decides_over_the_digest(env: UpdatesEnv) -> None:
    run(env, catalog_file([product("chair", "Стул", version="AAAAAAAAAAE=")]))
    settle_all(env.redis)
    run(env, catalog_file([product("chair", "Стул новый", version="AAAAAAAAAAE=")]))  # same version
    assert env.redis.hlen(pending.pending_key("products")) == 0
    run(env, catalog_file([product("chair", "Стул новый", version="AAAAAAAAAAI=")]))
    assert staged(env.redis, "products")[("chair",)]["name"] == "Стул новый"


def test_a_crash_between_staging_and_marking_stages_again(env: UpdatesEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    real_hset = env.redis.hset

    def failing(name: Any, *args: Any, **kwargs: Any) -> Any:
        if str(name).startswith("bridge:exchange:seen:prices"):
            raise ConnectionError("worker killed")
        return real_hset(name, *args, **kwargs)

    monkeypatch.setattr(env.redis, "hset", failing)
    with pytest.raises(ConnectionError):
        run(env, offers_file({"chair": ("10", "8")}, {}))
    assert len(staged(env.redis, "prices")) == 2  # staged, but not marked
    monkeypatch.setattr(env.redis, "hset", real_hset)
    settle_all(env.redis)
    counts = run(env, offers_file({"chair": ("10", "8")}, {}))
    assert len(staged(env.redis, "prices")) == 2 and counts.of("prices").added == 1
    settle_all(env.redis)
    run(env, offers_file({"chair": ("10", "8")}, {}))
    assert env.redis.hlen(pending.pending_key("prices")) == 0  # marked this time


# --- resolution --------------------------------------------------------------------------------------------


def test_price_types_and_warehouses_resolve_by_mapping_name_id_and_xml_id(env: UpdatesEnv) -> None:
    counts = run(env, offers_file({"chair": ("10", "8")}, {"chair": "4"}))
    # Розничная: by name in the mappings; the wholesale type by the shop's xmlId; MAIN by Ид in the
    # mappings; FAR by the shop store's xmlId. Currency "руб" is RUB.
    assert set(staged(env.redis, "prices")) == {("xml", "chair", "id", "1"), ("xml", "chair", "id", "2")}
    assert set(staged(env.redis, "stock")) == {("xml", "chair", "id", "1"), ("xml", "chair", "id", "2")}
    assert counts.errors == 0 and not counts.reasons


def test_an_unresolvable_price_type_is_a_counted_configuration_error_and_tried_again(env: UpdatesEnv) -> None:
    records = [
        Header(FileKind.PRICES, "2.08", False),
        PriceType(RETAIL, "Розничная", "RUB"),
        Offer("chair", digest="x", prices=(Price("pt-unknown", Decimal(5), "RUB"), Price(RETAIL, Decimal(9), "RUB"))),
    ]
    counts = run(env, records)
    assert counts.of("prices").errors == 1
    (reason,) = counts.reasons
    assert "'pt-unknown'" in reason and "[price_types]" in reason
    assert "ошибк" in counts.summary().casefold()
    prices = staged(env.redis, "prices")
    assert ("xml", "chair", "key", "pt-unknown") in prices  # staged: the flush reports (or holds) it
    settle_all(env.redis)
    run(env, records)
    assert len(staged(env.redis, "prices")) == 2  # not marked: staged again until it can go through


def test_hook_records_every_configuration_error_through_one_function(
    env: UpdatesEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    real = catalog_import.configuration_error

    def spy(counts: ImportCounts, kind: str, reason: str, items: int = 1) -> None:
        seen.append((kind, reason))
        real(counts, kind, reason, items)

    monkeypatch.setattr(catalog_import, "configuration_error", spy)
    records = [Header(FileKind.RESTS, "2.08", False), Offer("chair", digest="x", stock=(("wh-nowhere", Decimal(1)),))]
    counts = run(env, records)
    assert [kind for kind, _ in seen] == ["stock"] and counts.of("stock").errors == 1


def test_a_total_amount_needs_a_store_named_for_it(redis_url: str, shop_catalog: Any, tmp_path: Path) -> None:
    records = [Header(FileKind.OFFERS, "2.08", False), Offer("chair", digest="x", quantity=Decimal(7))]
    env = env_with(redis_url, shop_catalog, tmp_path)
    try:
        counts = run(env, records)
        assert counts.of("stock").errors == 1 and "total_store" in next(iter(counts.reasons))
    finally:
        close_env(env)
    env = env_with(redis_url, shop_catalog, tmp_path, "total_store = 2")
    try:
        run(env, records)
        assert staged(env.redis, "stock") == {("xml", "chair", "id", "2"): [7.0]}
    finally:
        close_env(env)


def test_currencies_and_vat_rates_are_normalised() -> None:
    assert [normalise_currency(c) for c in ("руб", "руб.", "RUB", "usd", "643", "тенге", None)] == [
        "RUB", "RUB", "RUB", "USD", "RUB", None, None,
    ]  # fmt: skip
    assert [vat_rate(v) for v in ("20", "НДС 20%", "10%", "Без НДС", "0", None, "x")] == [
        "20", "20", "10", "none", "0", None, None,
    ]  # fmt: skip


# --- products, sections, variants, images ------------------------------------------------------------------


def test_goods_and_groups_become_product_and_section_documents(env: UpdatesEnv) -> None:
    groups = (Group("g1", "Мебель", None), Group("g2", "Стулья", "g1"))
    chair = product(
        "chair", "Стул", article=" A-1 ", barcodes=("4600000000001",), unit_code="796 ", vat_rate="20",
        group_ids=("g2",), properties=(("brand", "acme"), ("empty", "00000000-0000-0000-0000-000000000000")),
        images=("import_files/ab/chair.jpg", "import_files/ab/missing.jpg"),
    )  # fmt: skip

    class Uploads:
        def read(self, path: str) -> bytes | None:
            return b"jpeg-bytes" if path.endswith("chair.jpg") else None

    counts = apply_file(env.rt, catalog_file([chair], groups=groups), batch="b", images=Uploads(), progress=print)
    sections = staged(env.redis, "sections")
    assert sections[("g2",)] == {"xml_id": "g2", "name": "Стулья", "parent_xml_id": "g1"}
    doc = staged(env.redis, "products")[("chair",)]
    assert doc["article"] == "A-1" and doc["unit_code"] == "796" and doc["vat_rate"] == "20"
    assert doc["section_xml_ids"] == ["g2"] and doc["properties"] == {"brand": "acme"}
    assert "active" not in doc  # an admin's "off" in the shop stays off
    (image,) = doc["images"]  # the missing picture is left out: the shop keeps its own
    assert image["name"] == "chair.jpg" and env.redis.get(keys.IMAGE.format(sha256=image["sha256"])) == b"jpeg-bytes"
    assert counts.of("products").added == 1 and counts.of("sections").added == 2


def test_variants_from_the_offers_file_name_their_parent(env: UpdatesEnv) -> None:
    records = [
        Header(FileKind.OFFERS, "2.08", False),
        PriceType(RETAIL, "Розничная", "RUB"),
        Offer(
            "chair#red", digest="v1", name="Стул (красный)", characteristics=(("Цвет", "Красный"),),
            prices=(Price(RETAIL, Decimal(12)),),
        ),
    ]  # fmt: skip
    run(env, records)
    doc = staged(env.redis, "products")[("chair#red",)]
    assert doc["parent_xml_id"] == "chair" and doc["characteristics"] == [{"name": "Цвет", "value": "Красный"}]
    assert staged(env.redis, "prices") == {("xml", "chair#red", "id", "1"): [12.0, "RUB"]}
    settle_all(env.redis)
    changed = [*records[:2], Offer("chair#red", digest="v2", name="Стул (красный)",
                                   characteristics=(("Цвет", "Красный"),), prices=(Price(RETAIL, Decimal(13)),))]  # fmt: skip
    run(env, changed)
    assert env.redis.hlen(pending.pending_key("products")) == 0  # the price changed, not the variant
    assert staged(env.redis, "prices") == {("xml", "chair#red", "id", "1"): [13.0, "RUB"]}


# --- deactivation ---------------------------------------------------------------------------------------------


def test_only_what_1c_marks_deleted_is_deactivated_and_it_comes_back_when_sent_again(env: UpdatesEnv) -> None:
    run(env, catalog_file([product("chair"), product("desk")]))
    settle_all(env.redis)
    counts = run(env, catalog_file([product("chair", deleted=True)]))  # desk missing: left alone by default
    assert staged(env.redis, "products") == {("chair",): {"xml_id": "chair", "name": "Товар chair", "active": False}}
    assert counts.of("products").deactivated == 1
    settle_all(env.redis)
    run(env, catalog_file([product("chair", deleted=True)]))
    assert env.redis.hlen(pending.pending_key("products")) == 0
    run(env, catalog_file([product("chair")]))
    assert staged(env.redis, "products")[("chair",)]["active"] is True  # the bridge switched it off, so on again


def test_reactivate_in_the_mappings_switches_every_sent_product_on(
    redis_url: str, shop_catalog: Any, tmp_path: Path
) -> None:
    env = env_with(redis_url, shop_catalog, tmp_path, "reactivate = true")
    try:
        run(env, catalog_file([product("chair")]))
        assert staged(env.redis, "products")[("chair",)]["active"] is True
    finally:
        close_env(env)


def test_missing_from_a_full_file_deactivates_only_when_opted_in_within_the_cap(
    redis_url: str, shop_catalog: Any, tmp_path: Path
) -> None:
    goods = [product(f"g{n}") for n in range(20)]
    env = env_with(redis_url, shop_catalog, tmp_path, "deactivate_missing = true\nmissing_cap = 0.1")
    try:
        run(env, catalog_file(goods))
        env.run_jobs()  # the stand-in writer applies them: what the shop got is known
        assert env.redis.hlen(pending.pending_key("products")) == 0
        run(env, catalog_file(goods[1:], only_changes=True))  # a delta never deactivates
        assert env.redis.hlen(pending.pending_key("products")) == 0
        counts = run(env, catalog_file(goods[3:]))  # 3 of 20 = 15 % > 10 %: refused, reported
        assert env.redis.hlen(pending.pending_key("products")) == 0
        assert counts.of("products").errors == 3 and "missing_cap" in next(iter(counts.reasons))
        counts = run(env, catalog_file(goods[1:]))  # 1 of 20: deactivated, with the document it had
        assert staged(env.redis, "products") == {("g0",): {"xml_id": "g0", "name": "Товар g0", "active": False}}
        assert counts.of("products").deactivated == 1
        settle_all(env.redis)
        run(env, catalog_file(goods[1:]))
        assert env.redis.hlen(pending.pending_key("products")) == 0  # not deactivated twice
    finally:
        close_env(env)


def test_missing_goods_stay_active_by_default_and_after_a_failed_file(env: UpdatesEnv) -> None:
    goods = [product(f"g{n}") for n in range(5)]
    run(env, catalog_file(goods))
    settle_all(env.redis)
    run(env, catalog_file(goods[1:]))
    assert env.redis.hlen(pending.pending_key("products")) == 0

    def broken() -> Iterator[Record]:
        yield Header(FileKind.CATALOG, "2.08", False)
        yield goods[1]
        raise ValueError("line 9, column 3: not well-formed")

    with pytest.raises(ValueError):
        apply_file(env.rt, broken(), batch="b", images=None, progress=lambda _t: None)
    assert env.redis.hlen(pending.pending_key("products")) == 0


# --- counts, progress, memory --------------------------------------------------------------------------------


def test_progress_is_reported_and_the_summary_is_one_russian_line(env: UpdatesEnv) -> None:
    said: list[str] = []
    records = offers_file({f"p{n}": ("1", "1") for n in range(6000)}, {})
    counts = apply_file(env.rt, records, batch="b", images=None, progress=said.append)
    assert said and said[0].startswith("Обработано записей")
    line = counts.summary()
    assert "\n" not in line and "цены: 6000 новых, 0 изменено, 0 без изменений" in line
    assert counts.as_dict()["prices"]["added"] == 6000


def test_what_is_remembered_stays_small(env: UpdatesEnv) -> None:
    """About 125 bytes per 1C Ид (a GUID) and kind in a Redis hash: 100,000 goods cost about 12.5 MB."""
    ids = [f"{n:08d}-0c45-11ee-8c8f-005056a1b2c3" for n in range(20_000)]
    env.redis.hset(seen_key("products"), mapping={i: catalog_import.fingerprint(i) for i in ids})
    used = int(env.redis.memory_usage(seen_key("products")) or 0)
    assert used / len(ids) < 135


# --- through the flush to the shop ------------------------------------------------------------------------------


def test_prices_and_stock_arrive_in_the_shop_and_a_re_export_writes_nothing(env: UpdatesEnv, shop: Any) -> None:
    files = offers_file({"chair": ("10.50", "8"), "desk": ("20", "15")}, {"chair": "4", "desk": "0"})
    run(env, files)
    env.run_jobs()
    assert shop.price_of(101, 1)["price"] == 10.5 and shop.price_of(102, 2)["price"] == 15
    assert (shop.amount(101, 1), shop.amount(101, 2), shop.amount(102, 1)) == (4, 1, 0)
    shop.clear_records()
    run(env, files)
    env.run_jobs()
    assert shop.requests == []
    changed = offers_file({"chair": ("10.50", "8"), "desk": ("21", "15")}, {"chair": "4", "desk": "0"})
    run(env, changed)
    env.run_jobs()
    assert shop.price_of(102, 1)["price"] == 21
    assert [m for m, _ in shop.commands] == ["catalog.price.update"]  # ids cached: one write, no lookup


def test_an_exchange_file_is_a_batch_that_tells_what_became_of_its_items(env: UpdatesEnv, shop: Any) -> None:
    files = offers_file({"chair": ("10.50", "8"), "desk": ("20", "15")}, {"chair": "4", "desk": "0"})
    run(env, files)
    env.run_jobs()
    shown = batches.read(env.redis, "s1-1")
    assert shown is not None and shown["accepted"] > 0
    assert shown["waiting"] == 0 and shown["applied"] == shown["accepted"]
    assert shown["held"]["count"] == shown["dropped"]["count"] == 0


def test_the_inbox_split_goes_through_stage_items(env: UpdatesEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, str]] = []
    real = pending.stage_items

    def spy(redis: Redis, kind: str, items: Any, stamps: Any, *, batch: str, **more: Any) -> pending.Staged:
        calls.append((kind, len(items), batch))
        return real(redis, kind, items, stamps, batch=batch, **more)

    monkeypatch.setattr(pending, "stage_items", spy)
    answer = env.push("stock", [{"xml_id": "chair", "store_id": 1, "amount": 3}])
    assert env.pending("stock") == 1
    assert calls == [("stock", 1, answer["batch"])]  # the batch id the 202 gave


def test_a_goods_file_creates_sections_and_products_in_the_shop_once(env: UpdatesEnv, shop: Any) -> None:
    groups = (Group("g1", "Мебель", None), Group("g2", "Стулья", "g1"))
    goods = [product("stool", "Табурет", article="T-1", group_ids=("g2",))]
    run(env, catalog_file(goods, groups=groups))
    env.run_jobs()
    parent, child = shop.section_by_xml("g1"), shop.section_by_xml("g2")
    assert parent is not None and child is not None
    assert child["iblockSectionId"] == parent["id"]
    stool = shop.product_by_xml("stool")
    assert stool is not None and stool["name"] == "Табурет"
    shop.clear_records()
    run(env, catalog_file(goods, groups=groups))
    env.run_jobs()
    assert shop.requests == []  # the same file again: no request at all
