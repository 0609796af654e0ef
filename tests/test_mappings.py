"""Mapping files: the defaults load, the shipped files equal the defaults, every mistake is one plain line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from bridge.mappings import (
    DEFAULT_STATUSES,
    DEFAULTS_DIR,
    SCHEMA_DIR,
    MappingError,
    Mappings,
    ProductLookup,
    default_mappings,
    describe,
    load_mappings,
)

SHIPPED = DEFAULTS_DIR


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(MappingError) as caught:
        load_mappings(directory)
    return caught.value.problems


def comparable(mappings: Mappings) -> dict[str, object]:
    values = dataclasses.asdict(mappings)
    values.pop("directory")
    values.pop("files")
    return values


def test_empty_folder_gives_the_contract_defaults(tmp_path: Path) -> None:
    mappings = load_mappings(tmp_path)
    assert mappings.statuses == DEFAULT_STATUSES
    assert mappings.statuses["FF"] == "Completed"
    assert mappings.statuses_to_shop["Cancelled by client"] == "C"
    assert mappings.send_statuses is None
    assert mappings.stores == {} and mappings.price_types == {}
    assert mappings.products == ProductLookup(iblock_id=None, article_property="CML2_ARTICLE")
    assert mappings.stock_strategy == "storeproduct"
    document = mappings.document
    assert list(document.fields.values()) == [
        "Number", "SiteId", "Date", "Status", "Counterparty", "Goods", "Delivery",
        "DocumentAmount", "Currency", "Comment", "Properties", "Cancelled",
    ]  # fmt: skip
    assert document.properties == ("UTM_SOURCE", "PROMO_CODE")
    assert document.sources["counterparty_name"] == ("COMPANY", "FIO")
    assert document.sources["article"] == ("ARTICLE", "CML2_ARTICLE")
    assert mappings.files == ()


def test_missing_folder_gives_the_defaults(tmp_path: Path) -> None:
    mappings = load_mappings(tmp_path / "nowhere")
    assert comparable(mappings) == comparable(default_mappings())
    assert "not found" in describe(mappings)[0]


def test_shipped_files_load_and_equal_the_defaults() -> None:
    mappings = load_mappings(SHIPPED)
    assert mappings.files == ("statuses.toml", "catalog.toml", "order.toml")
    assert comparable(mappings) == comparable(default_mappings())


def test_schemas_are_valid_draft_2020_12() -> None:
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
    assert {p.name for p in SCHEMA_DIR.glob("*.schema.json")} == {
        "statuses.schema.json", "catalog.schema.json", "order.schema.json",
    }  # fmt: skip


def test_a_full_custom_configuration(tmp_path: Path) -> None:
    write(tmp_path, "statuses.toml", 'send = ["N", "P"]\n[statuses]\nN = "Новый"\nP = "В работе"\n')
    write(
        tmp_path,
        "catalog.toml",
        'stock_strategy = "document"\n[stores]\n"Основной склад" = 3\n[price_types]\n"Розничная" = 1\n'
        '[products]\nlookup = ["article"]\niblock_id = 7\narticle_property = "ART"\n'
        '[document_strategy]\ncurrency = "KZT"\nresponsible_id = 5\n',
    )
    write(
        tmp_path,
        "order.toml",
        'properties = ["COUPON"]\n[fields]\nnumber = "Номер"\n[line_fields]\nprice = "Цена"\n'
        '[vat]\nformat = "НДС {percent}%"\nnone = "без НДС"\n[vat.rates]\n"20" = "20% (основная)"\n'
        '[sources]\ncounterparty_name = ["FIO"]\n',
    )
    mappings = load_mappings(tmp_path)
    assert mappings.statuses == {"N": "Новый", "P": "В работе"}
    assert mappings.statuses_to_shop == {"Новый": "N", "В работе": "P"}
    assert mappings.shop_status("в работе ") == "P"
    assert mappings.send_statuses == frozenset({"N", "P"})
    assert mappings.stores == {"Основной склад": 3}
    assert mappings.price_types == {"Розничная": 1}
    assert mappings.products == ProductLookup(iblock_id=7, article_property="ART", lookup=("article",))
    assert mappings.stock_strategy == "document"
    assert (mappings.document_strategy.currency, mappings.document_strategy.responsible_id) == ("KZT", 5)
    document = mappings.document
    assert document.fields["number"] == "Номер"
    assert document.fields["site_id"] == "SiteId"  # not given: the default stays
    assert document.field("Number") == "Номер"
    assert document.field("Goods.Price") == "Цена"
    assert document.field("Cancelled") == "Cancelled"
    assert document.properties == ("COUPON",)
    assert document.sources["counterparty_name"] == ("FIO",)
    assert document.sources["counterparty_tin"] == ("INN",)
    assert document.vat_text(0.2) == "20% (основная)"
    assert document.vat_text("0.10") == "НДС 10%"
    assert document.vat_text(None) == "без НДС"
    assert "stock strategy: document (inventory documents in KZT, responsible user 5)" in describe(mappings)


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0.2, "20%"), ("0.2", "20%"), (0.1, "10%"), (0, "0%"), (0.075, "7.5%"), (20, "20%"), (None, "Без НДС")],
)
def test_vat_text(rate: object, text: str) -> None:
    assert default_mappings().document.vat_text(rate) == text


MISTAKES = [
    (
        "statuses.toml",
        '[statuses]\nN = "New"\nP = 5\n',
        "statuses.toml: statuses.P must be a string (the 1C status name), got 5",
    ),
    ("statuses.toml", '[statuses]\nN = ""\n', "statuses.toml: statuses.N must not be empty (the 1C status name)"),
    (
        "statuses.toml",
        '[statuses]\nN = "New"\nP = "New"\n',
        'statuses.toml: statuses.N and statuses.P both map to "New"',
    ),
    ("statuses.toml", 'send = ["N", "X"]\n', 'statuses.toml: send lists "X", which is not under [statuses]'),
    ("statuses.toml", 'send = ["*", "N"]\n', 'statuses.toml: send lists "*" (all statuses) together with others'),
    ("statuses.toml", 'send = "N"\n', "statuses.toml: send must be a list"),
    ("statuses.toml", 'send = ["N", "N"]\n', 'statuses.toml: send lists "N" more than once'),
    ("statuses.toml", 'sned = ["N"]\n', 'statuses.toml: unknown key sned (did you mean "send"?)'),
    ("statuses.toml", '[statuses]\n"N N" = "New"\n', 'statuses.toml: statuses: the key "N N" is not a shop status id'),
    (
        "catalog.toml",
        'stock_stratgy = "document"\n',
        'catalog.toml: unknown key stock_stratgy (did you mean "stock_strategy"?)',
    ),
    (
        "catalog.toml",
        'stock_strategy = "stores"\n',
        'catalog.toml: stock_strategy must be one of "storeproduct", "document", "quantity", got "stores"',
    ),
    (
        "catalog.toml",
        '[stores]\nmain = "1"\n',
        'catalog.toml: stores.main must be a whole number (the shop\'s store id), got "1"',
    ),
    (
        "catalog.toml",
        "[stores]\nmain = 0\n",
        "catalog.toml: stores.main must be at least 1 (the shop's store id), got 0",
    ),
    ("catalog.toml", "[stores]\na = 1\nb = 1\n", "catalog.toml: stores.a and stores.b both give shop store 1"),
    (
        "catalog.toml",
        '[price_types]\n"Розничная" = 1.5\n',
        'catalog.toml: price_types."Розничная" must be a whole number (the shop\'s catalogGroupId), got 1.5',
    ),
    ("catalog.toml", '[products]\nlookup = ["guid"]\n', "catalog.toml: products.lookup[0] must be one of"),
    (
        "catalog.toml",
        "[products]\niblock = 3\n",
        'catalog.toml: unknown key products.iblock (did you mean "iblock_id"?)',
    ),
    (
        "catalog.toml",
        '[document_strategy]\ncurrency = "rub"\n',
        'catalog.toml: document_strategy.currency must be an ISO 4217 currency code such as RUB, got "rub"',
    ),
    ("order.toml", '[fields]\nnumbr = "No"\n', 'order.toml: unknown key fields.numbr (did you mean "number"?)'),
    (
        "order.toml",
        "[fields]\nnumber = 1\n",
        "order.toml: fields.number must be a string (a field name in the 1C document)",
    ),
    (
        "order.toml",
        '[fields]\nnumber = "Id"\nsite_id = "Id"\n',
        'order.toml: fields.number and fields.site_id both give the field name "Id"',
    ),
    ("order.toml", '[vat]\nformat = "{rate}%"\n', "order.toml: vat.format must contain {percent}"),
    ("order.toml", '[vat]\nformat = "VAT"\n', "order.toml: vat.format must contain {percent}"),
    ("order.toml", '[vat.rates]\n"twenty" = "20%"\n', 'order.toml: vat.rates: the key "twenty" is not a percent'),
    ("order.toml", 'properties = "UTM_SOURCE"\n', "order.toml: properties must be a list"),
    ("order.toml", '[sources]\ninn = ["INN"]\n', "order.toml: unknown key sources.inn (allowed here: counterparty_tin"),
    ("order.toml", "[fields\n", "order.toml: is not valid TOML"),
]


@pytest.mark.parametrize(("name", "text", "expected"), MISTAKES, ids=[m[2][:60] for m in MISTAKES])
def test_each_mistake_is_one_plain_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    write(tmp_path, name, text)
    problems = problems_of(tmp_path)
    assert len(problems) == 1, problems
    (line,) = problems
    assert line.startswith(f"{tmp_path / name}: "), line
    assert line.removeprefix(f"{tmp_path / name}: ").startswith(expected.removeprefix(f"{name}: ")), line
    assert "\n" not in line


def test_problems_name_the_file_as_the_user_typed_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mappings"
    folder.mkdir()
    write(folder, "statuses.toml", "[statuses]\nP = 5\n")
    monkeypatch.chdir(tmp_path)
    problems = problems_of(folder.resolve())
    assert problems == ["mappings/statuses.toml: statuses.P must be a string (the 1C status name), got 5"]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "statuses.toml", "[statuses]\nN = 1\nP = 2\n")
    write(tmp_path, "catalog.toml", 'stock_strategy = "x"\n')
    write(tmp_path, "order.toml", "[fields]\nfoo = 'x'\n")
    problems = problems_of(tmp_path)
    assert len(problems) == 4
    assert sum("statuses.toml" in p for p in problems) == 2
    error = MappingError(problems)
    assert "statuses.P" in str(error)


def test_unknown_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "status.toml", "[statuses]\nN = 'New'\n")
    (line,) = problems_of(tmp_path)
    assert 'status.toml: unknown mapping file (did you mean "statuses.toml"?)' in line


def test_a_bom_is_harmless_and_non_utf8_is_reported(tmp_path: Path) -> None:
    (tmp_path / "statuses.toml").write_bytes(b"\xef\xbb\xbf" + '[statuses]\nN = "Новый"\n'.encode())
    assert load_mappings(tmp_path).statuses == {"N": "Новый"}
    (tmp_path / "statuses.toml").write_bytes('[statuses]\nN = "Новый"\n'.encode("cp1251"))
    (line,) = problems_of(tmp_path)
    assert "is not UTF-8 text" in line


def test_a_file_where_a_folder_belongs(tmp_path: Path) -> None:
    target = write(tmp_path, "mappings", "")
    with pytest.raises(MappingError) as caught:
        load_mappings(target)
    assert "must name a folder" in caught.value.problems[0]


def test_mapping_error_is_permanent() -> None:
    from bridge.errors import PermanentError

    assert issubclass(MappingError, PermanentError)


def test_describe_summarises(tmp_path: Path) -> None:
    write(tmp_path, "catalog.toml", "[stores]\nmain = 1\n")
    lines = describe(load_mappings(tmp_path))
    text = "\n".join(lines)
    assert "defaults for statuses.toml, order.toml" in lines[0]
    assert "N → New" in text and "sent to 1C: all" in text
    assert "stores: 1 1C warehouse mapped" in text
    assert "stock strategy: storeproduct" in text
    assert "'Без НДС'" in text
    assert 3 <= len(lines) <= 10


def test_the_schemas_and_defaults_are_package_data_not_the_operators() -> None:
    import bridge

    package = Path(bridge.__file__).resolve().parent
    assert package / "mappings" / "schemas" == SCHEMA_DIR
    assert package / "mappings" / "defaults" == DEFAULTS_DIR
    assert sorted(p.name for p in DEFAULTS_DIR.iterdir()) == ["catalog.toml", "order.toml", "statuses.toml"]


def test_a_schemas_folder_in_the_operators_folder_cannot_weaken_the_checks(tmp_path: Path) -> None:
    lax = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    (tmp_path / "schemas").mkdir()
    for name in ("statuses", "catalog", "order"):
        (tmp_path / "schemas" / f"{name}.schema.json").write_text(json.dumps(lax))
    write(tmp_path, "catalog.toml", 'stock_stratgy = "quantity"\n')
    (line,) = problems_of(tmp_path)
    assert 'unknown key stock_stratgy (did you mean "stock_strategy"?)' in line


def test_describe_names_the_packaged_defaults(tmp_path: Path) -> None:
    assert describe(load_mappings(tmp_path / "nowhere"))[0] == (
        f"mappings: folder {tmp_path / 'nowhere'} not found, using the packaged defaults ({DEFAULTS_DIR})"
    )
    assert describe(default_mappings())[0] == f"mappings: the packaged defaults ({DEFAULTS_DIR})"
    write(tmp_path, "order.toml", 'properties = ["COUPON"]\n')
    assert describe(load_mappings(tmp_path))[0].endswith(
        "(order.toml; packaged defaults for statuses.toml, catalog.toml)"
    )
