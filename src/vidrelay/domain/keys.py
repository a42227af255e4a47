"""API keys: how they look, how they are stored (hashed, never in clear) and what a key may be
limited to (a name, an expiry, the models it may order)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace

from vidrelay.domain.catalog import Catalog
from vidrelay.domain.errors import InvalidRequest, ModelNotFound, PermissionDenied
from vidrelay.domain.jobs import StatusStyle
from vidrelay.domain.limits import Limits

KEY_PREFIX = "sk-"
MAX_KEY_NAME = 200
LATEST_EXPIRY = 253_402_300_799  # 9999-12-31T23:59:59Z


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(36)


def hash_api_key(key: str) -> str:
    """SHA-256 is enough here: keys are 288 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """What an operator may see of a key: its prefix and last four characters."""
    return f"{key[:6]}…{key[-4:]}"


def new_key_id() -> str:
    return "key_" + secrets.token_hex(12)


def new_tenant_id() -> str:
    return "ten_" + secrets.token_hex(12)


@dataclass(frozen=True)
class KeySpec:
    """What a new key carries besides its tenant; every field is optional."""

    name: str | None = None
    expires_at: int | None = None
    """Unix seconds; from then on the key is refused (401)."""
    models: tuple[str, ...] | None = None
    """The only models the key may order; None for every model."""
    status_style: StatusStyle | None = None
    limits: Limits = field(default_factory=Limits)
    spend_limit_micros: int | None = None

    def checked(self, catalog: Catalog, now: int) -> KeySpec:
        """The spec as stored (models deduplicated), or a 400 naming the bad field: an expiry
        must lie ahead, and every model must be in the catalog, since a key limited to a model
        nobody can order would be useless from its first request."""
        if self.name is not None and not 1 <= len(self.name) <= MAX_KEY_NAME:
            raise InvalidRequest(f"name has 1 to {MAX_KEY_NAME} characters.", param="name")
        if self.expires_at is not None and not now < self.expires_at <= LATEST_EXPIRY:
            raise InvalidRequest(
                f"expires_at ({self.expires_at}) must be a Unix time in the future (now {now}).",
                param="expires_at",
            )
        if self.models is None:
            return self
        if not self.models:
            raise InvalidRequest(
                "models cannot be empty; leave it out to allow every model.", param="models"
            )
        unknown = [name for name in self.models if name not in catalog]
        if unknown:
            raise ModelNotFound(
                f"No model named {', '.join(map(repr, unknown))} in the catalog; "
                f"allowed values: {', '.join(catalog.models)}.",
                param="models",
            )
        return replace(self, models=tuple(dict.fromkeys(self.models)))


def check_model_allowed(allowed: tuple[str, ...] | None, model: str) -> None:
    """A 403 `model_not_allowed` when the key is limited to other models."""
    if allowed is not None and model not in allowed:
        raise PermissionDenied(
            f"This API key may not use the model {model!r}; it may use: {', '.join(allowed)}.",
            param="model",
            code="model_not_allowed",
        )
