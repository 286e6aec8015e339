"""Commune fields of the forms (the public médecin traitant registration, the coordinator's,
the booking forms' patient commune): people type a name, a postal code or an INSEE code; the
API's models take INSEE codes. `read_communes` resolves the typed values through the
referential before the models read the form; an unknown value is an error on its field, a
value of several communes too, with the candidates to choose from (radio buttons named
`<field>.choix`, app/web/templates/_macros.html: commune_choices)."""

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


def several(candidates: list[communes.Commune]) -> str:
    """For a field shown without the list: the candidates, as they may be typed back."""
    names = " ; ".join(c.label for c in candidates[:4])
    more = " ; …" if len(candidates) > 4 else ""
    return f"Plusieurs communes correspondent ({names}{more}) : tapez-la comme écrit ici."


CHOICE = ".choix"


@dataclass
class Read:
    """The form with the commune fields as INSEE codes, the errors per field, and the
    candidates of each ambiguous field."""

    form: Form
    errors: dict[str, str] = field(default_factory=dict)
    choices: dict[str, list[communes.Commune]] = field(default_factory=dict)


async def caller_communes(session: AsyncSession, caller: Caller) -> list[str]:
    """The communes of the caller's practices: offered first when a value is ambiguous."""
    return [c.insee for c in await known_communes(session, caller)]


def split_list(text: str) -> list[str]:
    """Several communes in one field: separated by commas or semicolons (names have spaces)."""
    return [part.strip() for part in re.split(r"[,;\n]+", text) if part.strip()]


async def read_communes(
    session: AsyncSession,
    form: Form,
    single: Collection[str] = (),
    *,
    lists: Collection[str] = (),
    prefer: Collection[str] = (),
    with_list: bool = True,
) -> Read:
    """Resolve the `single` fields (one commune each) and the `lists` fields (several,
    comma-separated: given back comma-separated INSEE codes). Blank fields stay blank.
    `prefer`: INSEE codes whose candidates come first (the caller's own communes).
    `with_list`: the page shows the candidates of an ambiguous field to choose from."""
    replaced: dict[str, str] = {}
    read = Read(form)
    for name in single:
        typed = form.get(name)
        if not typed:
            continue
        found = await communes.resolve(session, typed, prefer)
        chosen = form.get(name + CHOICE)
        picked = found.one or next((c for c in found.communes if c.insee == chosen), None)
        if picked is not None:
            replaced[name] = picked.insee
        elif found.communes:
            read.errors[name] = SEVERAL if with_list else several(found.communes)
            read.choices[name] = found.communes
        else:
            read.errors[name] = UNKNOWN
    for name in lists:
        codes, problems = [], []
        for typed in split_list(form.get(name)):
            found = await communes.resolve(session, typed, prefer)
            if found.one is not None:
                codes.append(found.one.insee)
            elif found.communes:
                example = found.communes[0].label
                problems.append(f"« {typed} » désigne plusieurs communes (précisez : {example})")
            else:
                problems.append(f"« {typed} » est introuvable")
        if problems:
            read.errors[name] = "; ".join(problems) + "."
        elif codes:
            replaced[name] = ", ".join(codes)
    if replaced:
        read.form = Form([(key, replaced.get(key, value)) for key, value in form.pairs])
    return read


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
