"""Logs as one key=value line per event, with plain tracebacks.

Never rich tracebacks with local variables: a frame's locals can hold a request's
`Authorization` header, and drawing them is slow enough to stall the event loop.
"""

from __future__ import annotations

import logging
import sys
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


def configure_logging(level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(_CURRENT_STDERR),
        cache_logger_on_first_use=True,
    )
