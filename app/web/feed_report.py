"""The last agenda-feed import, in French, for the practitioner's page: its status, each
event the import skipped and why, each conflict and with what. The service words its reasons
in English (the API's language); they are rendered here, pattern by pattern."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from typing import Any

from babel.dates import format_date

from app.web.render import LOCALE, when

STATUS = {
    "pending": "pas encore importé",
    "ok": "importé",
    "partial": "importé en partie (des événements ont été écartés)",
    "not_modified": "inchangé depuis la dernière importation",
    "failed": "échec : rien n'a changé",
}

_DURATION_UNITS = (("days", "jours"), ("h", "h"), ("min", "min"))


def _duration(text: str) -> str:
    for english, french in _DURATION_UNITS:
        if text.endswith(f" {english}"):
            return text.removesuffix(f" {english}").replace(".", ",") + f" {french}"
    return text


_REASONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"all-day event"),
        lambda m: "événement sur la journée entière : ce n'est pas un créneau de consultation",
    ),
    (re.compile(r"lasts 0 minutes"), lambda m: "dure 0 minute : ce n'est pas un créneau"),
    (re.compile(r"ends before it starts"), lambda m: "se termine avant de commencer"),
    (
        re.compile(r"lasts (.+), shorter than the feed's slot length \((\d+) min\)"),
        lambda m: f"dure {_duration(m[1])}, moins qu'un créneau du flux ({m[2]} min)",
    ),
    (
        re.compile(r"lasts (.+): a slot lasts at most 24 h"),
        lambda m: f"dure {_duration(m[1])} : un créneau dure au plus 24 h",
    ),
    (re.compile(r"lasts (.+): a slot lasts more than nothing"), lambda m: "durée impossible"),
    (
        re.compile(r"unknown time zone '([^']*)'"),
        lambda m: f"fuseau horaire inconnu « {m[1]} »",
    ),
    (re.compile(r"blank time zone"), lambda m: "fuseau horaire (TZID) vide"),
    (re.compile(r"^no start"), lambda m: "sans heure de début (DTSTART)"),
    (re.compile(r"ends on a date"), lambda m: "se termine à une date sans heure"),
    (
        re.compile(r"repeats every (minute|second)"),
        lambda m: (
            "se répète chaque "
            + ("minute" if m[1] == "minute" else "seconde")
            + " : ce n'est pas un créneau de consultation"
        ),
    ),
    (re.compile(r"^([A-Z-]+) cannot be read"), lambda m: f"propriété {m[1]} illisible"),
    (re.compile(r"not a FHIR instant|no time zone offset"), lambda m: "date illisible"),
    (re.compile(r"cannot be read|unreadable event"), lambda m: "événement illisible"),
]


def reason_fr(reason: str) -> str:
    """A skipped event's reason in French (the English one when it is not known here)."""
    for pattern, render in _REASONS:
        match = pattern.search(reason)
        if match:
            return render(match)
    return reason


def conflict_fr(conflict: dict[str, Any]) -> str:
    if conflict.get("kind") == "kept":
        return "créneau réservé ou retenu qui n'est plus dans le flux : conservé"
    if conflict.get("with_uid"):
        return f"chevauche l'événement {conflict['with_uid']} du même flux : non importé"
    if conflict.get("slot_id"):
        return "chevauche un créneau déjà publié : non importé"
    return "chevauche un autre créneau : non importé"


def moment(text: str | None, tz: tzinfo) -> str:
    """A start recorded on the import (local ISO time, or a date) as French text."""
    if not text:
        return "date inconnue"
    try:
        if "T" not in text:
            return format_date(date.fromisoformat(text), "EEE d MMM y", locale=LOCALE)
        return when(datetime.fromisoformat(text), tz)
    except ValueError:
        return text
