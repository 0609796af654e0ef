"""``bridge check`` and the refusals of ``web``/``worker``/``clock``: one plain line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.mappings import DEFAULTS_DIR
from tests.processes import ROOT


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=60
    )


def test_check_passes_on_the_shipped_mappings() -> None:
    result = run("check", env={"BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR)})
    assert result.returncode == 0, result.stderr
    assert "settings and mappings are valid" in result.stdout
    assert "BRIDGE_SHOP_URL" in result.stdout  # says which features are off


def test_check_names_each_bad_setting_in_one_line() -> None:
    result = run("check", env={"BRIDGE_SHOP_RATE": "fast", "BRIDGE_INBOUND_ALLOWED_IPS": "10.0.0.0/8,not-an-ip"})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("BRIDGE_SHOP_RATE" in line for line in errors)
    assert any("'not-an-ip' is not an IP address" in line for line in errors)


def test_check_explains_a_broken_mapping(tmp_path: Path) -> None:
    (tmp_path / "statuses.toml").write_text('send = ["*"]\n[statuses]\nN = 5\n')
    result = run("check", env={"BRIDGE_MAPPINGS_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "statuses.toml" in result.stderr and "statuses.N" in result.stderr


def test_check_reports_an_unreachable_redis() -> None:
    from tests.peers.server import free_port

    result = run("check", env={"BRIDGE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert result.returncode == 1
    assert "BRIDGE_REDIS_URL: Redis does not answer" in result.stderr


def test_check_shows_where_the_first_poll_starts_and_when_it_no_longer_matters(redis_url: str) -> None:
    result = run("check", env={"BRIDGE_POLL_START": "0"})
    assert result.returncode == 0, result.stderr
    assert "first poll: only orders changed from its start on (BRIDGE_POLL_START=0)" in result.stdout
    shown = run("check", env={"BRIDGE_POLL_START": "2026-12-01T00:00:00+03:00"}).stdout
    assert "first poll: orders changed since 2026-12-01T00:00:00+03:00 are sent to 1C" in shown
    assert "orders changed in the 24h before it" in run("check").stdout  # the default

    from redis import Redis

    from bridge import keys

    Redis.from_url(redis_url).set(keys.POLL_WATERMARK, "2026-12-02T05:03:28+00:00")
    result = run("check", env={"BRIDGE_REDIS_URL": redis_url})
    assert "polls have run: the next starts at 2026-12-02T05:03:28+00:00" in result.stdout, result.stdout


def test_processes_refuse_to_start_without_redis() -> None:
    for command in ("web", "worker", "clock"):
        result = run(command)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "BRIDGE_REDIS_URL is not set" in lines[0], result.stderr


# Settings of the wrong form: one plain line each, the same in `bridge check` and in every process.
BAD_SETTINGS = [
    ({"BRIDGE_SHOP_URL": "shop.example"}, "BRIDGE_SHOP_URL: must start with http:// or https://"),
    (
        {"BRIDGE_SHOP_URL": "ftp://shop.example/rest/1/SECRETKEY/"},
        "BRIDGE_SHOP_URL: must start with http:// or https://, not ftp://",
    ),
    ({"BRIDGE_ONEC_URL": "https:///hs/exchange/"}, "BRIDGE_ONEC_URL: must name a host after https://"),
    (
        {"BRIDGE_ALERT_WEBHOOK_URL": "hooks.example/SECRETKEY"},
        "BRIDGE_ALERT_WEBHOOK_URL: must start with http:// or https://",
    ),
    (
        {"BRIDGE_TELEGRAM_API_URL": "gopher://proxy.example"},
        "BRIDGE_TELEGRAM_API_URL: must start with http:// or https://, not gopher://",
    ),
    (
        {"BRIDGE_REDIS_URL": "http://:SECRETPASS@127.0.0.1:6379/0"},
        "BRIDGE_REDIS_URL: must start with redis://, rediss:// or unix://, not http://",
    ),
    ({"PORT": "99999"}, "PORT: must be a port number from 1 to 65535, got 99999"),
    ({"BRIDGE_SMTP_PORT": "0"}, "BRIDGE_SMTP_PORT: must be a port number from 1 to 65535, got 0"),
    (
        {"BRIDGE_LOG_LEVEL": "LOUD"},
        "BRIDGE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'",
    ),
    (
        {"BRIDGE_RETRY_MIN_DELAY": "10", "BRIDGE_RETRY_MAX_DELAY": "5"},
        "BRIDGE_RETRY_MAX_DELAY: must not be less than BRIDGE_RETRY_MIN_DELAY (10)",
    ),
    (
        {"BRIDGE_POLL_START": "yesterday"},
        "BRIDGE_POLL_START: must be a duration such as 24h, 90m, 7d or 0, or an ISO date-time such as "
        "2026-12-01T00:00:00+03:00, got 'yesterday'",
    ),
    (
        {"BRIDGE_MAPPINGS_DIR": "/nowhere/mappings"},
        "BRIDGE_MAPPINGS_DIR: there is no folder /nowhere/mappings (unset it to use the packaged default mappings)",
    ),
]


def plain_lines(stream: str) -> list[str]:
    assert "Traceback" not in stream, stream
    return [line for line in stream.splitlines() if line.strip()]


@pytest.mark.parametrize(("env", "line"), BAD_SETTINGS, ids=[line.split(":")[0] for _, line in BAD_SETTINGS])
def test_check_refuses_a_bad_setting_in_one_plain_line(env: dict[str, str], line: str, tmp_path: Path) -> None:
    result = run("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert plain_lines(result.stderr) == [f"error: {line}", "bridge check: 1 problem(s)"]
    assert "SECRET" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["serve", "web", "worker", "clock"])
def test_every_process_refuses_bad_settings_before_it_starts(command: str, tmp_path: Path) -> None:
    env = {"BRIDGE_LOG_LEVEL": "LOUD", "BRIDGE_REDIS_URL": "http://:SECRETPASS@127.0.0.1:6379/0", "PORT": "99999"}
    result = run(command, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert plain_lines(result.stderr) == [
        "bridge: BRIDGE_REDIS_URL: must start with redis://, rediss:// or unix://, not http://",
        "bridge: PORT: must be a port number from 1 to 65535, got 99999",
        "bridge: BRIDGE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'",
    ]
    assert "SECRET" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["serve", "web", "worker", "clock"])
def test_every_process_refuses_a_missing_mappings_folder_and_broken_mappings(command: str, tmp_path: Path) -> None:
    result = run(command, env={"BRIDGE_MAPPINGS_DIR": str(tmp_path / "nowhere")}, cwd=tmp_path)
    assert result.returncode == 1
    assert plain_lines(result.stderr) == [
        f"bridge: BRIDGE_MAPPINGS_DIR: there is no folder {tmp_path / 'nowhere'} "
        "(unset it to use the packaged default mappings)"
    ]
    (tmp_path / "statuses.toml").write_text("[statuses]\nN = 5\n")
    result = run(command, env={"BRIDGE_MAPPINGS_DIR": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 1
    assert plain_lines(result.stderr) == [
        "bridge: statuses.toml: statuses.N must be a string (the 1C status name), got 5"  # relative to the cwd
    ]


def test_a_misspelt_setting_is_warned_about_with_the_closest_name(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BRIDGE_ONEC_TIMOUT=30\n")
    result = run("check", env={"BRIDGE_SHOP_ULR": "https://shop.example/", "BRIDGE_FROBNICATE": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert plain_lines(result.stderr) == [
        "warning: BRIDGE_FROBNICATE: not a setting of the bridge, ignored",
        "warning: BRIDGE_ONEC_TIMOUT: not a setting of the bridge, ignored; did you mean BRIDGE_ONEC_TIMEOUT?",
        "warning: BRIDGE_SHOP_ULR: not a setting of the bridge, ignored; did you mean BRIDGE_SHOP_URL?",
    ]


def test_a_process_warns_about_a_misspelt_setting_at_start(redis_url: str, tmp_path: Path) -> None:
    result = run("worker", "--burst", env={"BRIDGE_REDIS_URL": redis_url, "BRIDGE_SHOP_ULR": "x"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warning = "BRIDGE_SHOP_ULR: not a setting of the bridge, ignored; did you mean BRIDGE_SHOP_URL?"
    assert any(line.endswith(warning) and " WARNING " in line for line in result.stderr.splitlines()), result.stderr


def test_unset_mappings_folder_is_dot_mappings_when_it_exists_else_the_packaged_defaults(tmp_path: Path) -> None:
    from bridge.mappings import DEFAULTS_DIR

    result = run("check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"  mappings: folder mappings not found, using the packaged defaults ({DEFAULTS_DIR})" in result.stdout
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "catalog.toml").write_text("[stores]\nmain = 1\n")
    result = run("check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  mappings: mappings (catalog.toml; packaged defaults for statuses.toml, order.toml)" in result.stdout
    assert "stores: 1 1C warehouse mapped" in result.stdout
