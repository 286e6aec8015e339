"""A paged FHIR searchset Bundle (`_count` and `_offset`, with a `next` link while more match),
as the standard searches of /fhir answer it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode


def paged_searchset(
    type_: str,
    resources: list[dict[str, Any]],
    *,
    total: int,
    offset: int,
    count: int,
    self_url: str,
    params: list[tuple[str, str]],
    base: str,
) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if offset + len(resources) < total:
        following = [(k, v) for k, v in params if k != "_offset"]
        following.append(("_offset", str(offset + count)))
        links.append({"relation": "next", "url": f"{base}/fhir/{type_}?{urlencode(following)}"})
    result: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if resources:
        result["entry"] = [
            {
                "fullUrl": f"{base}/fhir/{type_}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ]
    return result
