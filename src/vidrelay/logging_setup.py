"""Logs as one key=value line per event, with plain tracebacks.

Never rich tracebacks with local variables: a frame's locals can hold a request's
`Authorization` header, and drawing them is slow enough to stall the event loop.
"""

from __future__ import annotations

import logging
import re
import sys
from enum import Enum
from typing import TextIO, cast

import structlog


class _CurrentStderr:
    """`sys.stderr` as it is when a line is written, not when logging was configured: a
    logger cached on first use keeps its file, and a redirect (pytest's capture) must still
    see its lines."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_CURRENT_STDERR = cast(TextIO, _CurrentStderr())


def _plain_enums(
    _logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """An enum logs as its value (`unavailable`), never as its repr (`<FailureKind…>`)."""
    for name, value in event_dict.items():
        if isinstance(value, Enum):
            event_dict[name] = value.value
    return event_dict


_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:signature|key|token|api_key)=)[^&\s]*", re.IGNORECASE)


class _RedactedAccessLog(logging.Filter):
    """uvicorn's access line carries the request's path and query: a signed `video_url` is a
    credential anyone holding the line could use, so its signature (and any key-like
    parameter) is blanked before the line is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = _SECRET_QUERY.sub(r"\1[redacted]", str(args[2]))
            record.args = tuple(args)
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """structlog's events and the standard library's records (uvicorn's, alembic's) alike."""
    stamped: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _plain_enums,
    ]
    rendered: list[structlog.typing.Processor] = [
        structlog.processors.format_exc_info,
        structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
    ]
    handler = logging.StreamHandler(_CURRENT_STDERR)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=stamped,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendered],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []  # theirs print in another format
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactedAccessLog) for f in access.filters):
        access.addFilter(_RedactedAccessLog())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are chatter
    for name in ("httpx", "httpcore"):  # their INFO lines carry upstream URLs, signed links
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *stamped, *rendered],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(_CURRENT_STDERR),
        cache_logger_on_first_use=True,
    )
