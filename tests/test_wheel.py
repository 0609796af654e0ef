"""The built wheel works on its own: installed into a fresh venv, ``bridge check`` runs outside the repository.

An editable install reads the files of the checkout, so it cannot show that the package ships what it needs
(the mapping schemas, the default mappings, the 1C body schemas). This test builds the wheel from a copy of
what the Dockerfile copies, installs it with ``--no-deps`` into a venv that sees this interpreter's
dependencies through a ``.pth`` line (quick, and no network), and runs the venv's own ``bridge``.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv holding the wheel built from this checkout."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "bridge", source / "bridge", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = base / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("bridge-*.whl")
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    own_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies, from this interpreter's site-packages; a plain path line, so the editable bridge of the
    # checkout (a .pth of its own there) is not picked up: the venv's own site-packages comes first anyway.
    Path(own_site, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--force-reinstall",
         str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return target / "bin"


def run_in(bin_dir: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_") and k not in ("PYTHONPATH", "PORT")}
    clean.update(env or {})
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=clean, capture_output=True, text=True)


def test_the_wheel_holds_its_own_code_and_data(installed: Path, tmp_path: Path) -> None:
    script = (
        "import bridge, bridge.mappings as m; from bridge.updates.intake import schema_files as s; "
        "print(bridge.__file__); print(m.SCHEMA_DIR.is_dir(), m.DEFAULTS_DIR.is_dir()); "
        "print(sorted(k for k in ('stock', 'prices', 'order-status') if s.load(k)))"
    )
    result = run_in(installed, tmp_path, "python", "-c", script)
    assert result.returncode == 0, result.stderr
    where, data, kinds = result.stdout.splitlines()
    assert Path(where).is_relative_to(installed.parent) and not Path(where).is_relative_to(ROOT), where
    assert data == "True True"
    assert kinds == "['order-status', 'prices', 'stock']"


def test_check_without_a_mappings_folder_uses_the_packaged_defaults(installed: Path, tmp_path: Path) -> None:
    result = run_in(installed, tmp_path, "bridge", "check")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "  mappings: folder mappings not found, using the packaged defaults (" in result.stdout
    assert "  order statuses: N → New, P → In progress" in result.stdout
    assert "bridge check: settings and mappings are valid" in result.stdout


def test_check_reads_the_operators_folder_and_defaults_the_rest(installed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "operator-mappings"
    folder.mkdir()
    (folder / "statuses.toml").write_text('[statuses]\nN = "Новый"\nP = "В работе"\n', encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    result = run_in(installed, work, "bridge", "check", env={"BRIDGE_MAPPINGS_DIR": str(folder)})
    assert result.returncode == 0, result.stderr
    assert f"  mappings: {folder} (statuses.toml; packaged defaults for catalog.toml, order.toml)" in result.stdout
    assert "  order statuses: N → Новый, P → В работе; sent to 1C: all" in result.stdout
    (folder / "statuses.toml").write_text("[statuses]\nN = 5\n")
    broken = run_in(installed, work, "bridge", "check", env={"BRIDGE_MAPPINGS_DIR": str(folder)})
    assert broken.returncode == 1
    assert f"error: {folder / 'statuses.toml'}: statuses.N must be a string" in broken.stderr
