"""Reading an Assurance Maladie list of patients without a médecin traitant: a CSV file with a
header, `;`, `,` or tab separated, in UTF-8 (with or without a byte-order mark) or in
Windows-1252 / Latin-1 as CPAM exports often are. Its columns are mapped to the request's
fields (guessed from the usual headers, or given); each line becomes a patient or a list of
errors (line number, field, French message). Nothing here touches the database."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from pydantic import ValidationError

from app.bounds import MT_IMPORT_MAX_BYTES, MT_IMPORT_MAX_COLUMNS, MT_IMPORT_MAX_LINES
from app.errors import ValidationFailed
from app.patient_data import PatientIn

# The request's fields a column may fill, in the order the mapping form shows them.
FIELDS = (
    "family_name",
    "given_name",
    "birth_date",
    "phone",
    "ins",
    "commune_insee",
    "postal_code",
    "ald",
    "precarity",
)
REQUIRED = ("family_name", "given_name", "birth_date", "phone")
FIELD_LABELS = {
    "family_name": "Nom",
    "given_name": "Prénom",
    "birth_date": "Date de naissance",
    "phone": "Téléphone",
    "ins": "NIR / INS",
    "commune_insee": "Commune (code INSEE)",
    "postal_code": "Code postal",
    "ald": "ALD",
    "precarity": "Précarité (C2S)",
}
# Headers seen in CPAM exports and spreadsheets, once normalised (`_normalise`).
_KNOWN_HEADERS = {
    "family_name": ("nom", "nom_naissance", "nom_de_naissance", "nom_usage", "nom_d_usage",
                    "nom_patient", "patient_nom", "nom_de_famille", "nom_beneficiaire"),
    "given_name": ("prenom", "prenom_patient", "patient_prenom", "premier_prenom",
                   "prenom_beneficiaire"),
    "birth_date": ("date_naissance", "date_de_naissance", "ddn", "dt_naiss", "naissance",
                   "date_naiss", "ne_le"),
    "phone": ("telephone", "tel", "num_tel", "numero_telephone", "portable", "mobile",
              "telephone_portable", "tel_portable", "n_telephone", "n_tel", "no_telephone"),
    "ins": ("nir", "ins", "matricule_ins", "num_secu", "numero_securite_sociale", "nir_cle",
            "matricule"),
    "commune_insee": ("code_insee", "insee", "commune_insee", "code_commune", "insee_commune"),
    "postal_code": ("code_postal", "cp", "codepostal"),
    "ald": ("ald", "exo_ald", "top_ald", "exoneration_ald", "en_ald"),
    "precarity": ("c2s", "css", "cmu", "cmuc", "cmu_c", "precarite"),
}  # fmt: skip
_YES = {"1", "o", "oui", "y", "yes", "true", "vrai", "x"}
_NO = {"", "0", "n", "non", "no", "false", "faux"}
_DATE_FR = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_DATE_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class UnreadableFile(ValidationFailed):
    """The file as a whole cannot be imported (encoding, size, header, mapping): a 422, with
    the reason in French for the page."""

    def __init__(self, loc: list[str | int], msg: str, french: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}", errors=[{"loc": loc, "msg": msg}])
        self.french = french


@dataclass
class LineError:
    line: int
    field: str
    message: str


@dataclass
class ParsedLine:
    """One data line: `line` counts from 1 at the header, as a spreadsheet shows it."""

    line: int
    patient: PatientIn | None
    postal_code: str | None = None
    ald: bool = False
    precarity: bool = False
    errors: list[LineError] = field(default_factory=list)
    # What was read but left out (the line is imported all the same).
    notes: list[str] = field(default_factory=list)


@dataclass
class CpamFile:
    encoding: str
    delimiter: str
    columns: list[str]
    rows: list[tuple[int, list[str]]]  # (line number, cells)


def _normalise(header: str) -> str:
    plain = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding found: UTF-8 (a BOM or valid UTF-8), else Windows-1252,
    else Latin-1 (which reads any byte)."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                ["body", "file"], "starts with a UTF-8 byte-order mark but is not UTF-8",
                "Le fichier commence comme un fichier UTF-8 mais n'en est pas un.",
            ) from exc  # fmt: skip
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def read(data: bytes) -> CpamFile:
    """The file's columns and data lines, within the bounds (bytes, lines, columns)."""
    if len(data) > MT_IMPORT_MAX_BYTES:
        raise UnreadableFile(
            ["body", "file"], f"exceeds {MT_IMPORT_MAX_BYTES} bytes",
            f"Le fichier dépasse {MT_IMPORT_MAX_BYTES // 1000} ko : découpez-le en plusieurs.",
        )  # fmt: skip
    text, encoding = decode(data)
    if "\x00" in text:
        raise UnreadableFile(
            ["body", "file"], "contains NUL characters (not a CSV file?)",
            "Le fichier contient des caractères nuls : ce n'est pas un fichier CSV.",
        )  # fmt: skip
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    counts = {d: first.count(d) for d in (";", ",", "\t")}
    delimiter = max(counts, key=lambda d: counts[d])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if len(rows) >= MT_IMPORT_MAX_LINES:
                raise UnreadableFile(
                    ["body", "file"], f"has more than {MT_IMPORT_MAX_LINES} lines",
                    f"Le fichier compte plus de {MT_IMPORT_MAX_LINES} lignes : découpez-le.",
                )  # fmt: skip
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise UnreadableFile(
            ["body", "file"], f"is not valid CSV near line {reader.line_num}",
            f"Le fichier n'est pas un CSV valide (vers la ligne {reader.line_num}).",
        ) from exc  # fmt: skip
    if header is None or counts[delimiter] == 0:
        raise UnreadableFile(
            ["body", "file"], "needs a header line with columns separated by ';' or ','",
            "Le fichier doit commencer par une ligne d'en-tête, colonnes séparées par « ; » "
            "ou « , ».",
        )  # fmt: skip
    if len(header) > MT_IMPORT_MAX_COLUMNS:
        raise UnreadableFile(
            ["body", "file"], f"has more than {MT_IMPORT_MAX_COLUMNS} columns",
            f"Le fichier compte plus de {MT_IMPORT_MAX_COLUMNS} colonnes.",
        )  # fmt: skip
    return CpamFile(encoding, delimiter, header, rows)


def guess_mapping(columns: list[str]) -> dict[str, str]:
    """Each field whose usual header the file has: field → column (as written)."""
    by_name = {_normalise(c): c for c in reversed(columns)}
    mapping: dict[str, str] = {}
    for name, known in _KNOWN_HEADERS.items():
        column = next((by_name[k] for k in known if k in by_name), None)
        if column is not None and column not in mapping.values():
            mapping[name] = column
    return mapping


def check_mapping(columns: list[str], mapping: Mapping[str, str]) -> dict[str, int]:
    """The mapping as field → column index; 422 naming the field for an unknown field or
    column, a column mapped twice, or a required field left out."""
    indexes: dict[str, int] = {}
    by_name = {c.strip().casefold(): i for i, c in reversed(list(enumerate(columns)))}
    used: dict[int, str] = {}
    for name, column in mapping.items():
        if name not in FIELDS:
            raise UnreadableFile(["mapping", name], "unknown field",
                                 f"Champ inconnu : {name}.")  # fmt: skip
        if not column:
            continue
        index = by_name.get(column.strip().casefold())
        if index is None:
            raise UnreadableFile(
                ["mapping", name], f"no column named {column!r} in the file",
                f"{FIELD_LABELS[name]} : le fichier n'a pas de colonne « {column} ».",
            )  # fmt: skip
        if index in used:
            raise UnreadableFile(
                ["mapping", name], f"column {column!r} is already mapped to {used[index]}",
                f"{FIELD_LABELS[name]} : la colonne « {column} » sert déjà pour "
                f"« {FIELD_LABELS[used[index]]} ».",
            )  # fmt: skip
        used[index] = name
        indexes[name] = index
    for name in REQUIRED:
        if name not in indexes:
            raise UnreadableFile(
                ["mapping", name], "required: choose the column that holds it",
                f"{FIELD_LABELS[name]} : choisissez la colonne qui le contient.",
            )  # fmt: skip
    return indexes


def _birth_date(value: str) -> date | str:
    """A date written dd/mm/yyyy (or with - or .) or yyyy-mm-dd; a French message if not."""
    value = value.strip()
    if m := _DATE_FR.fullmatch(value):
        day, month, year = int(m[1]), int(m[2]), int(m[3])
    elif m := _DATE_ISO.fullmatch(value):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    else:
        return "Date de naissance illisible : jj/mm/aaaa ou aaaa-mm-jj."
    try:
        return date(year, month, day)
    except ValueError:
        return "Cette date de naissance n'existe pas."


def _flag(value: str) -> bool | None:
    v = value.strip().casefold()
    return True if v in _YES else False if v in _NO else None


_PATIENT_MESSAGES = {
    "family_name": "Nom manquant ou trop long (200 caractères au plus).",
    "given_name": "Prénom manquant ou trop long (200 caractères au plus).",
    "birth_date": "Date de naissance impossible (ni future, ni avant 1900).",
    "phone": "Numéro de téléphone français invalide.",
    "ins": "NIR / INS invalide : 15 caractères, clé de contrôle comprise.",
    "commune_insee": "Code INSEE invalide : 5 caractères, ex. 15014.",
}


def parse_line(
    line: int,
    cells: list[str],
    indexes: Mapping[str, int],
    postal_communes: Mapping[str, str],
) -> ParsedLine:
    """One data line as a patient and their flags, or its errors (all of them, by field).
    `postal_communes`: the postal codes that name one commune of the territory."""

    def cell(name: str) -> str:
        i = indexes.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    errors: list[LineError] = []
    notes: list[str] = []
    data: dict[str, object] = {}
    for name in ("family_name", "given_name"):
        if cell(name):
            data[name] = cell(name)
        else:
            errors.append(LineError(line, name, f"{FIELD_LABELS[name]} manquant."))
    born = _birth_date(cell("birth_date")) if cell("birth_date") else "Date de naissance manquante."
    if isinstance(born, str):
        errors.append(LineError(line, "birth_date", born))
    else:
        data["birth_date"] = born
    if cell("phone"):
        data["phone"] = cell("phone")
    else:
        errors.append(LineError(line, "phone", "Téléphone manquant : il faut pouvoir joindre "
                                               "le patient."))  # fmt: skip
    if cell("ins"):
        data["ins"] = re.sub(r"[\s.]", "", cell("ins")).upper()
    postal = cell("postal_code") or None
    if cell("commune_insee"):
        data["commune_insee"] = cell("commune_insee").upper()
    elif postal is not None:
        if not re.fullmatch(r"\d{5}", postal):
            errors.append(LineError(line, "postal_code", "Code postal invalide : 5 chiffres."))
        elif postal in postal_communes:
            data["commune_insee"] = postal_communes[postal]
        else:
            notes.append(f"Le code postal {postal} ne désigne pas une seule commune du "
                         "territoire : commune non renseignée.")  # fmt: skip
    flags = {}
    for name in ("ald", "precarity"):
        flag = _flag(cell(name))
        if flag is None:
            errors.append(LineError(line, name, f"{FIELD_LABELS[name]} : oui/non, 1/0 ou vide."))
        flags[name] = bool(flag)
    patient = None
    try:
        patient = PatientIn.model_validate(data)
    except ValidationError as exc:
        seen = {e.field for e in errors}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "_line"
            if name not in seen:
                seen.add(name)
                errors.append(LineError(line, name, _PATIENT_MESSAGES.get(name, "Invalide.")))
    return ParsedLine(
        line, None if errors else patient, postal, flags["ald"], flags["precarity"], errors,
        notes,
    )  # fmt: skip
