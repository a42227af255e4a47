"""What the console's paged lists share: reading a filter form sent by GET, and the link to
the next page, which keeps the filters and adds the cursor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request

from vidrelay.domain.errors import InvalidRequest

PAGE_SIZE = 50


def filters_of(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The filter fields as typed (trimmed; absent ones empty), to show back in the form."""
    return {name: request.query_params.get(name, "").strip() for name in names}


def page_url(path: str, filters: Mapping[str, str], **cursor: str) -> str:
    """`path` with the filters that are set and the cursor of the page to show."""
    query = {name: value for name, value in {**filters, **cursor}.items() if value}
    return f"{path}?{urlencode(query)}" if query else path


def moment(text: str, param: str) -> int | None:
    """A `datetime-local` field (UTC) as unix seconds; None when empty."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{param} must be a date and time such as 2026-11-30T08:00 (UTC).", param=param
        ) from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())
