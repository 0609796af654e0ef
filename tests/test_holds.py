"""Held updates (in one process, real redis-server and shop emulator): latest wins against a held value, a
retry sends them on once the mapping file is fixed, and the mappings are read again when their files change."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.mappings import MappingError
from bridge.mappings.reload import LiveMappings
from bridge.queue import deadletters
from bridge.updates import batches, holds
from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings

CATALOG = "[stores]\nMain = 1\n"
FIXED = "[stores]\nMain = 1\nNorth = 2\n"


def touch(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stamp = time.time() + 2
    os.utime(path, (stamp, stamp))


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    shop.add_product(product_id=101, xml_id="guid-chair")
    shop.add_store(store_id=1, title="Main")
    shop.add_store(store_id=2, title="North")
    current = make_env(redis_url, shop, write_mappings(tmp_path / "mappings", CATALOG))
    current.rt.live_mappings.check_every = 0.0  # look at the files on every use
    yield current
    close_env(current)


def north(amount: float, ts: str) -> list[dict[str, Any]]:
    return [{"xml_id": "guid-chair", "store": "North", "amount": amount, "ts": ts}]


def held_values(env: UpdatesEnv) -> list[str]:
    return [v.decode().split("|", 3)[3] for v in env.redis.hvals(holds.held_key("stock"))]


def test_a_newer_push_replaces_a_held_value_and_an_older_one_does_not(env: UpdatesEnv, shop: Any) -> None:
    first = env.push("stock", north(5, "2026-12-01T10:00:00Z"))["batch"]
    env.run_jobs()
    assert held_values(env) == ["[5.0]"]
    older = env.push("stock", north(4, "2026-12-01T09:00:00Z"))["batch"]
    env.run_jobs()
    assert held_values(env) == ["[5.0]"]  # not overwritten by an older value
    newer = env.push("stock", north(6, "2026-12-01T11:00:00Z"))["batch"]
    env.run_jobs()
    assert held_values(env) == ["[6.0]"]
    shown = {b: batches.read(env.redis, b) or {} for b in (first, older, newer)}
    assert (shown[first]["held"]["count"], shown[first]["superseded"]) == (0, 1)
    assert shown[older]["superseded"] == 1
    assert shown[newer]["held"]["count"] == 1
    assert len(deadletters.list_failed(env.redis)) == 1  # one letter per reason, however many pushes

    touch(env.rt.settings.mappings_dir / "catalog.toml", FIXED)
    report = deadletters.retry_all(env.redis)
    assert [letter.what for letter in report.requeued] == ["stock updates held until the mappings are fixed"]
    env.run_jobs()
    assert shop.amount(101, 2) == 6
    assert env.redis.hlen(holds.held_key("stock")) == 0
    assert deadletters.list_failed(env.redis) == []
    assert (batches.read(env.redis, newer) or {})["applied"] == 1


def test_a_retry_before_the_fix_holds_them_again(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", north(5, "2026-12-01T10:00:00Z"))
    env.run_jobs()
    deadletters.retry_all(env.redis)
    env.run_jobs()
    assert held_values(env) == ["[5.0]"]
    letters = deadletters.list_failed(env.redis)
    assert len(letters) == 1 and "1C warehouse 'North' is not mapped" in letters[0].why
    assert shop.amount(101, 2) is None


def test_live_mappings_read_an_edit_and_keep_the_last_good_ones_on_a_broken_edit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_mappings(tmp_path / "m", CATALOG)
    live = LiveMappings(folder, check_every=0.0)
    assert "North" not in live.get().stores
    touch(folder / "catalog.toml", FIXED)
    assert live.get().stores["North"] == 2
    caplog.set_level(logging.ERROR, logger="bridge.mappings")
    touch(folder / "catalog.toml", "[stores]\nNorth = 'two'\n")
    assert live.get().stores["North"] == 2  # the last good ones
    assert live.get().stores["North"] == 2
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and "last good ones stay in use" in errors[0] and "catalog.toml" in errors[0]
    touch(folder / "catalog.toml", "[stores]\nSouth = 3\n")
    assert live.get().stores == {"South": 3}


def test_live_mappings_look_at_the_files_at_most_once_per_interval(tmp_path: Path) -> None:
    folder = write_mappings(tmp_path / "m", CATALOG)
    live = LiveMappings(folder, check_every=3600.0)
    touch(folder / "catalog.toml", FIXED)
    assert "North" not in live.get().stores  # not looked at yet


def test_live_mappings_refuse_to_start_on_a_broken_file(tmp_path: Path) -> None:
    folder = write_mappings(tmp_path / "m", "[stores]\nNorth = 'two'\n")
    with pytest.raises(MappingError):
        LiveMappings(folder)


def test_a_wrong_iblock_holds_the_update_until_it_is_fixed(env: UpdatesEnv, shop: Any) -> None:
    shop.set_catalog(1, 2)
    folder = env.rt.settings.mappings_dir
    touch(folder / "catalog.toml", CATALOG + "[products]\niblock_id = 7\n")
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 3}])
    env.run_jobs()
    letters = deadletters.list_failed(env.redis)
    assert len(letters) == 1 and "iblock 7" in letters[0].why and "not a catalog of the shop" in letters[0].why
    touch(folder / "catalog.toml", CATALOG + "[products]\niblock_id = 1\n")
    deadletters.retry_all(env.redis)
    env.run_jobs()
    assert shop.amount(101, 1) == 3
    assert deadletters.list_failed(env.redis) == []


def test_a_letter_goes_when_newer_values_replaced_everything_it_held(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", north(5, "2026-12-01T10:00:00Z"))
    env.run_jobs()
    assert len(deadletters.list_failed(env.redis)) == 1
    touch(env.rt.settings.mappings_dir / "catalog.toml", FIXED)  # fixed, and 1C sends again before any retry
    env.push("stock", north(6, "2026-12-01T11:00:00Z"))
    env.run_jobs()
    assert shop.amount(101, 2) == 6
    assert deadletters.list_failed(env.redis) == []
    assert env.redis.hlen(holds.held_key("stock")) == 0
