async def test_live(client):
    r = await client.get("/health/live")
    assert r.status_code == 200


async def test_ready_checks_database(client):
    r = await client.get("/health/ready")
    assert r.json() == {"status": "ok", "database": "ok"}


async def test_territory_fixture(territory, client):
    r = await client.get(f"/v1/territories/{territory.id}", headers=territory.coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["created_at"].endswith(("+01:00", "+02:00"))
