"""The project's documents stand alone and keep up with the code.

A newcomer who clones the repository has ``docs/reference.md``, ``docs/architecture.md`` and the README, and
nothing else: so no file may point at a document outside the repository, every link between the documents
must lead somewhere, the reference must name every setting, endpoint and command the code has, and every
module, file and dotted name the documents mention must exist. A new setting or route without its line in the
reference, or a module moved without its documents, fails here, not in a newcomer's hands.
"""

from __future__ import annotations

import importlib
import itertools
import re
from pathlib import Path

import pytest
from starlette.routing import Route

from bridge.cli import build_parser
from bridge.settings import Settings
from bridge.web.app import routes

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build", "dist"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".json", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".sh", ""}

# Documents that exist only outside the repository, however they are cited.
OUTSIDE = re.compile(
    r"\.\./shared|/work/shared|CONTRACT\.md|[Cc]ontract §|\bthe review\b|review-2026"
    r"|\b(?:onec|bitrix-rest|peers|perf-notes|commerceml-gateway)\.md\b"
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _repository_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIPPED_DIRS or any(p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES and path != Path(__file__).resolve():
            found.append(path)
    return found


def test_no_file_cites_a_document_outside_the_repository() -> None:
    citations = []
    for path in _repository_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                citations.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert citations == [], "cite docs/reference.md instead:\n" + "\n".join(citations)


def _anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_the_documents_lead_somewhere(document: Path) -> None:
    broken = []
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # a URL
        file, _, anchor = target.partition("#")
        linked = (document.parent / file) if file else document
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert broken == []


def _environment_names(name: str) -> list[str]:
    alias = Settings.model_fields[name].validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(choice) for choice in choices]
    return ["BRIDGE_" + name.upper()]


def test_the_reference_names_every_setting() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if not any(env in text for env in _environment_names(name))]
    assert missing == []


def test_the_reference_names_every_endpoint() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    paths = [route.path for route in routes() if isinstance(route, Route)]
    assert paths
    assert [path for path in paths if f"`{path}`" not in text and f" {path}`" not in text] == []


def test_the_reference_names_every_command() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    commands = []
    for action in build_parser()._subparsers._group_actions:  # argparse keeps its subcommands here
        for name, sub in action.choices.items():
            nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
            commands += [f"bridge {name} {inner}" for group in nested for inner in group.choices] or [f"bridge {name}"]
    assert len(commands) >= 8
    assert [command for command in commands if f"`{command}" not in text] == []


# Sections that name what does not exist yet, on purpose: the homes of the next capabilities.
PLANNED = re.compile(r"^(#+) (?:What comes next|Not in this version)\b")
# Dotted words that look like a module but are not one: host names in examples.
NOT_MODULES = {"bridge.example"}
DOTTED = re.compile(r"(?<![\w./-])bridge(?:\.\w+)+")
# A .py file anywhere (prose, diagrams, tables); other files and folders only as a `token` of their own.
PY_FILE = re.compile(r"(?<![\w./<>{},*-])((?:[\w.<>{},*-]+/)+[\w<>{},*-]+\.py)\b")
TOKEN = re.compile(r"`([^`\s]+)`")
TOKEN_PATH = re.compile(r"^[\w<>{},*-][\w.<>{},*/-]*(?:/|\.(?:py|json|toml|md))$")


def _current_text(document: Path) -> str:
    """The document without its sections about what is planned."""
    kept, skipping = [], 0
    for line in document.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^(#+) ", line)
        if heading and skipping and len(heading.group(1)) <= skipping:
            skipping = 0
        if planned := PLANNED.match(line):
            skipping = len(planned.group(1))
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _expansions(path: str) -> list[str]:
    """``kinds/{stock,prices}.py`` → both files; ``<kind>`` and ``*`` stand for any name."""
    path = re.sub(r"<[^>]*>", "*", path)
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[piece] if index % 2 == 0 else piece.split(",") for index, piece in enumerate(parts)]
    return ["".join(combination) for combination in itertools.product(*choices)]


def _exists(path: str) -> bool:
    """A path of the repository, or of the package (``orders/job.py`` is ``bridge/orders/job.py``); every file a
    ``{a,b}`` names, and at least one that a ``*`` matches."""
    return all(
        any(any(True for _ in base.glob(candidate)) for base in (ROOT, ROOT / "bridge"))
        for candidate in _expansions(path.rstrip("/"))
    )


def _resolves(dotted: str) -> bool:
    """``bridge.a.b.name``: the longest importable module, then attributes down to the last part."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def missing_names(text: str) -> list[str]:
    """The files, folders and dotted names in ``text`` that the repository does not have."""
    paths = set(PY_FILE.findall(text))
    paths |= {token for token in TOKEN.findall(text) if TOKEN_PATH.match(token) and "/" in token}
    missing = [path for path in sorted(paths) if not _exists(path)]
    dotted = {name.rstrip(".") for name in DOTTED.findall(text)} - NOT_MODULES
    return missing + [name for name in sorted(dotted) if not _resolves(name)]


def test_the_name_check_finds_what_does_not_exist() -> None:
    text = "see `bridge/orders/job.py`, orders/missing.py, `queue/gone/`, bridge.queue.work.Work and bridge.queue.nope"
    assert missing_names(text) == ["orders/missing.py", "queue/gone/", "bridge.queue.nope"]
    assert missing_names("`updates/kinds/{stock,prices}.py`, `bridge/updates/intake/schemas/<kind>.schema.json`") == []
    assert missing_names("`updates/kinds/{stock,gone}.py`") == ["updates/kinds/{stock,gone}.py"]


@pytest.mark.parametrize(
    "document", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_module_and_path_a_document_names_exists(document: Path) -> None:
    assert missing_names(_current_text(document)) == []
