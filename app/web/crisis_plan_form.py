"""The crisis plan's edit form, without script: rows of fields named by the model's path
(`contacts.0.phone`, `volunteers.1.pledges.0.weekdays`), read into a draft (the rows typed,
blank rows left out), shown again with blank rows to fill, and checked by the API's own
model (app.crisis.plan_schemas.PlanDocument); each error is named by its field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.crisis.plan_schemas import PlanDocument
from app.crisis.plans import NOT_A_PRACTITIONER, UNKNOWN_COMMUNE
from app.errors import AppError
from app.web.auth import Form
from app.web.forms import service_errors, validation_errors

# The rows of each section, their fields, the most rows the model takes.
SECTIONS: dict[str, tuple[tuple[str, ...], int]] = {
    "contacts": (("role", "name", "phone", "email"), 50),
    "volunteers": (("practitioner_id", "email", "crisis_overbooking_cap"), 500),
    "sites": (("name", "address", "commune_insee", "capacity"), 50),
    "steps": (("title", "who", "detail"), 50),
}
PLEDGE_FIELDS = ("modality", "start_time", "end_time", "slot_minutes")
MAX_PLEDGES = 10
BLANKS = 2  # blank rows under each section's rows
MORE = 3  # blank rows "Ajouter des lignes" adds
MAX_BLANKS = 20
SECTION_NAMES = {
    "contacts": "Contact",
    "volunteers": "Volontaire",
    "sites": "Lieu",
    "steps": "Étape",
}
FIELD_NAMES = {
    "role": "Rôle",
    "name": "Nom",
    "phone": "Téléphone",
    "email": "E-mail",
    "practitioner_id": "Médecin",
    "crisis_overbooking_cap": "Surnuméraires par jour en crise",
    "address": "Adresse",
    "commune_insee": "Code INSEE de la commune",
    "capacity": "Capacité d'accueil",
    "title": "Intitulé",
    "who": "Qui",
    "detail": "Détail",
    "modality": "Modalité",
    "weekdays": "Jours",
    "start_time": "Début",
    "end_time": "Fin",
    "slot_minutes": "Durée d'un créneau",
    "reviewed_on": "Date de la dernière revue",
}
_MESSAGES = {
    NOT_A_PRACTITIONER: "Ce médecin n'exerce pas sur le territoire.",
    UNKNOWN_COMMUNE: "Code INSEE inconnu du référentiel des communes, ex. 15014.",
    "end_time must be after start_time": "La fin doit être après le début.",
    "weekdays must not repeat": "Chaque jour une seule fois.",
}
_BY_LEAF = {
    "phone": "Numéro de téléphone français invalide.",
    "email": "Adresse e-mail invalide.",
    "commune_insee": "Code INSEE invalide : 5 caractères, ex. 15014.",
}


@dataclass
class Draft:
    """What the form holds: the rows typed (blank ones left out), how many blank rows to
    show under each section, the field to focus once shown again."""

    reviewed_on: str = ""
    raise_overbooking_caps: bool = False
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name in SECTIONS}
    )
    blanks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, BLANKS))
    focus: str | None = None

    def values(self) -> dict[str, Any]:
        """Flat field name → value, as the template's fields read them."""
        out: dict[str, Any] = {"reviewed_on": self.reviewed_on}
        for section, rows in self.rows.items():
            for i, row in enumerate(rows):
                for name, value in row.items():
                    if name == "pledges":
                        for j, pledge in enumerate(value):
                            for key, v in pledge.items():
                                out[f"{section}.{i}.pledges.{j}.{key}"] = v
                    else:
                        out[f"{section}.{i}.{name}"] = value
        return out

    def counts(self) -> dict[str, int]:
        return {s: len(self.rows[s]) + self.blanks[s] for s in SECTIONS}

    def pledge_counts(self) -> list[int]:
        """Pledge rows of each volunteer row: its pledges and one blank."""
        volunteers = self.rows["volunteers"]
        return [
            min(len(volunteers[i]["pledges"]) + 1 if i < len(volunteers) else 1, MAX_PLEDGES)
            for i in range(self.counts()["volunteers"])
        ]


def _count(form: Form, name: str, most: int) -> int:
    value = form.get(name)
    return min(int(value), most) if value.isdigit() else 0


def _pledges(form: Form, prefix: str) -> list[dict[str, Any]]:
    out = []
    for j in range(_count(form, f"lignes.{prefix}.pledges", MAX_PLEDGES)):
        at = f"{prefix}.pledges.{j}"
        pledge: dict[str, Any] = {k: form.get(f"{at}.{k}") for k in PLEDGE_FIELDS}
        pledge["weekdays"] = [d for d in form.getlist(f"{at}.weekdays") if d.strip()]
        if any(pledge[k] for k in ("modality", "start_time", "end_time", "weekdays")):
            out.append(pledge)
    return out


def read(form: Form) -> Draft:
    """The draft the form holds: each section's rows with something typed, in order."""
    draft = Draft(
        reviewed_on=form.get("reviewed_on"),
        raise_overbooking_caps=form.get("raise_overbooking_caps") == "true",
    )
    for section, (names, most) in SECTIONS.items():
        for i in range(_count(form, f"lignes.{section}", most)):
            row: dict[str, Any] = {n: form.get(f"{section}.{i}.{n}") for n in names}
            if section == "volunteers":
                row["pledges"] = _pledges(form, f"{section}.{i}")
            if any(row.values()):
                draft.rows[section].append(row)
        blanks = _count(form, f"vides.{section}", MAX_BLANKS)
        draft.blanks[section] = blanks or BLANKS
    return draft


def add_rows(draft: Draft, section: str) -> None:
    """More blank rows in a section, the first of them focused."""
    if section not in SECTIONS:
        return
    draft.blanks[section] = min(draft.blanks[section] + MORE, MAX_BLANKS)
    first = SECTIONS[section][0][0]
    draft.focus = f"{section}.{len(draft.rows[section])}.{first}"


def _hhmm(value: Any) -> str:
    return value[:5] if isinstance(value, str) else ""


def from_document(document: dict[str, Any]) -> Draft:
    """A draft of a version of the plan, to write the next one from."""
    doc = PlanDocument.model_validate(document)
    draft = Draft(
        reviewed_on=doc.reviewed_on.isoformat(),
        raise_overbooking_caps=doc.raise_overbooking_caps,
    )
    dumped = doc.model_dump(mode="json")
    for section, (names, _) in SECTIONS.items():
        for item in dumped[section]:
            row: dict[str, Any] = {n: "" if item.get(n) is None else str(item[n]) for n in names}
            if section == "volunteers":
                row["pledges"] = [
                    {
                        "modality": p["modality"],
                        "start_time": _hhmm(p["start_time"]),
                        "end_time": _hhmm(p["end_time"]),
                        "slot_minutes": str(p["slot_minutes"]),
                        "weekdays": [str(d) for d in p["weekdays"]],
                    }
                    for p in item["pledges"]
                ]
            draft.rows[section].append(row)
    return draft


def _filled(row: dict[str, Any]) -> dict[str, Any]:
    """A row's fields, blanks left out (optional ones absent, required ones 'missing')."""
    return {k: v for k, v in row.items() if v not in ("", [])}


def document_data(draft: Draft) -> dict[str, Any]:
    data: dict[str, Any] = {"raise_overbooking_caps": draft.raise_overbooking_caps}
    if draft.reviewed_on:
        data["reviewed_on"] = draft.reviewed_on
    for section in SECTIONS:
        rows = []
        for row in draft.rows[section]:
            item = _filled(row)
            if section == "volunteers":
                item["pledges"] = [
                    {**_filled(p), "weekdays": p["weekdays"]} for p in row["pledges"]
                ]
            rows.append(item)
        data[section] = rows
    return data


def _where(loc: str, message: str) -> tuple[str, str]:
    """An error's field and French message: a pledge's own rule on its end or days, a day
    out of range on the days."""
    parts = loc.split(".")
    if len(parts) >= 2 and parts[-2] == "pledges":  # the pledge's own rules
        leaf = "weekdays" if "weekdays" in message else "end_time"
        return f"{loc}.{leaf}", message
    if len(parts) >= 2 and parts[-2] == "weekdays":
        return ".".join(parts[:-1]), message
    return loc, message


def _french(raw: dict[str, tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for loc, (english, french) in raw.items():
        name, _ = _where(loc, english)
        leaf = name.rsplit(".", 1)[-1]
        if english in _MESSAGES:
            message = _MESSAGES[english]
        elif leaf == "weekdays" and english.startswith("List should have at least"):
            message = "Cochez au moins un jour."
        elif leaf in _BY_LEAF and "obligatoire" not in french:
            message = _BY_LEAF[leaf]
        else:
            message = french
        out.setdefault(name, message)
    return out


def _duplicate(draft: Draft) -> str:
    seen: set[str] = set()
    for i, row in enumerate(draft.rows["volunteers"]):
        if row["practitioner_id"] in seen:
            return f"volunteers.{i}.practitioner_id"
        seen.add(row["practitioner_id"])
    return "_form"


def check(draft: Draft) -> tuple[PlanDocument | None, dict[str, str]]:
    """The document the draft makes, or its errors by field name (in French)."""
    try:
        return PlanDocument.model_validate(document_data(draft)), {}
    except ValidationError as exc:
        french = validation_errors(exc)
        raw = {
            ".".join(str(p) for p in e["loc"]) or "_form": (
                str(e.get("msg", "")).removeprefix("Value error, "),
                french.get(".".join(str(p) for p in e["loc"]) or "_form", ""),
            )
            for e in exc.errors()
        }
    errors = _french(raw)
    if "_form" in errors and _duplicate(draft) != "_form":  # a volunteer listed twice
        del errors["_form"]
        errors[_duplicate(draft)] = "Ce médecin figure déjà plus haut dans la liste."
    return None, errors


def refused(error: AppError) -> dict[str, str]:
    """The service's 422 (a volunteer not of the territory, an unknown commune) by field."""
    french = service_errors(error)
    raw = {
        ".".join(str(p) for p in item.get("loc", [])) or "_form": (
            str(item.get("msg", "")),
            french.get(".".join(str(p) for p in item.get("loc", [])) or "_form", ""),
        )
        for item in error.errors or []
    }
    return _french(raw) or {"_form": error.detail}


def label(name: str) -> str:
    """An error's field as the summary names it: « Contact 2 — Téléphone »."""
    parts = name.split(".")
    if parts[0] in SECTIONS and len(parts) >= 3:
        text = f"{SECTION_NAMES[parts[0]]} {int(parts[1]) + 1}"
        if len(parts) >= 5 and parts[2] == "pledges":
            text += f", engagement {int(parts[3]) + 1}"
        return f"{text} — {FIELD_NAMES.get(parts[-1], parts[-1])}"
    return FIELD_NAMES.get(parts[-1], "")
