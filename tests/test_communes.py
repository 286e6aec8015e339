"""The referential of French communes: loading it, and resolving what a person types."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import communes
from app.directory.communes_load import load
from app.directory.models import CommuneRecord


async def test_the_referential_is_loaded_with_every_commune(session: AsyncSession) -> None:
    count = await session.scalar(select(func.count()).select_from(CommuneRecord))
    assert count is not None and count > 34_000


async def test_loading_again_changes_nothing(session: AsyncSession) -> None:
    loaded = await load(session)
    assert loaded.rows > 34_000
    assert (loaded.changed, loaded.removed) == (0, 0)


async def test_loading_restores_a_renamed_commune_and_removes_a_stray_one(
    session: AsyncSession,
) -> None:
    aurillac = await session.get(CommuneRecord, "15014")
    assert aurillac is not None
    aurillac.name = "Aurillac-la-Vieille"
    session.add(
        CommuneRecord(
            insee="15999", name="Nulle-Part", name_key="nulle part", departement="15",
            postal_codes=["15999"], population=None,
        )
    )  # fmt: skip
    await session.flush()
    loaded = await load(session)
    assert (loaded.changed, loaded.removed) == (1, 1)
    session.expire_all()
    assert (await communes.names(session, ["15014", "15999"])) == {"15014": "Aurillac"}


async def test_a_name_resolves_to_its_commune(session: AsyncSession) -> None:
    found = await communes.resolve(session, "Aurillac")
    assert found.one is not None and found.one.insee == "15014"
    assert found.one.label == "Aurillac (15000)"


async def test_accents_case_and_hyphens_do_not_matter(session: AsyncSession) -> None:
    for typed in ("Arpajon-sur-Cère", "arpajon sur cere", "ARPAJON SUR CÈRE"):
        found = await communes.resolve(session, typed)
        assert found.one is not None and found.one.insee == "15012", typed


async def test_st_stands_for_saint(session: AsyncSession) -> None:
    for typed in ("st flour", "Saint-Flour", "St-Flour"):
        found = await communes.resolve(session, typed)
        assert found.one is not None and found.one.insee == "15187", typed


async def test_an_insee_code_resolves_to_its_commune(session: AsyncSession) -> None:
    found = await communes.resolve(session, "15014")
    assert found.one is not None and found.one.name == "Aurillac"
    assert found.postal_code is None


async def test_a_postal_code_of_several_communes_lists_them(session: AsyncSession) -> None:
    found = await communes.resolve(session, "15000")  # Aurillac and part of Ytrac
    assert found.postal_code == "15000"
    assert [c.name for c in found.communes] == ["Aurillac", "Ytrac"]
    assert found.one is None


async def test_a_code_both_insee_and_postal_lists_the_insee_commune_first(
    session: AsyncSession,
) -> None:
    found = await communes.resolve(session, "15130")  # Montchamp's INSEE code, Arpajon's CP
    names = [c.name for c in found.communes]
    assert names[:3] == ["Montchamp", "Arpajon-sur-Cère", "Ytrac"]  # then by population
    assert len(names) == 16 and found.postal_code == "15130"


async def test_a_name_shared_by_several_communes_lists_them(session: AsyncSession) -> None:
    found = await communes.resolve(session, "Saint-Georges")
    assert found.one is None
    assert len(found.communes) > 5
    assert all(c.name == "Saint-Georges" for c in found.communes)


async def test_the_callers_departement_comes_first(session: AsyncSession) -> None:
    found = await communes.resolve(session, "Saint-Georges", prefer={"15014"})
    assert found.communes[0].departement == "15"


async def test_a_label_resolves_back_to_its_commune(session: AsyncSession) -> None:
    found = await communes.resolve(session, "Ytrac (15000)")
    assert found.one is not None and found.one.insee == "15267"


async def test_the_start_of_a_name_lists_the_communes_it_begins(session: AsyncSession) -> None:
    found = await communes.resolve(session, "st flour")
    assert found.one is not None  # the exact name wins over Saint-Flour-de-Mercoire
    found = await communes.resolve(session, "Saint-Flour-de")
    assert [c.insee for c in found.communes] == ["48150"]


async def test_paris_postal_codes_name_their_arrondissement(session: AsyncSession) -> None:
    found = await communes.resolve(session, "75001")
    assert found.one is not None and found.one.insee == "75101"
    assert found.one.label == "Paris 1er Arrondissement (75001)"


async def test_nothing_matches_an_unknown_value(session: AsyncSession) -> None:
    assert (await communes.resolve(session, "Zzyzx")).communes == []
    assert (await communes.resolve(session, "99999")).communes == []
    assert (await communes.resolve(session, " - ")).communes == []


async def test_the_demo_communes_agree_with_the_referential(session: AsyncSession) -> None:
    from app.demo import COMMUNES

    for insee, demo in COMMUNES.items():
        found = await communes.get(session, insee)
        assert found is not None and found.name == demo.name, insee
        assert demo.postal_code in found.postal_codes, insee
