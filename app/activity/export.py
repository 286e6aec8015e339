"""The indicators as CSV: for Excel in French by default (`;` separator, decimal comma, French
column headers, UTF-8 with a byte-order mark), or machine-readable (`raw`: `,`, decimal point,
the JSON's dotted field names, no BOM). Both carry the same figures as the JSON."""

from __future__ import annotations

import io
from datetime import date
from typing import Any, Literal

from app import csv_safety

Dialect = Literal["excel", "raw"]

LABELS = {
    "period_start": "Début de période",
    "period_end": "Fin de période (exclue)",
    "snp.slots_offered": "SNP créneaux proposés",
    "snp.slots_offered_sas": "SNP créneaux mis à disposition du SAS",
    "snp.slots_offered_cpts": "SNP créneaux internes CPTS",
    "snp.hours_offered": "SNP heures proposées",
    "snp.practitioners_offering": "SNP médecins proposant des créneaux",
    "snp.hours_per_gp_per_week": "SNP heures par médecin et par semaine",
    "snp.slots_taken": "SNP créneaux pris",
    "snp.fill_rate": "SNP taux de remplissage",
    "snp.slots_booked_by_sas": "SNP réservations par le SAS",
    "snp.booked_within_24h": "SNP rendez-vous dans les 24 h",
    "snp.booked_within_48h": "SNP rendez-vous dans les 48 h",
    "snp.overbooked": "SNP patients surnuméraires",
    "snp.cancellations": "SNP annulations",
    "snp.honored": "SNP rendez-vous honorés",
    "snp.no_show": "SNP rendez-vous non honorés",
    "snp.no_show_rate": "SNP taux de rendez-vous non honorés",
    "mt.registered": "MT patients inscrits",
    "mt.attached": "MT patients rattachés",
    "mt.fragile_share_of_attached": "MT part de patients fragiles parmi les rattachés",
    "mt.waiting_days_median": "MT délai médian des rattachés (jours)",
    "mt.waiting_days_p90": "MT délai 90e centile des rattachés (jours)",
    "mt.waiting_at_end": "MT patients en attente en fin de période",
    "mt.still_waiting_days_median": "MT attente médiane des patients en attente (jours)",
    "mt.still_waiting_days_p90": "MT attente 90e centile des patients en attente (jours)",
    "mt.still_waiting_days_oldest": "MT plus longue attente en cours (jours)",
    "mt.remaining_capacity_at_end": "MT places restantes chez les médecins",
    "mt.proposals": "MT médecins proposés",
    "mt.proposals_lapsed": "MT propositions expirées sans réponse",
    "mt.declined": "MT propositions refusées",
    "unmet.sas_requests": "SAS demandes (placées + non satisfaites)",
    "unmet.placed": "SAS demandes placées",
    "unmet.unmet": "SAS demandes non satisfaites (déclarées)",
    "unmet.share_placed": "SAS part des demandes placées",
    "unmet.placed_within_48h": "SAS demandes placées avec rendez-vous dans les 48 h",
    "unmet.share_placed_within_48h": "SAS part des demandes placées dans les 48 h",
    "unmet.empty_searches": "SAS recherches sans résultat (comptées à part)",
    "unmet.calls_sent": "SAS appels à créneaux envoyés",
    "unmet.slots_from_calls": "SAS créneaux publiés dans les 24 h d'un appel",
    "crisis.crises_declared": "Crise situations déclarées",
    "crisis.volunteers_called": "Crise médecins volontaires appelés",
    "crisis.pledges_honoured": "Crise appels suivis d'une ouverture de créneaux",
    "crisis.share_honoured": "Crise part des appels suivis d'une ouverture",
    "crisis.opened_within_2h": "Crise ouvertures dans les 2 h de la déclaration",
    "crisis.share_opened_within_2h": "Crise part des appels ouverts dans les 2 h",
    "crisis.opened_within_24h": "Crise ouvertures dans les 24 h de la déclaration",
    "crisis.share_opened_within_24h": "Crise part des appels ouverts dans les 24 h",
    "crisis.slots_opened": "Crise créneaux ouverts",
    "crisis.slots_booked": "Crise créneaux réservés",
}
SECTIONS = {"unmet": "SAS", "crisis": "Crise"}
# Who declined a proposal and why (app.activity.mt_figures.DECLINE_SIDES, DECLINE_REASONS).
DECLINE_SIDES = {
    "patient": "par le patient",
    "practitioner": "par le médecin",
    "unspecified": "sans préciser qui",
}
DECLINE_REASONS = {
    "distance": "trop loin ou hors secteur",
    "schedule": "horaires ou délais",
    "preference": "préfère un autre médecin",
    "capacity": "patientèle complète",
    "other": "autre motif",
    "unspecified": "motif non précisé",
}
for _side, _by in DECLINE_SIDES.items():
    LABELS[f"mt.declined_by.{_side}"] = f"MT propositions refusées {_by}"
    for _code, _why in DECLINE_REASONS.items():
        LABELS[f"mt.decline_reasons.{_side}.{_code}"] = f"MT refus {_by} : {_why}"
PARTS = {
    "modality_share": "part",
    "cabinet": "cabinet",
    "visite": "visite à domicile",
    "teleconsultation": "téléconsultation",
    "per_1000_inhabitants": "pour 1 000 habitants",
    "waiting_at_end_by_priority": "en attente par nombre de critères",
    "by_criterion": "",
    "ald": "ALD",
    "aged_70": "70 ans et plus",
    "precarity": "précarité",
    "unmet_by_reason": "non satisfaites, motif",
    "unmet_by_hour": "non satisfaites, heure",
    "unmet_by_commune": "non satisfaites, commune",
    "no_slot": "aucun créneau",
    "no_suitable_slot": "aucun créneau adapté",
    "too_far": "trop loin",
    "too_late": "trop tard",
    "modality_unavailable": "modalité indisponible",
    "patient_refused": "refus du patient",
    "other": "autre",
}


def french_header(key: str) -> str:
    """`snp.modality_share.visite` → `SNP part visite à domicile`, and so on."""
    if key in LABELS:
        return LABELS[key]
    section, *parts = key.split(".")
    if not parts:
        return key
    leaf = f"{section}.{parts[-1]}"
    if leaf in LABELS:  # e.g. mt.by_criterion.ald.registered → MT patients inscrits (ALD)
        qualifiers = [PARTS.get(p, p) for p in parts[:-1] if PARTS.get(p, p)]
        return f"{LABELS[leaf]} ({', '.join(qualifiers)})"
    words = [PARTS.get(p, p) for p in parts]
    return " ".join([SECTIONS.get(section, section.upper()), *(w for w in words if w)])


def flatten(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(f"{prefix}{key}.", value))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _french(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float):
        return repr(value).replace(".", ",")
    if isinstance(value, int | date):
        return str(value)
    return str(value)


def _raw(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float | date):
        return str(value)
    return str(value)


def to_csv(
    rows: list[dict[str, Any]],
    dialect: Dialect = "excel",
    labels: dict[str, str] | None = None,
    columns: list[str] | None = None,
) -> bytes:
    """Rows of flattened figures (`flatten`) as CSV bytes in the dialect; `labels` name the
    French headers of columns the indicators do not have, `columns` fix their order."""
    # Every row's columns, in order of first appearance (communes vary from period to period).
    columns = columns or (
        list(dict.fromkeys(c for row in rows for c in row)) or ["period_start", "period_end"]
    )
    out = io.StringIO()
    if dialect == "raw":
        writer = csv_safety.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_raw(row.get(c)) for c in columns] for row in rows)
        return out.getvalue().encode()
    writer = csv_safety.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([(labels or {}).get(c) or french_header(c) for c in columns])
    writer.writerows([_french(row.get(c)) for c in columns] for row in rows)
    return out.getvalue().encode("utf-8-sig")
