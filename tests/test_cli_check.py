"""``bridge check`` and the refusals of ``web``/``worker``/``clock``: one plain line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_processes_refuse_to_start_without_redis() -> None:
    for command in ("web", "worker", "clock"):
        result = run(command)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "BRIDGE_REDIS_URL is not set" in lines[0], result.stderr
