import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import CallerDep, SessionDep
from app.directory import key_service, schemas
from app.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.KeyCreated)
async def create_key(
    body: schemas.KeyIn, session: SessionDep, caller: CallerDep
) -> schemas.KeyCreated:
    """Create an API key. The secret `key` is in this response only; store it now."""
    key, secret = await key_service.create_key(session, caller, body)
    return schemas.KeyCreated.model_validate(
        {
            **schemas.KeyOut.model_validate(key).model_dump(),
            "minted_by_admin": caller.is_admin,
            "key": secret,
        }
    )


@router.get("", response_model=Page[schemas.KeyOut])
async def list_keys(
    session: SessionDep,
    caller: CallerDep,
    include_revoked: bool = False,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[schemas.KeyOut]:
    rows, next_cursor = await key_service.list_keys(
        session, caller, include_revoked=include_revoked, cursor=cursor, limit=limit
    )
    roles = await key_service.creator_roles(session, rows)
    items = [
        schemas.KeyOut.model_validate(k).model_copy(
            update={"minted_by_admin": k.created_by is None or roles[k.id] == "admin"}
        )
        for k in rows
    ]
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> Response:
    """Revoke a key: it stops working at once."""
    await key_service.revoke_key(session, caller, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
