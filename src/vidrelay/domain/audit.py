"""Who did an operator action, for the audit log: the use cases record one row per action, in
the transaction that does it (services/), so a row exists exactly when the action happened."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit


class ActorKind(StrEnum):
    ADMIN_API = "admin-api"
    CLI = "cli"
    CONSOLE = "console"
    CONFIG_FILE = "config-file"
    TENANT = "tenant"
    """A tenant serving itself through the API (its keys, its webhook endpoints)."""


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    address: str | None = None
    """The client's address, when the action came over HTTP."""
    tenant_id: str | None = None
    """The tenant acting, for `ActorKind.TENANT`."""

    @property
    def ledger_name(self) -> str:
        """The ledger's `actor` column, as it was before the audit log ("admin" over HTTP)."""
        return "admin" if self.kind is ActorKind.ADMIN_API else self.kind.value


CLI = Actor(ActorKind.CLI)
CONFIG_FILE = Actor(ActorKind.CONFIG_FILE)


def url_for_audit(url: str) -> str:
    """A URL as the audit log keeps it: without user info, query or fragment, where a
    credential may hide (`https://user:pass@host/hook?token=…`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
