"""Field types shared by the schemas: French identifiers, phones, zones, strict models."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time
from functools import lru_cache
from typing import Annotated

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

# Regions whose numbers are French: metropolitan France and the overseas departments.
_FRENCH_REGIONS = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


class StrictModel(BaseModel):
    """Input models reject unknown fields (422) and trim strings."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone name (e.g. Europe/Paris)")
    return value


def parse_french_phone(value: str) -> phonenumbers.PhoneNumber:
    """Parse a French number, overseas departments included; raise ValueError otherwise."""
    for region in _FRENCH_REGIONS:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    raise ValueError(f"{value!r} is not a valid French phone number")


def phone_e164(value: str) -> str:
    return phonenumbers.format_number(
        parse_french_phone(value), phonenumbers.PhoneNumberFormat.E164
    )


def _check_phone(value: str) -> str:
    parse_french_phone(value)
    return value  # stored as given; rendered as E.164 where a partner needs it


def _normalise_phone(value: str) -> str:
    return phone_e164(value)


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Email = Annotated[
    str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")
]
Text300 = Annotated[str, StringConstraints(min_length=1, max_length=300)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Department = Annotated[
    str,
    StringConstraints(pattern=r"^(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6])$"),
    Field(description="French department code: 01–95, 2A, 2B, 971–976", examples=["15"]),
]
InseeCode = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9]{5}|2[AB][0-9]{3})$"),
    Field(description="INSEE commune code (5 characters, 2A/2B in Corsica)", examples=["15014"]),
]
PostalCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{5}$")]
Finess = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9]{2}|2[AB])[0-9]{7}$"),
    Field(description="FINESS number (9 characters)"),
]
Siret = Annotated[str, StringConstraints(pattern=r"^[0-9]{14}$")]
Rpps = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{11}$"),
    Field(description="RPPS number, 11 digits", examples=["10003456789"]),
]
Phone = Annotated[
    str,
    StringConstraints(min_length=4, max_length=32),
    AfterValidator(_check_phone),
    Field(description="French phone number, stored as given", examples=["04 71 48 00 00"]),
]
E164Phone = Annotated[
    str,
    StringConstraints(min_length=4, max_length=32),
    AfterValidator(_normalise_phone),
    Field(description="French phone number, normalised to E.164", examples=["06 12 34 56 78"]),
]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


def local(dt: datetime, tz: str) -> datetime:
    """Render an instant in a territory's zone (API output uses the local offset)."""
    return dt.astimezone(zoneinfo.ZoneInfo(tz))


# A local wall-clock time in an answer ("17:00"): JSON Schema's "time" format is an RFC 3339
# full-time, which needs an offset, and these times have none (they are the territory's).
WallClockOut = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$",
            "examples": ["17:00:00"],
        },
        mode="serialization",
    ),
]
