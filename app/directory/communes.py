"""The referential of French communes (table `commune`, app/directory/data/README.md): what a
person types for a commune (an INSEE code, a postal code, a name, "Name (code)") resolved to
one commune or to the candidates to choose from, the names to show beside codes, and where a
commune is for distances (the referential has no coordinates: the mean position of the
directory's practices in the commune, else in its postal codes)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import CommuneRecord, Practice
from app.errors import ValidationFailed

# At most this many candidates are offered for an ambiguous value.
MAX_CANDIDATES = 20
_CODE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$", re.IGNORECASE)
_WITH_CODE = re.compile(r"^(.*?)\s*\(\s*(\d{5}|2[AB]\d{3})\s*\)\s*$", re.IGNORECASE)
_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}


def name_key(name: str) -> str:
    """A commune's name folded for matching: no accent, no case, hyphens and apostrophes as
    spaces, "St"/"Ste" as "Saint"/"Sainte" ("st flour" and "Saint-Flour" match)."""
    decomposed = unicodedata.normalize("NFKD", name.replace("œ", "oe").replace("Œ", "Oe"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = re.sub(r"[^0-9a-z]+", " ", plain.replace("æ", "ae")).split()
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words)


@dataclass(frozen=True)
class Commune:
    insee: str
    name: str
    departement: str
    postal_codes: tuple[str, ...]

    @property
    def label(self) -> str:
        """What a page shows and a form keeps: "Aurillac (15000)", the INSEE code when the
        commune has no postal code of its own (Paris, Lyon, Marseille)."""
        return f"{self.name} ({self.postal_codes[0] if self.postal_codes else self.insee})"


@dataclass(frozen=True)
class Resolution:
    """The communes a typed value may mean, the likeliest first; `postal_code` when the value
    was a postal code (a place in itself, even when several communes share it)."""

    value: str
    communes: list[Commune] = field(default_factory=list)
    postal_code: str | None = None

    @property
    def one(self) -> Commune | None:
        return self.communes[0] if len(self.communes) == 1 else None


def _commune(r: CommuneRecord) -> Commune:
    return Commune(r.insee, r.name, r.departement, tuple(r.postal_codes))


def _by_code(code: str) -> Select[CommuneRecord]:
    return select(CommuneRecord).where(
        or_(CommuneRecord.insee == code, CommuneRecord.postal_codes.contains([code]))
    )


async def _ranked(
    session: AsyncSession, stmt: Select[CommuneRecord], prefer: Collection[str]
) -> list[Commune]:
    """The candidates: the caller's own communes first (`prefer`: INSEE codes), then those of
    their départements, then the most populated."""
    rank = []
    if prefer:
        theirs = select(CommuneRecord.departement).where(CommuneRecord.insee.in_(prefer))
        rank = [
            CommuneRecord.insee.in_(prefer).desc(),
            CommuneRecord.departement.in_(theirs).desc(),
        ]
    rows = await session.scalars(
        stmt.order_by(
            *rank,
            CommuneRecord.population.desc().nulls_last(),
            CommuneRecord.name,
        ).limit(MAX_CANDIDATES)
    )
    return [_commune(r) for r in rows]


async def resolve(session: AsyncSession, value: str, prefer: Collection[str] = ()) -> Resolution:
    """An INSEE code, a postal code, a name (accents, case, hyphens, "st" do not matter; the
    exact name, else the names that start with it) or "Name (code)" as pages write it."""
    value = value.strip()
    with_code = _WITH_CODE.match(value)
    if with_code is not None and with_code.group(1):
        code, key = with_code.group(2).upper(), name_key(with_code.group(1))
        stmt = _by_code(code).where(CommuneRecord.name_key == key)
        return Resolution(value, await _ranked(session, stmt, prefer))
    if with_code is not None:
        value = with_code.group(2)
    if _CODE.match(value):
        code = value.upper()
        found = await _ranked(session, _by_code(code), prefer)
        # An INSEE code names its commune; a postal code is also a place of its own.
        found.sort(key=lambda c: c.insee != code)
        is_postal = any(code in c.postal_codes for c in found)
        return Resolution(value, found, code if is_postal else None)
    key = name_key(value)
    if not key:
        return Resolution(value)
    exact = await _ranked(
        session, select(CommuneRecord).where(CommuneRecord.name_key == key), prefer
    )
    if exact:
        return Resolution(value, exact)
    # Only letters, digits and spaces in a key: nothing for LIKE to take as a wildcard.
    starting = select(CommuneRecord).where(CommuneRecord.name_key.startswith(key))
    return Resolution(value, await _ranked(session, starting, prefer))


async def territory_communes(session: AsyncSession, territory_id: uuid.UUID) -> list[str]:
    """The INSEE codes of the territory's practices: preferred when a typed name is ambiguous."""
    stmt = select(Practice.commune_insee).where(Practice.territory_id == territory_id).distinct()
    return list(await session.scalars(stmt))


async def resolve_in_territory(
    session: AsyncSession, territory_id: uuid.UUID, values: Iterable[str], loc: str = "communes"
) -> list[str]:
    """INSEE codes for what an API body typed (codes, postal codes, names), the territory's own
    communes preferred, each once in the order typed; an unknown or ambiguous value is a 422
    on its item (`["body", loc, i]`)."""
    prefer = await territory_communes(session, territory_id)
    found: list[str] = []
    for i, value in enumerate(values):
        resolution = await resolve(session, value, prefer)
        one = resolution.one
        if one is None and resolution.communes and resolution.communes[0].insee == value.upper():
            one = resolution.communes[0]  # an INSEE code that is also another's postal code
        if one is None:
            if resolution.communes:
                names = "; ".join(c.label for c in resolution.communes[:5])
                raise ValidationFailed.field(["body", loc, i], f"several communes match: {names}")
            raise ValidationFailed.field(["body", loc, i], "unknown commune")
        if one.insee not in found:
            found.append(one.insee)
    return found


async def get(session: AsyncSession, insee: str) -> Commune | None:
    row = await session.get(CommuneRecord, insee)
    return _commune(row) if row is not None else None


async def names(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    """INSEE code → name, for the codes the referential knows."""
    wanted = {c for c in codes if c}
    if not wanted:
        return {}
    rows = await session.execute(
        select(CommuneRecord.insee, CommuneRecord.name).where(CommuneRecord.insee.in_(wanted))
    )
    return {insee: name for insee, name in rows}


async def labels(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    """INSEE code → "Name (code)" with the INSEE code, for pages that list codes."""
    return {code: f"{name} ({code})" for code, name in (await names(session, codes)).items()}


async def centre(
    session: AsyncSession, insee: Collection[str], postal_codes: Collection[str] = ()
) -> tuple[float, float] | None:
    """Where a commune (or the communes of a postal code) is, for distances: the mean position
    of the directory's practices there; else of those with one of its postal codes; None
    when the directory has no practice near enough to tell."""
    for where in (
        Practice.commune_insee.in_(insee),
        Practice.postal_code.in_(postal_codes) if postal_codes else None,
    ):
        if where is None:
            continue
        lat, lon = (
            await session.execute(
                select(func.avg(Practice.lat), func.avg(Practice.lon)).where(where)
            )
        ).one()
        if lat is not None:
            return float(lat), float(lon)
    return None
