"""``bridge check --live`` against the shop and 1C emulators: each mistake it exists for, in plain words."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import main
from bridge.mappings import DEFAULTS_DIR


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch, shop: Any, onec: Any, tmp_path: Path) -> Path:
    """The environment of a bridge wired to the emulators; a mappings folder the test may write to."""
    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "mappings"
    folder.mkdir()
    for file in DEFAULTS_DIR.glob("*.toml"):
        (folder / file.name).write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(folder))
    monkeypatch.setenv("BRIDGE_SHOP_URL", shop.url)
    monkeypatch.setenv("BRIDGE_ONEC_URL", onec.url)
    monkeypatch.setenv("BRIDGE_ONEC_USER", onec.user)
    monkeypatch.setenv("BRIDGE_ONEC_PASSWORD", onec.password)
    monkeypatch.setenv("BRIDGE_SHOP_IBLOCK_ID", "1")
    return folder


def _run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check", "--live"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_sound_setup_passes(live: Path, shop: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys)
    assert code == 0, err
    assert "shop: iblock 1 is a product catalog" in out
    assert "1C: the HTTP service answers" in out
    assert not [m for m, _ in shop.requests if not m.endswith("list")]  # it only read


@pytest.mark.parametrize("error", ["NO_AUTH_FOUND", "INVALID_CREDENTIALS"])
def test_a_bad_webhook_key(
    live: Path, shop: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: str
) -> None:
    shop.auth_error = error
    monkeypatch.setenv("BRIDGE_SHOP_URL", shop.url.replace(shop.webhook_code, "wrong0key0here0x"))
    code, _, err = _run(capsys)
    assert code == 1
    assert f"shop: the webhook key was refused ({error}: Wrong authorization data, HTTP 401)" in err
    assert "wrong0key0here0x" not in err and shop.webhook_code not in err  # the key is a secret


def test_a_missing_scope(live: Path, shop: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shop.missing_scopes = {"sale"}
    code, _, err = _run(capsys)
    assert code == 1
    assert "shop: the webhook has no 'sale' scope (sale.status.list answered insufficient_scope)" in err


def test_an_iblock_that_is_not_a_product_catalog(
    live: Path, shop: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRIDGE_SHOP_IBLOCK_ID", "2")  # the SKU catalog of iblock 1
    code, _, err = _run(capsys)
    assert code == 1 and "shop: iblock 2 is the trade-offers (SKU) catalog of iblock 1" in err
    monkeypatch.setenv("BRIDGE_SHOP_IBLOCK_ID", "7")
    code, _, err = _run(capsys)
    assert code == 1 and "shop: iblock 7 is not a product catalog in this shop; its product catalogs: 1" in err


def test_a_mapped_store_or_price_type_the_shop_lacks(live: Path, shop: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shop.add_store(store_id=1, title="Main")
    shop.add_price_type(price_type_id=1, name="BASE")
    catalog = live / "catalog.toml"
    text = catalog.read_text(encoding="utf-8")
    text = text.replace("[stores]", '[stores]\n"Основной склад" = 1\n"Склад 2" = 9', 1)
    text = text.replace("[price_types]", '[price_types]\n"Розничная" = 5', 1)
    catalog.write_text(text, encoding="utf-8")
    code, _, err = _run(capsys)
    assert code == 1, err
    assert "maps 1C store 'Склад 2' to store 9, which the shop does not have (it has 1); fix [stores]" in err
    assert "maps 1C price type 'Розничная' to price type 5, which the shop does not have (it has 1)" in err
    assert "Основной склад" not in err


def test_a_locked_1c_and_a_wrong_password(
    live: Path, onec: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    onec.lock("Обновление конфигурации до 18:00")
    code, _, err = _run(capsys)
    assert code == 1
    assert "1C: the infobase refuses new sessions (Начало сеанса с информационной базой запрещено" in err
    assert "Обновление конфигурации до 18:00" in err
    onec.unlock()
    monkeypatch.setenv("BRIDGE_ONEC_PASSWORD", "not-the-password")
    code, _, err = _run(capsys)
    assert code == 1 and "1C: the user name or password was refused (HTTP 401)" in err
    assert "not-the-password" not in err
