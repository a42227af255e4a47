"""Every page of the customer portal, as one router for the app to include (before the web
apps' fallback)."""

from __future__ import annotations

from fastapi import APIRouter

from vidrelay.console import (
    playground,
    portal,
    portal_account,
    portal_keys,
    portal_videos,
    portal_webhooks,
)

router = APIRouter()
for pages in (portal, portal_account, portal_videos, portal_keys, portal_webhooks, playground):
    router.include_router(pages.router)
