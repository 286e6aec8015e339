"""The coordinator's import of the Assurance Maladie's list (/coordination/import-cpam): upload
the CSV, map its columns and see what each of the first lines becomes and every line's
errors (a dry run of the import), then import. The file goes from one step to the next inside
the form (base64), so nothing of it is kept on the server before the import; the import is
the API's, with the form's one-time token as its Idempotency-Key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from app.api.deps import SessionDep
from app.bounds import MT_IMPORT_MAX_BYTES, MT_IMPORT_MAX_LINES
from app.directory import territory_service as directory_service
from app.errors import Forbidden, ValidationFailed
from app.idempotency import idempotent
from app.medecin_traitant import cpam_file, cpam_import, schemas
from app.security import ADMIN, COORDINATOR
from app.validators import StrictModel
from app.web.auth import UserDep, WebUser, require_role, show

router = APIRouter(prefix="/coordination/import-cpam", include_in_schema=False)
ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (avec BOM)", "cp1252": "Windows-1252",
             "latin-1": "Latin-1"}  # fmt: skip
DELIMITERS = {";": "point-virgule", ",": "virgule", "\t": "tabulation"}
OUTCOMES = {"created": "Nouvelle demande", "merged": "Fusionnée avec la demande existante",
            "rejected": "Rejetée"}  # fmt: skip
# What a file the page refuses whole says, by field of the form.
_FILE = "fichier"


class _ImportRequest(StrictModel):
    """The same fingerprint as the API's, so that a token replays the same import."""

    file_sha256: str
    territory_id: uuid.UUID | None
    mapping: dict[str, str] | None


async def _posted(request: Request, user: WebUser) -> FormData:
    """The multipart form, once its CSRF token is checked against the session."""
    form = await request.form(max_files=1, max_fields=40, max_part_size=2 * MT_IMPORT_MAX_BYTES)
    token = form.get("csrf")
    if not isinstance(token, str) or not user.session.check_csrf(token):
        raise Forbidden(
            "Missing or invalid CSRF token",
            page_message="Le jeton de sécurité du formulaire est absent ou invalide : "
            "rechargez la page et recommencez.",
        )
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _territories(session: Any, user: WebUser) -> list[tuple[str, str]]:
    """The territories to choose from, when the key serves more than one."""
    if len(user.caller.territory_ids) == 1 and not user.caller.instance_wide:
        return []
    territories, _ = await directory_service.list_territories(
        session, user.caller, cursor=None, limit=500
    )
    return [(str(t.id), t.name) for t in territories]


def _page(request: Request, user: WebUser, status: int = 200, **context: Any) -> Response:
    errors: dict[str, str] = context.pop("errors", None) or {}
    context.setdefault("values", {})
    context["column_options"] = [(c, c) for c in context.get("columns", []) if c]
    return show(request, user, "mt_import.html", status, errors=errors,
                first_error=next(iter(errors), None), FIELDS=cpam_file.FIELDS,
                LABELS=cpam_file.FIELD_LABELS, REQUIRED=cpam_file.REQUIRED,
                ENCODINGS=ENCODINGS, DELIMITERS=DELIMITERS, OUTCOMES=OUTCOMES,
                max_lines=MT_IMPORT_MAX_LINES, max_kb=MT_IMPORT_MAX_BYTES // 1000,
                **context)  # fmt: skip


@router.get("")
async def upload_page(request: Request, session: SessionDep, user: UserDep) -> Response:
    require_role(user, COORDINATOR, ADMIN)
    return _page(request, user, territories=await _territories(session, user))


async def _file_of(form: FormData) -> tuple[bytes, str] | str:
    """The file's bytes and name: uploaded, or carried from the preview; else what is wrong."""
    upload = form.get(_FILE)
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MT_IMPORT_MAX_BYTES + 1)
        return data, upload.filename
    carried = _text(form, "contenu")
    if carried:
        try:
            return base64.b64decode(carried, validate=True), _text(form, "nom_fichier")
        except (binascii.Error, ValueError):
            return "Le fichier transmis est illisible : choisissez-le de nouveau."
    return "Choisissez le fichier CSV à importer."


def _mapping_of(form: FormData) -> dict[str, str] | None:
    """The columns chosen on the preview; None on the first upload (then guessed)."""
    upload = form.get(_FILE)
    if isinstance(upload, UploadFile) and upload.filename:
        return None
    return {name: _text(form, f"map.{name}") for name in cpam_file.FIELDS}


def _territory_of(form: FormData) -> uuid.UUID | None:
    try:
        return uuid.UUID(_text(form, "territoire")) if _text(form, "territoire") else None
    except ValueError:
        return None


def _errors(exc: ValidationFailed) -> dict[str, str]:
    loc = (exc.errors or [{"loc": []}])[0].get("loc", [])
    if isinstance(exc, cpam_file.UnreadableFile):
        key = f"map.{loc[1]}" if loc and loc[0] == "mapping" else _FILE
        return {key: exc.french}
    if "territory_id" in loc:
        return {"territoire": "Choisissez le territoire de la liste."}
    if "Idempotency-Key" in loc:  # the form's token already imported another file or mapping
        return {
            "_form": "Ce formulaire a déjà servi à un autre import : vérifiez l'aperçu "
            "ci-dessous, puis importez de nouveau."
        }
    return {"_form": "Import impossible : " + exc.detail}


async def _step(request: Request, session: Any, user: WebUser, *, run: bool) -> Response:
    form = await _posted(request, user)
    territories = await _territories(session, user)
    got = await _file_of(form)
    values = {"territoire": _text(form, "territoire")}
    if isinstance(got, str):
        return _page(request, user, 422, territories=territories, values=values,
                     errors={_FILE: got})  # fmt: skip
    data, filename = got
    mapping, territory_id = _mapping_of(form), _territory_of(form)
    carried = {"contenu": base64.b64encode(data).decode(), "nom_fichier": filename,
               "jeton": _text(form, "jeton") or str(uuid.uuid4()), **values}  # fmt: skip
    try:
        columns = cpam_file.read(data).columns
    except cpam_file.UnreadableFile as exc:
        return _page(request, user, 422, territories=territories, values=values,
                     errors=_errors(exc))  # fmt: skip
    if mapping is not None:
        values.update({f"map.{k}": v for k, v in mapping.items()})

    async def report() -> schemas.MtImportOut:
        return await cpam_import.import_list(
            session, user.caller, data, territory_id=territory_id, mapping=mapping,
            dry_run=not run,
        )  # fmt: skip

    try:
        if run:
            fingerprint = _ImportRequest(
                file_sha256=hashlib.sha256(data).hexdigest(), territory_id=territory_id,
                mapping=mapping,
            )  # fmt: skip
            response = await idempotent(
                session, user.caller, carried["jeton"], "POST /v1/mt-requests/imports",
                fingerprint, report, status_code=200,
            )  # fmt: skip
            result = schemas.MtImportOut.model_validate_json(bytes(response.body))
        else:
            result = await report()
    except ValidationFailed as exc:
        await session.rollback()
        carried["jeton"] = str(uuid.uuid4())  # a new form: a new import
        return _page(request, user, 422, territories=territories, values=values,
                     carried=carried, columns=columns, errors=_errors(exc))  # fmt: skip
    values.update({f"map.{k}": v for k, v in result.mapping.items()})
    return _page(request, user, territories=territories, values=values, carried=carried,
                 columns=columns, result=result, filename=filename)  # fmt: skip


@router.post("/apercu")
async def preview(request: Request, session: SessionDep, user: UserDep) -> Response:
    """Read the file (uploaded, or carried by the preview's form with the columns chosen)
    and show what an import would do, without writing anything."""
    require_role(user, COORDINATOR, ADMIN)
    return await _step(request, session, user, run=False)


@router.post("")
async def run_import(request: Request, session: SessionDep, user: UserDep) -> Response:
    """Import the file previewed, with the columns chosen (once per form token)."""
    require_role(user, COORDINATOR, ADMIN)
    return await _step(request, session, user, run=True)
