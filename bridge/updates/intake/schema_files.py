"""The JSON Schema files of the 1C bodies (``bridge/updates/intake/schemas/<kind>.schema.json``), made from the models.

The files are what a 1C developer (or their test tooling) reads; the models are what the bridge runs. A
test checks the files equal what the models generate, so the two cannot drift apart. After changing a
model, regenerate with ``python -m bridge.updates.intake.schema_files``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bridge.updates.kinds import KINDS

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
BASE_ID = "https://github.com/bridge/bridge/inbound/schemas/"


def generate(kind: str) -> dict[str, Any]:
    """The schema of the ``POST /1c/<kind>`` body, as the model defines it."""
    generated = KINDS[kind].adapter.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}{kind}.schema.json",
        **generated,
        "title": f"POST /1c/{kind}",
    }


def path(kind: str) -> Path:
    return SCHEMA_DIR / f"{kind}.schema.json"


def render(kind: str) -> str:
    return json.dumps(generate(kind), indent=2, ensure_ascii=False) + "\n"


def load(kind: str) -> dict[str, Any]:
    """The schema as stored in the repository (what ``/openapi.json`` serves)."""
    data: dict[str, Any] = json.loads(path(kind).read_text(encoding="utf-8"))
    return data


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path(kind).write_text(render(kind), encoding="utf-8")
        written.append(path(kind))
    return written


if __name__ == "__main__":
    for written in write_all():
        print(written)
