"""The coordinator's import page over HTTP: upload, columns guessed, preview of each line
and errors per line without writing, columns changed, then the import (once per form)."""

from __future__ import annotations

import re
import uuid
from html import unescape

from sqlalchemy import func, select

from app.medecin_traitant.models import MtRequest
from tests.test_mt_cpam_import import CP1252_LIST
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of, field_value

PAGE = "/coordination/import-cpam"


async def requests_in(session, territory) -> int:
    return await session.scalar(
        select(func.count()).where(MtRequest.territory_id == uuid.UUID(territory.id))
    )


def carried(html: str) -> dict[str, str]:
    return {name: unescape(field_value(html, name)) for name in ("contenu", "nom_fichier",
                                                                 "jeton")}  # fmt: skip


def selected(html: str, name: str) -> str:
    select_html = re.search(rf'<select id="[^"]*" name="{re.escape(name)}".*?</select>', html,
                            re.S).group(0)  # fmt: skip
    chosen = re.search(r'<option value="([^"]*)" selected>', select_html)
    return unescape(chosen.group(1)) if chosen else ""


async def upload(client, csrf, data=CP1252_LIST):
    return await client.post(
        f"{PAGE}/apercu",
        data={"csrf": csrf},
        files={"fichier": ("liste cpam.csv", data, "text/csv")},
    )


async def test_upload_guesses_the_columns_and_previews_without_writing(client, territory, session):
    await sign_in(client, territory.coordinator, next_=PAGE)
    page = await client.get(PAGE)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    r = await upload(client, csrf_of(page.text))
    assert r.status_code == 200, r.text
    text = unescape(r.text)
    assert (
        "Fichier liste cpam.csv : 6 lignes, encodage Windows-1252, séparateur point-virgule."
        in (re.sub(r"<[^>]+>", "", text))
    )
    assert selected(r.text, "map.family_name") == "NOM"
    assert selected(r.text, "map.postal_code") == "CODE_POSTAL"
    assert "Aperçu : ce que ferait l'import" in text
    assert "DUPONT Hélène" in text and "Fusionnée avec la demande existante" in text
    assert "Cette date de naissance n'existe pas." in text
    assert await requests_in(session, territory) == 0


async def test_changing_the_columns_updates_the_preview_then_the_import_runs_once(
    client, territory, session
):
    await sign_in(client, territory.coordinator, next_=PAGE)
    csrf = csrf_of((await client.get(PAGE)).text)
    first = await upload(client, csrf)
    form = {"csrf": csrf, **carried(first.text)}
    mapping = {"map.family_name": "NOM", "map.given_name": "PRENOM",
               "map.birth_date": "DATE_NAISSANCE", "map.phone": "TELEPHONE"}  # fmt: skip
    # Without the ALD column, line 7's unreadable flag is no longer an error.
    again = await client.post(f"{PAGE}/apercu", data={**form, **mapping})
    assert again.status_code == 200, again.text
    assert selected(again.text, "map.ald") == ""
    assert "ALD : oui/non" not in unescape(again.text)
    done = await client.post(PAGE, data={**form, **mapping})
    assert done.status_code == 200, done.text
    assert "Import terminé" in done.text
    assert await requests_in(session, territory) == 2
    # The same form sent again (back button, double click) imports nothing more.
    replay = await client.post(PAGE, data={**form, **mapping})
    assert replay.status_code == 200 and "Import terminé" in replay.text
    assert await requests_in(session, territory) == 2


async def test_a_required_column_left_out_is_named_next_to_its_field(client, territory):
    await sign_in(client, territory.coordinator, next_=PAGE)
    csrf = csrf_of((await client.get(PAGE)).text)
    first = await upload(client, csrf)
    r = await client.post(
        f"{PAGE}/apercu",
        data={"csrf": csrf, **carried(first.text), "map.family_name": "NOM",
              "map.given_name": "PRENOM", "map.birth_date": "DATE_NAISSANCE"},
    )  # fmt: skip
    assert r.status_code == 422
    assert 'id="map-phone-error"' in r.text
    assert "Téléphone : choisissez la colonne qui le contient." in unescape(r.text)
    assert re.search(r'name="map.phone"[^>]*aria-invalid="true"', r.text)


async def test_no_file_or_an_unreadable_one_is_said_next_to_the_file_field(client, territory):
    await sign_in(client, territory.coordinator, next_=PAGE)
    csrf = csrf_of((await client.get(PAGE)).text)
    r = await client.post(f"{PAGE}/apercu", data={"csrf": csrf}, files={"x": ("", b"", "")})
    assert r.status_code == 422 and "Choisissez le fichier CSV à importer." in unescape(r.text)
    r = await upload(client, csrf, b"no header at all\n")
    assert r.status_code == 422 and 'id="fichier-error"' in r.text


async def test_the_form_needs_its_csrf_token(client, territory):
    await sign_in(client, territory.coordinator, next_=PAGE)
    r = await upload(client, "forged")
    assert r.status_code == 403


async def test_other_roles_cannot_open_the_import(client, territory):
    await sign_in(client, territory.regulator, next_=PAGE)
    assert (await client.get(PAGE)).status_code == 403
