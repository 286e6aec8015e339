"""What people read: counts with their plural, phones as written in France, zones by place."""

from __future__ import annotations

import pytest

from app.web.french import count_of, phone_display, zone_name


@pytest.mark.parametrize(
    ("n", "word", "said"),
    [
        (0, "créneau", "0 créneau"),
        (1, "créneau créé", "1 créneau créé"),
        (24, "créneau créé", "24 créneaux créés"),
        (2, "rendez-vous réservé", "2 rendez-vous réservés"),
        (3, "patient", "3 patients"),
    ],
)
def test_counts_take_the_french_plural(n: int, word: str, said: str) -> None:
    assert count_of(n, word) == said


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+33612345678", "06 12 34 56 78"),
        ("0471450000", "04 71 45 00 00"),
        ("+262692123456", "0692 12 34 56"),  # La Réunion
        ("+596696123456", "0696 12 34 56"),  # Martinique
        ("+4930123456", "+49 30 123456"),
        ("not a phone", "not a phone"),
    ],
)
def test_phones_are_shown_as_people_write_them(stored: str, shown: str) -> None:
    assert phone_display(stored) == shown


@pytest.mark.parametrize(
    ("zone", "place"),
    [
        ("Europe/Paris", "Paris"),
        ("Indian/Reunion", "La Réunion"),
        ("America/Martinique", "Martinique"),
    ],
)
def test_zones_are_named_by_their_place(zone: str, place: str) -> None:
    assert zone_name(zone) == place
