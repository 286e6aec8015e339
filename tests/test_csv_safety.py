"""CSV exports cannot carry a formula a spreadsheet would run (CSV injection)."""

import csv
import io

from app.csv_safety import safe_cell
from tests.test_mt_requests import patient, register


def test_text_starting_like_a_formula_is_written_as_text():
    for text in ("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(text) == "'" + text


def test_numbers_and_ordinary_text_are_left_alone():
    for value in ("Lemoine", "+33612345678", "-3", "12.5", 7, -2.5, "", None, "a=b"):
        assert safe_cell(value) == value


async def test_mt_csv_export_neutralises_formulas_in_patient_names(client, territory):
    names = {"family_name": '=HYPERLINK("https://evil.example","x")', "given_name": "@SUM(A1)"}
    r = await register(client, territory, patient=patient(**names))
    assert r.status_code == 201, r.text
    r = await client.get("/v1/mt-requests", headers={**territory.coordinator, "Accept": "text/csv"})
    [header, row] = list(csv.reader(io.StringIO(r.text)))
    cells = dict(zip(header, row, strict=True))
    assert cells["family_name"] == "'" + names["family_name"]
    assert cells["given_name"] == "'@SUM(A1)"
    assert cells["phone"].startswith("+33")  # a plain number, left as it is
    assert not any(c.startswith(("=", "@", "-", "\t", "\r")) for c in row)


def test_dict_writer_neutralises_every_value():
    from app.csv_safety import SafeDictWriter

    out = io.StringIO()
    writer = SafeDictWriter(out, fieldnames=["a", "b"])
    writer.writerows([{"a": "=1+1", "b": -4}])
    assert out.getvalue().strip() == "'=1+1,-4"
