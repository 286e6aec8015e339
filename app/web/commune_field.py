"""Commune fields of the forms (the public médecin traitant registration, the coordinator's,
the crisis declaration, the booking forms' patient commune): people type a name, a postal code
or an INSEE code, one commune or several separated by commas; the API's models take INSEE
codes. `read_communes` resolves the typed values through the referential before the models
read the form; an unknown value is an error on its field, a value of several communes too,
with the candidates to choose from (`ListChoice`: radio buttons named `<field>.choix.<n>`, n
the value's place in the field, app/web/templates/_macros.html: commune_list_choices). A
commune chosen that way is shown back as "Name (INSEE code)", which reads as that commune."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import communes
from app.directory.practice_service import communes as known_communes
from app.security import Caller
from app.web.auth import Form

UNKNOWN = "Commune introuvable : indiquez son nom ou son code postal (ex. Aurillac ou 15000)."
SEVERAL = "Plusieurs communes correspondent : choisissez la bonne dans la liste."


CHOICE = ".choix"


def chosen_label(commune: communes.Commune) -> str:
    """A commune chosen among several, as shown back in its field: "Saint-Georges (15188)"
    (the INSEE code, one commune's, where a postal code may be several's)."""
    return f"{commune.name} ({commune.insee})"


@dataclass(frozen=True)
class ListChoice:
    """A value typed in a commune field that several communes match: the text typed, its place
    in the field (`index`: 0 for a field of one commune, the n-th of a list), the candidates
    (INSEE code, name, postal codes), the likeliest first."""

    field: str
    index: int
    typed: str
    candidates: tuple[communes.Commune, ...]

    @property
    def name(self) -> str:
        """The name of its radio buttons: `<field>.choix.<n>`."""
        return f"{self.field}{CHOICE}.{self.index}"


@dataclass
class Read:
    """The form with the commune fields as INSEE codes, the errors per field, the choices
    each ambiguous field asks for, and the fields as to show back (`shown`: a commune chosen
    in a list as "Name (INSEE code)")."""

    form: Form
    errors: dict[str, str] = field(default_factory=dict)
    choices: dict[str, list[ListChoice]] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)

    def values(self, typed: Form) -> dict[str, str]:
        """The form as typed (`typed`), to fill it again, with the communes chosen shown."""
        return {**typed.values(), **self.shown}


async def caller_communes(session: AsyncSession, caller: Caller) -> list[str]:
    """The communes of the caller's practices: offered first when a value is ambiguous."""
    return [c.insee for c in await known_communes(session, caller)]


def split_list(text: str) -> list[str]:
    """Several communes in one field: separated by commas or semicolons (names have spaces)."""
    return [part.strip() for part in re.split(r"[,;\n]+", text) if part.strip()]


@dataclass
class _Field:
    """One field's values read: the INSEE codes, the values as to show back, what is wrong."""

    codes: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    asks: list[ListChoice] = field(default_factory=list)
    picked: bool = False  # a commune chosen from the list


async def _read_field(
    session: AsyncSession, form: Form, name: str, values: list[str], prefer: Collection[str]
) -> _Field:
    out = _Field()
    for index, typed in enumerate(values):
        found = await communes.resolve(session, typed, prefer)
        chosen = form.get(f"{name}{CHOICE}.{index}")
        picked = found.one or next((c for c in found.communes if c.insee == chosen), None)
        if picked is not None:
            out.codes.append(picked.insee)
            out.picked |= found.one is None
            out.shown.append(typed if found.one else chosen_label(picked))
            continue
        out.shown.append(typed)
        if found.communes:
            out.asks.append(ListChoice(name, index, typed, tuple(found.communes)))
        else:
            out.unknown.append(typed)
    return out


MANY = "plusieurs communes"


def _list_error(read: _Field) -> str:
    problems = [f"« {ask.typed} » désigne {MANY} (choisissez dans la liste)" for ask in read.asks]
    problems += [f"« {typed} » est introuvable" for typed in read.unknown]
    return "; ".join(problems) + "."


async def read_communes(
    session: AsyncSession,
    form: Form,
    single: Collection[str] = (),
    *,
    lists: Collection[str] = (),
    prefer: Collection[str] = (),
) -> Read:
    """Resolve the `single` fields (one commune each) and the `lists` fields (several,
    comma-separated: given back comma-separated INSEE codes). Blank fields stay blank; a
    field in error keeps its text. The n-th value of a field that several communes match is
    the one its radio `<field>.choix.<n>` names, when that is one of them.
    `prefer`: INSEE codes whose candidates come first (the caller's own communes)."""
    replaced: dict[str, str] = {}
    read = Read(form)
    for name in (*single, *lists):
        text = form.get(name)
        values = [text] if name in single else split_list(text)
        if not text or not values:
            continue
        found = await _read_field(session, form, name, values, prefer)
        if found.picked:
            read.shown[name] = ", ".join(found.shown)
        if found.asks:
            read.choices[name] = found.asks
        if name in lists and (found.asks or found.unknown):
            read.errors[name] = _list_error(found)
        elif found.asks:
            read.errors[name] = SEVERAL
        elif found.unknown:
            read.errors[name] = UNKNOWN
        else:
            replaced[name] = ", ".join(found.codes)
    if replaced:
        read.form = Form([(key, replaced.get(key, value)) for key, value in form.pairs])
    return read


def with_model_errors(read: Read, errors: dict[str, str]) -> dict[str, str]:
    """The model's errors (`errors`) and the referential's, one message per field: a commune
    field the referential found wrong reads only its word, not the model's on the text as
    typed (on the field or on its items, `<field>.<n>`)."""
    ours = read.errors
    kept = {
        name: message
        for name, message in errors.items()
        if not any(name == field or name.startswith(field + ".") for field in ours)
    }
    return {**kept, **ours}


def _postal_mismatch(commune: communes.Commune, postal_code: str) -> str:
    codes = " ou ".join(commune.postal_codes)
    return f"Le code postal {postal_code} n'est pas celui de {commune.name} ({codes})."


async def read_town(session: AsyncSession, read: Read, postal: str, town: str, insee: str) -> Read:
    """An address's postal code, town and commune (resolved by `read_communes`) held together:
    a postal code that is not the commune's is an error on the postal code's field; given the
    two, a town left blank is the commune's name, filled here (`read.form` and its values)."""
    code, insee_code = read.form.get(postal), read.form.get(insee)
    if not re.fullmatch(r"[0-9]{5}", code) or not insee_code or insee in read.errors:
        return read
    commune = await communes.get(session, insee_code)
    if commune is None:
        return read
    if commune.postal_codes and code not in commune.postal_codes:
        read.errors[postal] = _postal_mismatch(commune, code)
    elif not read.form.get(town):
        pairs = [(k, v) for k, v in read.form.pairs if k != town]
        read.form = Form([*pairs, (town, commune.name)])
    return read
