"""The references a user reads: `/docs` works with no network beyond this server (no CDN) and
may not be framed, and the OpenAPI document describes every route the server answers."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

UNDOCUMENTED = {"/docs", "/openapi.json"}  # the reference itself
WEB_APPS = ("/console", "/portal")  # HTML pages for people, not API operations


async def test_the_openapi_document_lists_every_route_the_server_answers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    answered = [
        (re.sub(r"{(\w+):\w+}", r"{\1}", str(route.path)), method.lower())  # {name:path}
        for route in iter_route_contexts(app.routes)
        for method in (route.methods or set()) - {"HEAD"}  # a mount has none
        if route.path not in UNDOCUMENTED and not str(route.path).startswith(WEB_APPS)
    ]
    assert ("/v1/videos/{video_id}", "get") in answered and len(answered) > 20
    missing = [(path, method) for path, method in answered if method not in paths.get(path, {})]
    assert missing == []
    retrieve = paths["/v1/videos/{video_id}"]["get"]
    assert [p["name"] for p in retrieve["parameters"]] == ["video_id", "status_style"]
    assert "admin" in paths["/admin/tenants"]["get"]["tags"]


async def test_docs_load_everything_from_this_server_and_refuse_framing(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert not re.search(r"(https?:)?//", page.text), "the page names another origin"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {asset.rsplit(".", 1)[1] for asset in assets} == {"css", "png", "js"}
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200 and len(response.content) > 500, asset
    assert "openapi.json" in page.text
