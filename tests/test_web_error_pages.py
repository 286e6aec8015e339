"""Errors a person meets in a browser are French pages with the menu; API clients keep
problem+json at every path."""

from __future__ import annotations

import httpx

from tests.conftest import Territory
from tests.test_web_dashboard import sign_in

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_an_unknown_address_in_a_browser_is_a_french_page(client: httpx.AsyncClient):
    r = await client.get("/nulle-part", headers=BROWSER)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Page introuvable" in r.text and 'lang="fr"' in r.text


async def test_a_method_not_allowed_in_a_browser_is_a_french_page(client: httpx.AsyncClient):
    r = await client.post("/static/creneau.css", headers=BROWSER)
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("text/html")
    assert "Action impossible" in r.text


async def test_an_unknown_address_for_an_api_client_is_problem_json(client: httpx.AsyncClient):
    r = await client.get("/nulle-part")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_the_api_answers_problem_json_even_to_a_browser(client: httpx.AsyncClient):
    r = await client.get("/v1/nulle-part", headers=BROWSER)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_page_keeps_the_signed_in_menu(
    client: httpx.AsyncClient, territory: Territory
):
    await sign_in(client, territory.coordinator, next_="/coordination")
    r = await client.get("/nulle-part", headers=BROWSER)
    assert r.status_code == 404
    assert "File médecin traitant" in r.text  # the coordinator's menu


async def test_a_refused_page_keeps_the_signed_in_menu(
    client: httpx.AsyncClient, territory: Territory
):
    await sign_in(client, territory.coordinator, next_="/coordination")
    r = await client.get("/regulation", headers=BROWSER)  # a regulator's page
    assert r.status_code == 403 and "Accès refusé" in r.text
    assert "File médecin traitant" in r.text
