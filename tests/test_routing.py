"""The routers are included busiest first (app.main): that order may only change speed, never
which route answers a request."""

from __future__ import annotations

import re
import uuid

from fastapi.routing import APIRoute
from starlette.routing import compile_path

from app.main import create_app


def _api_routes() -> list[tuple[int, APIRoute]]:
    """Every API route with the index of the router it came from, in inclusion order."""
    app = create_app()
    found: list[tuple[int, APIRoute]] = []
    for index, included in enumerate(app.router.routes):
        router = getattr(included, "original_router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute):
                found.append((index, route))
    return found


def _example_path(template: str) -> str:
    """A concrete path the template matches: each parameter as a UUID."""
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)


def test_no_route_of_one_router_matches_a_path_of_another() -> None:
    routes = _api_routes()
    assert len({index for index, _ in routes}) > 10
    shadowed = [
        (a.path, b.path)
        for index_a, a in routes
        for index_b, b in routes
        if index_a != index_b
        and a.methods & b.methods
        and compile_path(a.path)[0].match(_example_path(b.path))
    ]
    assert shadowed == []
