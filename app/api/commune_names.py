"""The names of the communes beside their INSEE codes in the JSON answers: every output model
with a `commune_insee` gets its `commune_name` from the referential of communes
(app/directory/communes.py), with one lookup for the whole answer, not one per row."""

from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import communes

T = TypeVar("T")


def _named_models(value: Any) -> Iterator[BaseModel]:
    """The models in `value` (itself, nested models, lists, dicts) that carry a commune."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        if "commune_insee" in fields and "commune_name" in fields:
            yield value
        for name in fields:
            yield from _named_models(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _named_models(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _named_models(item)


async def name_communes(session: AsyncSession, result: T) -> T:
    """`result` with `commune_name` set beside each `commune_insee` (None for a code the
    referential does not know, or no commune)."""
    models = list(_named_models(result))
    known = await communes.names(session, {m.commune_insee for m in models})  # type: ignore[attr-defined]
    for model in models:
        model.commune_name = known.get(model.commune_insee)  # type: ignore[attr-defined]
    return result
