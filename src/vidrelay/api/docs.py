"""`/docs`: the interactive API reference, served whole from this server.

FastAPI's default page loads Swagger UI from a CDN, which fails offline and on networks that
block it; the assets come from the `fastapi-swagger` package instead (Swagger UI 5, which reads
OpenAPI 3.1). The page may not be framed (clickjacking) and loads nothing from elsewhere.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
        "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def install_docs(app: FastAPI, hand_written: dict[str, dict[str, Any]]) -> None:
    """Mount the page and its assets (the app must be made with `docs_url=None`), and add to
    the OpenAPI document the operations of plain routes FastAPI cannot describe
    (`{path: {method: operation}}`)."""
    generated = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generated()
            for path, operations in hand_written.items():
                schema["paths"].setdefault(path, {}).update(operations)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
        page.headers.update(_HEADERS)
        return page

    app.include_router(router)
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_swagger", "resources")]), name="docs")
