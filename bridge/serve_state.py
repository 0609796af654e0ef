"""Where a running ``bridge serve`` on its in-memory Redis can be reached by the operator's commands.

The in-memory Redis listens on a random loopback port. While ``serve`` runs it writes that address (with its
pid and web address) to a small file, readable by this user only; ``bridge failed …`` and ``bridge log`` use
it when ``BRIDGE_REDIS_URL`` is not set, so they work in the newcomer's mode too. The file lives in
``$XDG_RUNTIME_DIR/bridge/`` (else ``<temp dir>/bridge-<uid>/``) and is removed when ``serve`` stops; a file
left by a killed ``serve`` (its pid is gone) is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bridge.settings import Settings

FILE_NAME = "serve.json"


def state_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "bridge"
    return Path(tempfile.gettempdir()) / f"bridge-{os.getuid()}"


def state_path() -> Path:
    return state_dir() / FILE_NAME


@contextlib.contextmanager
def recorded(redis_url: str, settings: Settings) -> Iterator[Path]:
    """Write the state file for as long as the block runs; remove it after, unless another serve took it."""
    folder = state_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / FILE_NAME
    state = {"pid": os.getpid(), "redis_url": redis_url, "web": f"http://{settings.host}:{settings.port}"}
    temporary = folder / f".{FILE_NAME}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out)
    temporary.replace(path)
    try:
        yield path
    finally:
        if _read(path).get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()


def running_redis_url() -> str | None:
    """The in-memory Redis of a ``bridge serve`` that runs now, if any."""
    state = _read(state_path())
    pid = state.get("pid")
    url = state.get("redis_url")
    if not isinstance(pid, int) or not isinstance(url, str) or not _alive(pid):
        return None
    return url


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
