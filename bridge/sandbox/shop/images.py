"""Product pictures: ``catalog.productImage.list`` and ``.add``.

The file comes as ``fileContent: [name, base64]``; file methods are refused inside ``batch`` (the
emulator's dispatcher refuses the names in ``NOT_IN_BATCH``), so every picture is one request.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from typing import Any

from bridge.sandbox.shop.filters import list_answer
from bridge.sandbox.shop.methods import MethodTable, required_fields
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import integer
from bridge.sandbox.shop.wire import Answer, ShopError

IMAGE_FIELDS = ("id", "name", "productId", "type", "createTime", "detailUrl", "downloadUrl")
TYPES = ("DETAIL_PICTURE", "PREVIEW_PICTURE", "MORE_PHOTO")
NOT_IN_BATCH = frozenset({"catalog.productimage.add"})


class ImageArranging(ShopState):
    def __init__(self, **identity: Any) -> None:
        super().__init__(**identity)
        self.images: dict[int, Row] = {}

    def images_of(self, product_id: int) -> list[Row]:
        """The product's pictures, each with the sha256 of its content (``sha256``, the emulator's own field)."""
        with self.lock:
            return [copy.deepcopy(i) for i in self.images.values() if i["productId"] == product_id]


def _images(shop: ShopState) -> dict[int, Row]:
    found: dict[int, Row] = getattr(shop, "images", {})
    return found


METHODS = MethodTable()


@METHODS.register("catalog.productimage.list")
def image_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    product_id = params.get("productId")
    if product_id in (None, ""):
        raise ShopError(100, "Required parameter 'productId' is not specified")
    rows = [i for i in _images(shop).values() if i["productId"] == integer(product_id, "productId")]
    return list_answer(
        rows,
        {k: v for k, v in params.items() if k != "productId"},
        key="productImages",
        fields=IMAGE_FIELDS,
        exclude=("sha256",),
    )


@METHODS.register("catalog.productimage.add")
def image_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    fields = required_fields(params)
    content = params.get("fileContent")
    if not isinstance(content, list) or len(content) != 2 or not content[1]:
        raise ShopError(100, "Required parameter 'fileContent' is empty")
    name, data = str(content[0]), str(content[1])
    if not name or "/" in name or len(name) > 255:
        raise ShopError(0, "The file name contains invalid characters or is too long")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ShopError(0, "Invalid file type") from None
    product_id = integer(fields.get("productId") or 0, "productId")
    if product_id not in shop.products:
        raise ShopError(0, "Product not found")
    kind = str(fields.get("type") or "MORE_PHOTO")
    if kind not in TYPES:
        raise ShopError(0, "Invalid image type")
    image_id = shop.new_id("image")
    image = {
        "id": image_id, "name": name, "productId": product_id, "type": kind, "createTime": shop.now(),
        "detailUrl": f"/upload/iblock/{image_id}/{name}", "downloadUrl": f"/rest/download/{image_id}",
        "sha256": hashlib.sha256(raw).hexdigest(),
    }  # fmt: skip
    _images(shop)[image_id] = image
    return Answer({"productImage": {k: v for k, v in image.items() if k != "sha256"}})
