"""Issuing, listing and revoking API keys, and resolving a key to its caller.

The admin API and `vidrelay keys` call these same functions, so a key is checked by the same
rules wherever it is made: a known tenant (the CLI may create it), an expiry ahead, models the
catalog has. The key itself leaves only once, in what `create_key` returns; the store keeps its
hash and a hint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from vidrelay.domain.audit import Actor
from vidrelay.domain.errors import AuthenticationFailed, NotFound
from vidrelay.domain.keys import KeySpec
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.services.tenants import unknown_tenant
from vidrelay.store import accounts, audit
from vidrelay.store import models as model_store
from vidrelay.store.accounts import KeyInfo, Principal
from vidrelay.store.database import Database


@dataclass(frozen=True)
class IssuedKey:
    key: str
    """The key in clear: shown to whoever asked for it, then never again."""
    info: KeyInfo
    tenant_balance_micros: int


async def create_key(
    db: Database,
    tenant: str,
    spec: KeySpec,
    *,
    create_tenant: bool = False,
    top_up_micros: int = 0,
    actor: Actor,
) -> IssuedKey:
    """A new key for `tenant` (404 if unknown, unless `create_tenant`), with an optional
    top-up of the tenant in the same transaction."""
    async with db.write() as conn:
        found = await accounts.find_tenant(conn, tenant)
        created = found is None
        if found is None:
            if not create_tenant:
                raise unknown_tenant(tenant)
            found = await accounts.create_tenant(conn, tenant)
        checked = spec.checked(await model_store.load_catalog(conn), int(time.time()))
        if top_up_micros:
            await accounts.top_up(
                conn, found.id, top_up_micros, "with a new key", actor=actor.ledger_name
            )
        key_id, key = await accounts.create_key(conn, found.id, checked)
        info = await accounts.find_key(conn, key_id)
        assert info is not None
        details = {
            "id": key_id,
            "name": checked.name,
            "expires_at": checked.expires_at,
            "models": list(checked.models) if checked.models is not None else None,
            "tenant_created": created,
            "top_up_usd": str(micros_to_usd(top_up_micros)),
        }
        await audit.record(conn, actor, "key.create", tenant, details)
        return IssuedKey(key, info, await accounts.tenant_balance(conn, found.id))


async def list_keys(db: Database, tenant: str | None = None) -> list[KeyInfo]:
    """Every key, oldest first; with `tenant`, that tenant's (404 if unknown)."""
    async with db.read() as conn:
        tenant_id = None
        if tenant is not None:
            found = await accounts.find_tenant(conn, tenant)
            if found is None:
                raise unknown_tenant(tenant)
            tenant_id = found.id
        return await accounts.list_keys(conn, tenant_id)


async def revoke_key(db: Database, key_or_id: str, *, actor: Actor) -> KeyInfo:
    """Revoke a key named by its id or by the key itself (never recorded: the audit row names
    the id); revoking it again changes nothing."""
    async with db.write() as conn:
        found = await accounts.find_key(conn, key_or_id)
        if found is None:
            raise NotFound("No API key matches this id or key.", param="id", code="key_not_found")
        if found.revoked_at is None:
            await accounts.revoke_key(conn, found.id)
            found = await accounts.find_key(conn, found.id)
            assert found is not None
        await audit.record(conn, actor, "key.revoke", found.tenant_name, {"id": found.id})
        return found


async def authenticate(db: Database, key: str) -> Principal:
    """The caller a bearer key stands for; a 401 for an unknown, revoked or expired key."""
    async with db.read() as conn:
        principal = await accounts.authenticate(conn, key)
    if principal is None:
        raise AuthenticationFailed("Incorrect API key provided, or the key has been revoked.")
    expires_at = principal.key_expires_at
    if expires_at is not None and time.time() >= expires_at:
        expired_at = datetime.fromtimestamp(expires_at, UTC)
        raise AuthenticationFailed(
            f"This API key expired at {expired_at:%Y-%m-%d %H:%M:%S} UTC; ask for a new one.",
            code="api_key_expired",
        )
    return principal
