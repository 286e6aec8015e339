"""The slot search regulators use with a patient on the phone."""

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response

from app.api.deps import ReadCallerDep, ReadSessionDep
from app.bounds import BoundedDatetime
from app.errors import ValidationFailed
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.scheduling import schemas
from app.scheduling import search as slot_search
from app.scheduling.rules import zone
from app.scheduling.schemas import Modality
from app.validators import InseeCode


def _parse_near(near: str | None) -> tuple[float, float] | None:
    if near is None:
        return None
    try:
        lat_s, lon_s = near.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError as exc:
        raise ValidationFailed.field(["query", "near"], "expected near=lat,lon") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationFailed.field(["query", "near"], "latitude or longitude out of range")
    return lat, lon


router = APIRouter(prefix="/v1/slots", tags=["search"])


@router.get("", response_model=Page[schemas.SlotSearchItem])
async def search_slots(
    session: ReadSessionDep,
    caller: ReadCallerDep,
    from_: Annotated[
        BoundedDatetime | None, Query(alias="from", description="Default: now")
    ] = None,
    to: Annotated[
        BoundedDatetime | None, Query(description="Default: from + 48 h; max 7 days")
    ] = None,
    modality: Modality | None = None,
    commune_insee: Annotated[InseeCode | None, Query()] = None,
    near: Annotated[str | None, Query(description="lat,lon", examples=["45.03,2.45"])] = None,
    radius_km: Annotated[float | None, Query(gt=0, le=500)] = None,
    practitioner_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Response:
    """Bookable slots (free, or held with an expired hold): those opened for a running
    crisis first (`crisis_id`), then by start and distance."""
    rows, next_cursor = await slot_search.search(
        session,
        caller,
        start=from_,
        end=to,
        modality=modality,
        commune_insee=commune_insee,
        near=_parse_near(near),
        radius_km=radius_km,
        practitioner_id=practitioner_id,
        cursor=cursor,
        limit=limit,
    )
    # The hot path of the product: asyncpg records serialised straight to JSON with orjson,
    # shaped as SlotSearchItem.
    near_given = near is not None
    items = [
        {
            "id": str(r["id"]),
            # Local times; orjson writes them as isoformat() would (RFC 3339 with the offset).
            "start": r["start"].astimezone(zone(r["timezone"])),
            "end": r["end"].astimezone(zone(r["timezone"])),
            "modality": r["modality"],
            "visibility": r["visibility"],
            "status": "free",
            "practitioner": {
                "id": str(r["practitioner_id"]),
                "family_name": r["family_name"],
                "given_name": r["given_name"],
                "rpps": r["rpps"],
            },
            "practice": {
                "id": str(r["practice_id"]),
                "name": r["practice_name"],
                "address": r["address"],
                "commune_insee": r["commune_insee"],
                "commune_name": r["commune_name"],  # joined in the search's one statement
                "lat": r["lat"],
                "lon": r["lon"],
            },
            "distance_km": round(r["distance_km"], 2) if near_given else None,
            "crisis_id": str(r["crisis_id"]) if r["crisis_id"] else None,
        }
        for r in rows
    ]
    body = orjson.dumps({"items": items, "next_cursor": next_cursor})
    return Response(body, media_type="application/json")
