"""The code base stays ruff-clean and type-checks: the checks run with the tests so CI enforces them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ruff() -> list[str]:
    found = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(found).exists():
        pytest.fail("ruff is not installed; `pip install -e '.[test]'` installs it")
    return [found]


def test_ruff_check() -> None:
    result = subprocess.run([*ruff(), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = subprocess.run([*ruff(), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    """The package type-checks with the pydantic plugin (``[tool.mypy]`` in pyproject.toml says what and how)."""
    found = shutil.which("mypy") or str(Path(sys.executable).parent / "mypy")
    if not Path(found).exists():
        pytest.fail("mypy is not installed; `pip install -e '.[test]'` installs it")
    result = subprocess.run([found], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
