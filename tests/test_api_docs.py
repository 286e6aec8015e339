"""The API docs work offline: every asset of /docs and /redoc is served by the service."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_api_docs_load_only_local_assets(client: httpx.AsyncClient, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    assert assets, r.text
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the service"
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000, asset
    # The spec the page loads (the one place the page's script names a URL).
    assert "'/openapi.json'" in r.text or '"/openapi.json"' in r.text
