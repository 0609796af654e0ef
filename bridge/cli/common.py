"""What every ``bridge`` command shares: settings loaded or explained in one plain line each, and Redis required.

Every process and ``bridge check`` read their configuration through ``read_configuration``, so they refuse the
same mistakes with the same words: a setting of the wrong form, a mappings folder that was named but is not
there, a mapping file with mistakes. A process prints ``bridge: <VARIABLE>: <what is wrong>`` per problem and
exits 1 before it starts anything, rather than crashing later with a traceback. Names that look like settings
but are not (``BRIDGE_SHOP_ULR``) are only warned about: deployment tooling may set variables of its own.

Kept apart from the commands so that ``bridge.cli.ops`` and ``bridge.cli.processes`` import it without importing
each other (the parser in ``bridge.cli`` imports them all).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bridge.settings import Settings, given_variables, unknown_variables

if TYPE_CHECKING:
    from bridge.mappings import Mappings

ENV_NAMES = {"port": "PORT"}


def env_name(field: str) -> str:
    if field in ("port", "PORT", "BRIDGE_PORT"):  # two names for one setting: say the one that was given
        return "BRIDGE_PORT" if "BRIDGE_PORT" in os.environ and "PORT" not in os.environ else "PORT"
    return ENV_NAMES.get(field, "BRIDGE_" + field.upper())


def settings_problems(error: ValidationError) -> list[str]:
    """One plain line per problem, naming the environment variable to fix (never the value of a URL)."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{env_name(field)}: {message}")
    return lines


@dataclass
class Configuration:
    """The settings and mappings a command runs on, or the plain lines that say why it cannot."""

    settings: Settings | None
    mappings: Mappings | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_configuration(*, with_mappings: bool = True) -> Configuration:
    """Read and check the settings, the mappings folder setting and (``with_mappings``) the mapping files."""
    from bridge.mappings import MappingError, load_mappings

    warnings = unknown_variables(given_variables())
    try:
        settings = Settings()
    except ValidationError as exc:
        return Configuration(None, problems=settings_problems(exc), warnings=warnings)
    problems = folder_problems(settings)
    mappings = None
    if with_mappings and not problems:
        try:
            mappings = load_mappings(settings.mappings_dir)
        except MappingError as exc:
            problems.extend(exc.problems)
    return Configuration(settings, mappings, problems, warnings)


def folder_problems(settings: Settings) -> list[str]:
    """A mappings folder that was named but is not there: a typo must not quietly run on the defaults.

    Unset, the setting is ``./mappings``, and a missing ``./mappings`` means the packaged defaults.
    """
    if "mappings_dir" not in settings.model_fields_set:
        return []
    folder = settings.mappings_dir
    if not folder.exists():
        return [f"BRIDGE_MAPPINGS_DIR: there is no folder {folder} (unset it to use the packaged default mappings)"]
    return []  # a file where a folder belongs is reported by load_mappings


def load_or_explain(*, with_mappings: bool = False) -> Settings:
    """The settings, or exit 1 with one ``bridge: …`` line per problem.

    The processes pass ``with_mappings``: a job must not find a broken mapping file after the start. The
    dead-letter commands do not, so that they still work while someone fixes one.
    """
    configuration = read_configuration(with_mappings=with_mappings)
    if configuration.problems or configuration.settings is None:
        for line in configuration.problems:
            print(f"bridge: {line}", file=sys.stderr)
        raise SystemExit(1)
    return configuration.settings


def warn_unknown_variables() -> None:
    """Log (once logging is set up) every ``BRIDGE_*`` name that no setting reads."""
    import logging

    log = logging.getLogger("bridge")
    for line in unknown_variables(given_variables()):
        log.warning("%s", line)


def require_redis(settings: Settings, command: str) -> str:
    if settings.redis_url is None:
        print(
            f"bridge {command}: BRIDGE_REDIS_URL is not set; separate processes share their queues through Redis "
            "(use `bridge serve` to run everything in one process on an in-memory Redis)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    return settings.redis_url.get_secret_value()
