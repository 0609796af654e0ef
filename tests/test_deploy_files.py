"""``docker-compose.yml`` and ``.env.example`` hold only what the bridge knows: real commands, real settings.

Docker is not run here; the files are read as the tools would read them, and every name in them is looked
up in the code (the ``bridge`` parser, the settings class), so a renamed command or setting fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.cli import build_parser
from bridge.cli.processes import cmd_clock, cmd_web, cmd_worker
from bridge.settings import Settings, known_variables
from tests.processes import ROOT

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
BRIDGE_SERVICES = {"web": cmd_web, "worker": cmd_worker, "clock": cmd_clock}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # anchors and "<<" merges resolved, as compose does
    assert isinstance(data, dict)
    return data


def test_each_bridge_service_runs_a_real_bridge_subcommand(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(BRIDGE_SERVICES) <= set(services)
    for name, func in BRIDGE_SERVICES.items():
        command = services[name]["command"]
        assert command[0] == "bridge", name
        args = build_parser().parse_args(command[1:])  # argparse exits on an unknown subcommand or option
        assert args.func is func, name


def test_bridge_services_are_built_here_and_share_settings_redis_and_mappings(compose: dict[str, Any]) -> None:
    workdir = re.search(r"^WORKDIR\s+(\S+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert workdir is not None
    for name in BRIDGE_SERVICES:
        service = compose["services"][name]
        assert service["build"] == ".", name
        assert service["env_file"] == ".env", name
        assert f"./mappings:{workdir.group(1)}/mappings:ro" in service["volumes"], name  # BRIDGE_MAPPINGS_DIR unset
        environment = service["environment"]
        assert set(environment) <= known_variables(), name
        Settings(**{"redis_url": environment["BRIDGE_REDIS_URL"]})  # a URL the settings accept
        host = environment["BRIDGE_REDIS_URL"].split("://", 1)[1].split(":", 1)[0]
        assert host in compose["services"], f"{name}: Redis host {host!r} is no service"
        assert "redis" in service["depends_on"], name
    assert compose["services"]["web"]["ports"] == ["8000:8000"]
    assert "ports" not in compose["services"]["worker"] and "ports" not in compose["services"]["clock"]


def test_redis_keeps_its_data_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--maxmemory-policy"] == "noeviction"
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]  # a named volume, not the container's layer


def _assignments(text: str) -> list[tuple[str, str, bool]]:
    """(name, value, commented out) for every ``NAME=value`` line, also those behind a ``#``."""
    found = []
    for line in text.splitlines():
        match = re.match(r"^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
        if match:
            found.append((match.group(2), match.group(3), match.group(1) is not None))
    return found


def test_every_variable_in_the_env_example_is_a_setting() -> None:
    assignments = _assignments(ENV_EXAMPLE.read_text(encoding="utf-8"))
    names = [name for name, _, _ in assignments]
    assert len(names) == len(set(names))
    assert sorted(set(names) - known_variables()) == []
    active = {name for name, _, commented in assignments if not commented}
    assert active >= {"BRIDGE_SHOP_URL", "BRIDGE_SHOP_APP_TOKENS", "BRIDGE_ONEC_URL", "BRIDGE_INBOUND_TOKEN"}


def test_the_env_example_ships_no_secret_and_loads_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value, commented in _assignments(ENV_EXAMPLE.read_text(encoding="utf-8")):
        if not commented:
            assert value == "", f"{name} must be left for the operator to fill in"
    for name in known_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings()  # copied unchanged it starts (every feature off, and said to be) instead of failing
    assert settings.shop_url is None and settings.onec_url is None
    for feature in ("shop events", "shop calls", "1C calls", "1C inbound", "admin API"):
        assert settings.missing_for(feature), feature
    commented = {name: value for name, value, off in _assignments(ENV_EXAMPLE.read_text(encoding="utf-8")) if off}
    Settings(**{name.removeprefix("BRIDGE_").lower(): value for name, value in commented.items()})  # valid examples
