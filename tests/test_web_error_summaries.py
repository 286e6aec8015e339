"""A form's error summary names each field in error and links to an input the person can
see: no link to a missing id or into a closed section, no anonymous "Ce champ est
obligatoire."."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.conftest import Territory
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of, rule_form


def summary_links(html: str) -> list[tuple[str, str]]:
    box = re.search(r'<div class="alert" role="alert">(.*?)</div>', html, flags=re.S)
    assert box, "no error summary"
    return [
        (target, unescape(re.sub(r"<[^>]+>", "", text)))
        for target, text in re.findall(r'<a href="#([^"]+)">(.*?)</a>', box.group(1), flags=re.S)
    ]


def assert_summary_points_at_visible_fields(html: str) -> None:
    closed_sections = [
        m.group(0) for m in re.finditer(r"<details(?![^>]*\bopen\b)[^>]*>.*?</details>", html, re.S)
    ]
    links = summary_links(html)
    assert links
    texts = [text for _, text in links]
    assert len(texts) == len(set(texts)), f"the same message twice: {texts}"
    for target, text in links:
        assert f'id="{target}"' in html, f"#{target} is not on the page ({text})"
        assert not any(f'id="{target}"' in s for s in closed_sections), f"#{target} is hidden"
        assert " : " in text, f"{text!r} does not name its field"


async def test_a_rule_without_a_day_points_at_the_days(
    client: httpx.AsyncClient, territory: Territory
):
    await sign_in(client, territory.practice, next_="/cabinet")
    url = f"/cabinet/medecins/{territory.practitioner_id}/regles/nouvelle"
    csrf = csrf_of((await client.get(url)).text)
    form = {**rule_form(csrf, "apercu"), "jours": []}
    r = await client.post(url, data=form)
    assert r.status_code == 422
    assert_summary_points_at_visible_fields(r.text)
    assert [target for target, _ in summary_links(r.text)] == ["jours"]


async def test_an_empty_mt_registration_names_every_missing_field(
    client: httpx.AsyncClient, territory: Territory
):
    await sign_in(client, territory.coordinator, next_="/coordination")
    csrf = csrf_of((await client.get("/coordination/mt/nouvelle")).text)
    r = await client.post("/coordination/mt/nouvelle", data={"csrf": csrf})
    assert r.status_code == 422
    assert_summary_points_at_visible_fields(r.text)
    targets = {target for target, _ in summary_links(r.text)}
    assert {"patient-family_name", "patient-given_name", "patient-birth_date"} <= targets
    assert 'id="patient-family_name" name="patient.family_name"' in r.text
    assert re.search(r'id="patient-family_name"[^>]*aria-invalid="true"', r.text)
