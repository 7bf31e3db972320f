"""Routes of the app's PNG images: crops, context, label crops and the Phase 1 gallery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from blobsift.app._state import State
from blobsift.app.imaging import context_png, crop_png
from blobsift.exceptions import InvalidInputError

__all__ = ["router"]

router = APIRouter()
_IMAGE_CACHE = "private, max-age=86400"
#: The contrast query of a crop: the upper percentile mapped to white.
High = Annotated[float, Query(ge=50.0, le=100.0)]


def _png(data: bytes) -> Response:
    # Cacheable: the page adds this server's session to every image URL, so prefetched
    # crops show without a second request and a restarted server never shows stale ones.
    return Response(data, media_type="image/png", headers={"Cache-Control": _IMAGE_CACHE})


@router.get("/api/crop/{cid}.png")
def crop(cid: str, state: State, high: High = 99.5, mark: bool = False) -> Response:
    """The crop of a candidate (its channels side by side); ``mark`` ticks its centre."""
    return _png(crop_png(state.pool.crop(state.pool.index(cid)), high=high, mark=mark))


@router.get("/api/context/{cid}.png")
def context(cid: str, state: State) -> Response:
    """The region of its image around a candidate (of the detection channel, for stacks)."""
    pool = state.pool
    k = pool.index(cid)
    pixels = pool.detection_image(int(pool.image_id[k]))
    return _png(context_png(pixels, pool.row[k], pool.col[k]))


@router.get("/api/label-crop/{event_id}.png")
def label_crop(event_id: int, state: State, high: High = 99.5) -> Response:
    """The crop of a current label, by its event id."""
    image_id, row, col = state.label_position(event_id)
    return _png(crop_png(state.pool.crop_at(image_id, row, col), high=high))


@router.get("/api/gallery/{model_id}/{row}.png")
def gallery_crop(model_id: int, row: int, state: State) -> Response:
    """A labelled crop of the latest Phase 1 model's gallery."""
    found = state.gallery()
    if found is None or found[0].id != model_id or not 0 <= row < len(found[2]):
        raise InvalidInputError(f"no gallery crop {row} of model {model_id}.")
    heldout = found[2].iloc[row]
    crop = state.pool.crop_at(int(heldout["image_id"]), heldout["row"], heldout["col"])
    return _png(crop_png(crop))
