"""What a tenant's name may be: it appears in URLs (`/admin/tenants/{name}`), the CLI and the
console, so no slash, no control character and no surrounding blank."""

from __future__ import annotations

import re

from vidrelay.domain.errors import InvalidRequest

TENANT_NAME = r"^[^/\s\x00-\x1f\x7f](?:[^/\x00-\x1f\x7f]*[^/\s\x00-\x1f\x7f])?$"
MAX_TENANT_NAME = 200
_TENANT_NAME = re.compile(TENANT_NAME)


def check_tenant_name(name: str, param: str = "name") -> None:
    if not 1 <= len(name) <= MAX_TENANT_NAME or not _TENANT_NAME.match(name):
        raise InvalidRequest(
            f"A tenant name is 1 to {MAX_TENANT_NAME} characters, with no slash, no control "
            "character and no blank at either end.",
            param=param,
        )
