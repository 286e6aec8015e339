"""French wording of values people read on the pages: counts with their plural, phone
numbers in the national format, a time zone by its place."""

from __future__ import annotations

import unicodedata

import phonenumbers
from babel.dates import get_timezone, get_timezone_location

from app.directory.communes_load import vendored_names

# Words whose plural is not the word + "s".
_PLURALS = {"créneau": "créneaux", "rendez-vous": "rendez-vous"}


def plural(word: str) -> str:
    """The plural of one word, or of each word of a short group ("créneau libre")."""
    return " ".join(_PLURALS.get(w, w if w.endswith(("s", "x")) else w + "s") for w in word.split())


def count_of(n: int, word: str) -> str:
    """'0 créneau', '1 créneau', '24 créneaux': French uses the singular below 2."""
    return f"{n} {word if abs(n) < 2 else plural(word)}"


def phone_display(value: str | None) -> str:
    """A phone as people write it: '06 12 34 56 78' for a French number (overseas included,
    '0692 12 34 56'), international format otherwise; left as given when unreadable."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, "FR")
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    if number.country_code in (33, 262, 269, 508, 590, 594, 596, 681, 687, 689):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def postal_address(address: str, postal_code: str | None, city: str | None) -> str:
    """An address as a letter carries it: '12 rue X, 15000 Aurillac' (the parts given)."""
    town = " ".join(part for part in (postal_code, city) if part)
    return f"{address}, {town}" if town else address


def commune_label(insee: str | None) -> str:
    """A commune read by people: 'Aurillac (15014)'; the code alone when unknown."""
    if not insee:
        return ""
    name = vendored_names().get(insee)
    return f"{name} ({insee})" if name else insee


def zone_name(zone: str) -> str:
    """A time zone by its place, as in "heure de Paris", "heure de La Réunion"."""
    try:
        return str(get_timezone_location(get_timezone(zone), locale="fr_FR", return_city=True))
    except LookupError:
        return zone


def collation_key(text: str) -> str:
    """Alphabetical order as a French reader expects it: accents and case do not move a name
    ("Élodie" between "Eddy" and "Emma", not after "Zoé")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
