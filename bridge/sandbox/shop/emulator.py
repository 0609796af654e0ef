"""``ShopEmulator``: the areas' arranging mixins together, the union of their method tables, and the one
entry point an HTTP request goes through (authentication, faults, dispatch, records)."""

from __future__ import annotations

import collections
import copy
import functools
import hmac
import time
from typing import Any, ClassVar

from bridge.sandbox.shop import catalog, documents, images, nomenclature, prices, sale, sections, stock
from bridge.sandbox.shop.batch import run_batch
from bridge.sandbox.shop.catalog import CatalogArranging
from bridge.sandbox.shop.events import ShopEvents
from bridge.sandbox.shop.faults import FaultSwitches
from bridge.sandbox.shop.images import NOT_IN_BATCH, ImageArranging
from bridge.sandbox.shop.methods import Handler, MethodTable
from bridge.sandbox.shop.nomenclature import NomenclatureArranging
from bridge.sandbox.shop.prices import PriceArranging
from bridge.sandbox.shop.sale import SaleArranging
from bridge.sandbox.shop.sections import SectionArranging
from bridge.sandbox.shop.stock import StockArranging
from bridge.sandbox.shop.wire import Answer, ShopError, time_block

AREAS = (sale, catalog, nomenclature, sections, images, stock, prices, documents)  # each contributes its METHODS

DISPATCH = MethodTable()  # the methods about the API itself


@DISPATCH.register("batch")
def _batch(shop: ShopEmulator, params: dict[str, Any]) -> Answer:
    return run_batch(params, functools.partial(shop.execute, nested=True))


@DISPATCH.register("methods")
def _methods(shop: ShopEmulator, params: dict[str, Any]) -> Answer:
    """The methods this shop has (those a switch turns off are missing, as on a shop without them)."""
    return Answer(shop.METHODS.names(shop))


class ShopEmulator(
    SaleArranging,
    NomenclatureArranging,  # before CatalogArranging: it builds on the properties that one seeds
    SectionArranging,
    ImageArranging,
    CatalogArranging,
    StockArranging,
    PriceArranging,
    FaultSwitches,
    ShopEvents,
):
    """In-memory shop: catalog, orders, fault switches and a record of every call.

    Records: ``requests`` has one entry per HTTP request that reached ``/rest/`` (a batch is one entry,
    "batch"); ``commands`` has one entry per method the shop actually ran, including each command inside a
    batch, but not calls refused before running (auth, rate limit, overload, pause, ``fail_next``);
    ``status_counts`` counts the HTTP statuses answered.

    A subclass may serve some methods its own way by setting ``METHODS = ShopEmulator.METHODS.replacing(…)``.
    """

    METHODS: ClassVar[MethodTable] = MethodTable.union([DISPATCH, *(area.METHODS for area in AREAS)])

    def __init__(
        self,
        *,
        webhook_code: str = "k3y-s3cr3t-webhook",
        application_token: str = "app-token-0001",
        user_id: int = 1,
    ) -> None:
        super().__init__(webhook_code=webhook_code, application_token=application_token, user_id=user_id)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.status_counts: collections.Counter[int] = collections.Counter()

    # -- records -------------------------------------------------------------------------------------------

    def count(self, method: str) -> int:
        """How many times the shop ran ``method`` (case-insensitive), batched or not."""
        with self.lock:
            return sum(1 for name, _ in self.commands if name.lower() == method.lower())

    def clear_records(self) -> None:
        with self.lock:
            self.requests.clear()
            self.commands.clear()
            self.status_counts.clear()

    # -- the HTTP side -------------------------------------------------------------------------------------

    def handle(self, user_id: str, code: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one HTTP request: (status, JSON body)."""
        started = time.time()
        with self.lock:
            self.requests.append((method, copy.deepcopy(params)))
            try:
                if user_id != str(self.user_id) or not hmac.compare_digest(
                    code.encode("utf-8"), self.webhook_code.encode("utf-8")
                ):
                    raise ShopError(self.auth_error, "Wrong authorization data", 401)
                self.admit_request()
                answer = self.execute(method, params, nested=False)
            except ShopError as exc:
                return self._error_answer(exc)
            body: dict[str, Any] = {"result": answer.result}
            if answer.total is not None:
                body["total"] = answer.total
            if answer.next is not None:
                body["next"] = answer.next
            body["time"] = time_block(started)
            self.status_counts[200] += 1
            return 200, body

    def refuse(self, method: str, description: str) -> tuple[int, dict[str, Any]]:
        """Answer a request whose body could not be read."""
        with self.lock:
            self.requests.append((method, {}))
            return self._error_answer(ShopError("INVALID_REQUEST", description, 400))

    def _error_answer(self, exc: ShopError) -> tuple[int, dict[str, Any]]:
        status = 200 if self.legacy_200_errors else exc.status
        self.status_counts[status] += 1
        return status, exc.body()

    def execute(self, method: str, params: dict[str, Any], *, nested: bool) -> Answer:
        """Run one method, alone (``nested=False``) or as a command of a batch; the caller holds the lock."""
        name = method.strip().lower().removesuffix(".json")
        if nested and (name == "batch" or name in NOT_IN_BATCH):
            raise ShopError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405)
        handler: Handler | None = self.METHODS.find(self, name)
        if handler is None:
            raise ShopError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        if name.split(".")[0] in self.missing_scopes:
            detail = "The request requires higher privileges than provided by the webhook token"
            raise ShopError("insufficient_scope", detail, 403)
        self.admit_method(name)
        if name != "batch":
            self.commands.append((method, copy.deepcopy(params)))
        return handler(self, params)
