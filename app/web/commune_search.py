"""The place of a slot search typed as a person knows it (app/web/regulator_pages.py: the
regulator's and the CPTS's pages): a commune's name, its postal code or its INSEE code,
resolved through the referential of communes. One commune, or a postal code (a place of its
own even when several communes share it), is searched around its centre; several candidates
are offered as a choice list; an unknown value or a place the directory cannot position is
said in French on the field."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import communes
from app.directory.practice_service import Commune as KnownCommune


@dataclass
class Place:
    """Where to search: `near` (its centre, None when unknown), `insee` when it is one commune
    (the unmet-demand hooks and "in the commune only" need it), what the field shows now
    (`shown`), the `origin` of distances in words, and otherwise an `error` and `choices`."""

    shown: str
    insee: str | None = None
    near: tuple[float, float] | None = None
    origin: str | None = None
    error: str | None = None
    choices: list[communes.Commune] = field(default_factory=list)


UNKNOWN = (
    "Commune inconnue : tapez son nom, son code postal ou son code INSEE (ex. Aurillac, 15000)."
)
SEVERAL = "Plusieurs communes correspondent : choisissez-la dans la liste ci-dessous."
NO_POSITION = (
    "Aucun cabinet de l'annuaire dans cette commune ni dans son code postal : sa position "
    "n'est pas connue. Choisissez « Dans la commune seulement » ou indiquez un point."
)


async def locate(
    session: AsyncSession, typed: str, known: dict[str, KnownCommune], *, commune_only: bool
) -> Place:
    """`known`: the communes of the caller's practices (placed, and offered first)."""
    found = await communes.resolve(session, typed, prefer=known.keys())
    if not found.communes:
        return Place(typed, error=UNKNOWN)
    one = found.one
    code = found.postal_code
    # A postal code (not also an INSEE code) of several communes: a place of its own.
    if (
        one is None
        and code is not None
        and not commune_only
        and all(c.insee != code for c in found.communes)
    ):
        names = ", ".join(sorted(c.name for c in found.communes))
        near = await communes.centre(session, [c.insee for c in found.communes], [code])
        place = Place(code, near=near, origin=f"du code postal {code} ({names})")
        if near is None:
            place.error = NO_POSITION
        return place
    if one is None:
        return Place(typed, error=SEVERAL, choices=found.communes)
    place = Place(one.label, insee=one.insee, origin=f"du centre de {one.name}")
    mine = known.get(one.insee)
    if mine is not None:
        place.near = (mine.lat, mine.lon)
    else:
        place.near = await communes.centre(session, [one.insee], one.postal_codes)
    if place.near is None and not commune_only:
        place.error = NO_POSITION
    return place
