"""Redis answers as text.

The bridge's Redis clients return bytes (RQ needs them so), while tests and tools sometimes hand in clients
that decode; every reader of a value that is text by nature goes through ``as_text`` rather than its own
``isinstance`` check. Bytes that are not UTF-8 become replacement characters: a garbled field is shown, never
a reason for a reader to fail.
"""

from __future__ import annotations

from typing import overload


@overload
def as_text(value: bytes | str) -> str: ...
@overload
def as_text(value: None) -> None: ...
@overload
def as_text(value: bytes | str | None) -> str | None: ...
def as_text(value: bytes | str | None) -> str | None:
    """``value`` as text; ``None`` (a missing key or field) stays ``None``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
