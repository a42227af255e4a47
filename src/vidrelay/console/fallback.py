"""Unknown pages under `/console` and `/portal`: an HTML 404 with the apps' security headers,
not the API's JSON. Included after every other router, so it only catches what none matched."""

from __future__ import annotations

from fastapi import APIRouter

from vidrelay.console.pages import PageRoute
from vidrelay.domain.errors import NotFound

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.api_route("/console/{path:path}", methods=["GET", "POST"])
@router.api_route("/portal/{path:path}", methods=["GET", "POST"])
async def unknown_page(path: str) -> None:
    raise NotFound("There is no such page.")
