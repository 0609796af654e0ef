"""The REST method tables: each area module fills one, and the emulator serves their union.

A handler is a plain function ``(shop, params) -> Answer`` that runs under the shop's lock and raises
``ShopError`` for an error answer. Adding a group of methods is one new module with a ``METHODS`` table
(and its arranging mixin, if tests need to set data up), listed once in ``emulator.AREAS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.sandbox.shop.state import ShopState
from bridge.sandbox.shop.values import integer
from bridge.sandbox.shop.wire import Answer, ShopError

Handler = Callable[[Any, dict[str, Any]], Answer]  # the first argument is the ShopState (or a subclass)


def always(shop: ShopState) -> bool:
    return True


@dataclass(frozen=True)
class Method:
    handler: Handler
    available: Callable[[ShopState], bool] = always  # False: this shop answers "method not found"


class MethodTable:
    """Method names (lower case, as the shop matches them) → handlers."""

    def __init__(self, methods: Mapping[str, Method] | None = None) -> None:
        self._methods: dict[str, Method] = dict(methods or {})

    def register(self, name: str, *, available: Callable[[ShopState], bool] = always) -> Callable[[Handler], Handler]:
        """Decorator: serve ``name`` with the function."""

        def add(handler: Handler) -> Handler:
            if name in self._methods:
                raise ValueError(f"{name} is registered twice")
            self._methods[name] = Method(handler, available)
            return handler

        return add

    @classmethod
    def union(cls, tables: Iterable[MethodTable]) -> MethodTable:
        """One table serving every method of ``tables``; a name in two tables is a mistake."""
        merged = cls()
        for table in tables:
            for name, method in table._methods.items():
                if name in merged._methods:
                    raise ValueError(f"{name} is registered twice")
                merged._methods[name] = method
        return merged

    def replacing(self, handlers: Mapping[str, Handler]) -> MethodTable:
        """A copy whose ``handlers`` replace the existing ones (a benchmark's faster list, for instance)."""
        unknown = set(handlers) - set(self._methods)
        if unknown:
            raise ValueError(f"no such methods to replace: {sorted(unknown)}")
        return MethodTable(
            {
                name: Method(handlers[name], method.available) if name in handlers else method
                for name, method in self._methods.items()
            }
        )

    def find(self, shop: ShopState, name: str) -> Handler | None:
        method = self._methods.get(name)
        return method.handler if method is not None and method.available(shop) else None

    def names(self, shop: ShopState) -> list[str]:
        return sorted(name for name, method in self._methods.items() if method.available(shop))


# -- parameter checks most methods share -------------------------------------------------------------------


def required_id(params: dict[str, Any], name: str = "id") -> int:
    value = params.get(name)
    if value is None or value == "":
        raise ShopError(100, f"Required parameter '{name}' is not specified")
    return integer(value, name)


def required_fields(params: dict[str, Any]) -> dict[str, Any]:
    fields = params.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise ShopError(100, "Required parameter 'fields' is not specified or empty")
    return fields


def require(fields: dict[str, Any], names: Iterable[str]) -> None:
    """Error 0 naming the required ``fields`` that are absent or empty."""
    missing = [name for name in names if fields.get(name) in (None, "")]
    if missing:
        raise ShopError(0, f"Required fields: {', '.join(missing)}")
