"""`creneau seed-demo`: a realistic demo CPTS so that a new user can try the API at once.

The territory is the Aurillac basin (Cantal, 15): real communes with their INSEE codes, postal
codes and coordinates; the practices and GPs are fictional (names, addresses, phones and RPPS
numbers are made up; RPPS numbers carry a valid Luhn key). Running it again reuses the territory
and prints fresh keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import now_utc
from app.crisis import plans
from app.crisis.plan_schemas import PlanDocument
from app.directory import (
    key_service,
    practice_service,
    practitioner_service,
    regulator_service,
    territory_service,
)
from app.directory import schemas as directory
from app.directory.models import Practice, Practitioner, Regulator, Territory
from app.scheduling import publication
from app.scheduling import schemas as scheduling
from app.security import Caller

PARIS = ZoneInfo("Europe/Paris")
TERRITORY_NAME = "CPTS du Bassin d'Aurillac (démo)"


@dataclass(frozen=True)
class Commune:
    name: str
    insee: str
    postal_code: str
    lat: float
    lon: float


COMMUNES = {
    c.insee: c
    for c in (
        Commune("Aurillac", "15014", "15000", 44.9264, 2.4397),
        Commune("Arpajon-sur-Cère", "15012", "15130", 44.9036, 2.4572),
        Commune("Ytrac", "15267", "15000", 44.9111, 2.3650),
        Commune("Naucelles", "15140", "15250", 44.9597, 2.4181),
        Commune("Jussac", "15083", "15250", 44.9881, 2.4242),
        Commune("Vic-sur-Cère", "15258", "15800", 44.9800, 2.6258),
        Commune("Maurs", "15122", "15600", 44.7106, 2.1986),
        Commune("Mauriac", "15120", "15200", 45.2181, 2.3336),
    )
}

# (practice name, address, INSEE, phone, offset of the practice from the commune centre)
PRACTICES = (
    ("Maison de santé du Centre", "12 rue des Carmes", "15014", "04 71 48 10 00", (0.002, 0.001)),
    ("Cabinet médical du Gravier", "3 place du Square", "15014", "04 71 48 20 00", (-0.004, 0.003)),
    (
        "Cabinet de la Jordanne",
        "40 avenue de la République",
        "15014",
        "04 71 48 30 00",
        (0.006, -0.005),
    ),
    ("Pôle santé de Marmiers", "8 rue de Marmiers", "15014", "04 71 48 40 00", (-0.008, -0.007)),
    ("Maison de santé d'Arpajon", "1 rue du Rieu", "15012", "04 71 63 10 00", (0.001, 0.002)),
    (
        "Cabinet médical d'Ytrac",
        "5 route de Saint-Paul",
        "15267",
        "04 71 43 10 00",
        (0.002, -0.001),
    ),
    ("Cabinet de Naucelles", "2 place de l'Église", "15140", "04 71 46 10 00", (0.000, 0.001)),
    ("Cabinet médical de Jussac", "7 avenue du Parc", "15083", "04 71 46 20 00", (0.001, 0.000)),
    (
        "Maison de santé de la vallée de la Cère",
        "10 avenue Mercier",
        "15258",
        "04 71 47 10 00",
        (0.001, -0.002),
    ),
    (
        "Maison de santé de la Châtaigneraie",
        "4 place de l'Europe",
        "15122",
        "04 71 49 10 00",
        (0.002, 0.001),
    ),
    (
        "Cabinet médical du Tour de Ville",
        "18 tour de ville",
        "15122",
        "04 71 49 20 00",
        (-0.002, 0.002),
    ),
    ("Maison de santé de Mauriac", "6 rue du Collège", "15120", "04 71 68 10 00", (0.001, 0.001)),
)

FAMILY = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefèvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
    "Morin",
]
GIVEN = [
    "Claire",
    "Julien",
    "Sophie",
    "Nicolas",
    "Camille",
    "Thomas",
    "Élodie",
    "Pierre",
    "Marion",
    "Antoine",
    "Julie",
    "Mathieu",
    "Pauline",
    "Sébastien",
    "Laure",
    "Vincent",
    "Céline",
    "Maxime",
    "Émilie",
    "Guillaume",
    "Anne",
    "Romain",
    "Lucie",
    "Hugo",
    "Aurélie",
    "Alexandre",
    "Hélène",
    "François",
    "Marie",
    "Olivier",
    "Chloé",
    "Benoît",
    "Manon",
    "Arnaud",
    "Léa",
    "Damien",
    "Sarah",
    "Florian",
    "Inès",
    "Paul",
    "Agathe",
    "Louis",
]
# Practitioners per practice: 40 GPs in 12 practices.
SIZES = (6, 3, 4, 3, 5, 3, 2, 3, 4, 3, 1, 3)


def luhn_rpps(seq: int) -> str:
    """A fictional 11-digit RPPS number (prefix 1000) with a valid Luhn check digit."""
    body = f"1000{seq:06d}"
    total = 0
    for i, digit in enumerate(reversed(body)):
        n = int(digit) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)


# Weekly SNP rules, chosen by the practitioner's rank so that the demo has every modality,
# visibility and an overnight permanence.
RULES = (
    ("FREQ=WEEKLY;BYDAY=MO,TU,TH,FR", time(17), time(19), 20, "cabinet", "sas"),
    ("FREQ=WEEKLY;BYDAY=MO,WE,FR", time(8), time(9, 30), 15, "cabinet", "sas"),
    # Every day, so that a teleconsultation is always within the next 48 hours.
    ("FREQ=DAILY", time(12), time(13), 15, "teleconsultation", "sas"),
    ("FREQ=WEEKLY;BYDAY=WE", time(14), time(17), 30, "visite", "sas"),
    ("FREQ=WEEKLY;BYDAY=SA", time(8), time(12), 20, "cabinet", "public"),
    ("FREQ=WEEKLY;BYDAY=MO,TH", time(18), time(20), 20, "cabinet", "cpts"),
    ("FREQ=WEEKLY;BYDAY=FR", time(20), time(0), 30, "cabinet", "sas"),
)


async def seed(session: AsyncSession) -> dict[str, str]:
    """Create (or find) the demo territory and return fresh keys, labelled."""
    admin = Caller(key_id=uuid.UUID(int=0), role="admin")
    territory = await session.scalar(select(Territory).where(Territory.name == TERRITORY_NAME))
    if territory is None:
        territory = await _create(session, admin)
    regulator = await session.scalar(
        select(Regulator).where(Regulator.name == "SAS du Cantal (démo)")
    )
    assert regulator is not None
    first_practice = await session.scalar(
        select(Practice).where(Practice.territory_id == territory.id).order_by(Practice.name)
    )
    assert first_practice is not None
    gp = await session.scalar(
        select(Practitioner)
        .where(Practitioner.practice_id == first_practice.id)
        .order_by(Practitioner.family_name)
    )
    assert gp is not None
    await _crisis_plan(session, admin, territory.id)
    keys = {
        "territory_id": str(territory.id),
        "practice_id": str(first_practice.id),
        "practice": first_practice.name,
        "practitioner_id": str(gp.id),
        "practitioner": f"Dr {gp.given_name} {gp.family_name}",
    }
    for role, scope in (
        ("admin", {}),
        ("coordinator", {"territory_id": territory.id}),
        ("practice", {"practice_id": first_practice.id}),
        ("regulator", {"regulator_id": regulator.id}),
        ("dashboard", {"territory_id": territory.id}),
    ):
        data = directory.KeyIn(role=role, name=f"démo {role}", **scope)
        _, secret = await key_service.create_key(session, None, data)
        keys[f"{role} key"] = secret
    return keys


# The shell variables of the README's examples, by the label `seed` gives each value.
ENV_NAMES = {
    "territory_id": "TERRITORY",
    "practice_id": "PRACTICE",
    "practitioner_id": "GP",
    "admin key": "ADMIN_KEY",
    "coordinator key": "COORD_KEY",
    "practice key": "PRACTICE_KEY",
    "regulator key": "REGULATOR_KEY",
    "dashboard key": "DASHBOARD_KEY",
}


def env_file_text(keys: dict[str, str]) -> str:
    """The demo's ids and keys as a file a shell can source (`. .data/demo.env`)."""
    lines = ["# Written by `creneau seed-demo`: the demo's ids and keys. Keys are secrets."]
    lines += [
        f"export {ENV_NAMES[label]}={value}" for label, value in keys.items() if label in ENV_NAMES
    ]
    return "\n".join(lines) + "\n"


async def _create(session: AsyncSession, admin: Caller) -> Territory:
    territory = await territory_service.create_territory(
        session,
        admin,
        directory.TerritoryIn(
            name=TERRITORY_NAME,
            timezone="Europe/Paris",
            department="15",
            population=78000,
            phone="04 71 45 00 00",
        ),
    )
    regulator = await regulator_service.create_regulator(
        session, admin, directory.RegulatorIn(name="SAS du Cantal (démo)", department="15")
    )
    await regulator_service.link_regulator(session, admin, territory.id, regulator.id)
    rank = 0
    for (name, address, insee, phone, (dlat, dlon)), size in zip(PRACTICES, SIZES, strict=True):
        commune = COMMUNES[insee]
        practice = await practice_service.create_practice(
            session,
            admin,
            directory.PracticeIn(
                territory_id=territory.id,
                name=name,
                address=address,
                commune_insee=insee,
                postal_code=commune.postal_code,
                city=commune.name,
                lat=round(commune.lat + dlat, 5),
                lon=round(commune.lon + dlon, 5),
                phone=phone,
            ),
        )
        for _ in range(size):
            accepts = rank % 3 == 0
            practitioner = await practitioner_service.create_practitioner(
                session,
                admin,
                directory.PractitionerIn(
                    practice_id=practice.id,
                    rpps=luhn_rpps(rank + 1),
                    family_name=FAMILY[rank],
                    given_name=GIVEN[rank],
                    gender="female" if rank % 2 == 0 else "male",
                    accepts_overbooking=accepts,
                    overbooking_daily_cap=1 + rank % 3 if accepts else 0,
                    mt_capacity=(rank * 7) % 31,
                ),
            )
            for offset in range(1 + rank % 2):
                rrule, start, end, minutes, modality, visibility = RULES[
                    (rank + offset * 3) % len(RULES)
                ]
                await publication.create_rule(
                    session,
                    admin,
                    practitioner.id,
                    scheduling.RuleIn(
                        rrule=rrule,
                        start_time=start,
                        end_time=end,
                        slot_minutes=minutes,
                        modality=modality,
                        visibility=visibility,
                        valid_from=now_utc().astimezone(PARIS).date(),
                    ),
                )
            rank += 1
    return territory


# A small crisis plan (docs/crisis-plan.md): its first GPs volunteer, evenings and Saturdays.
# fmt: off
CRISIS_PLAN = {
    "contacts": [
        {"role": "ARS", "name": "Astreinte ARS Auvergne-Rhône-Alpes", "phone": "04 72 34 74 00"},
        {"role": "SAS", "name": "SAS du Cantal", "phone": "04 71 46 56 00"},
    ],
    "sites": [{"name": "Salle polyvalente du Square", "address": "Place du Square",
               "commune_insee": "15014", "capacity": "2 salles, 8 h – 20 h"}],
    "steps": [{"title": "Alerter l'ARS et le SAS", "who": "Coordination"},
              {"title": "Déclarer la crise dans Créneau", "who": "Coordination"}],
    "raise_overbooking_caps": True,
}
PLEDGES = [
    {"modality": "cabinet", "weekdays": [1, 2, 3, 4, 5], "start_time": "18:00",
     "end_time": "20:00"},
    {"modality": "visite", "weekdays": [6], "start_time": "09:00", "end_time": "12:00"},
]
# fmt: on


async def _crisis_plan(session: AsyncSession, admin: Caller, territory_id: uuid.UUID) -> None:
    if await plans.current_of(session, territory_id) is not None:
        return
    volunteers = [
        {"practitioner_id": gp.id, "pledges": PLEDGES[: 1 + i % 2], "crisis_overbooking_cap": 4}
        for i, gp in enumerate((await plans.practitioners(session, territory_id))[:3])
    ]
    document = PlanDocument.model_validate(
        {**CRISIS_PLAN, "reviewed_on": now_utc().date(), "volunteers": volunteers}
    )
    await plans.write_version(session, admin, document, territory_id, now_utc())
