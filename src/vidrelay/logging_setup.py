"""Logs as one line per event, key=value (`text`, the default) or a JSON object (`json`), with
plain tracebacks; uvicorn's and other libraries' records come out in the same format.

Never rich tracebacks with local variables: a frame's locals can hold a request's
`Authorization` header, and drawing them is slow enough to stall the event loop.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from typing import Literal, TextIO, cast

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


LogFormat = Literal["text", "json"]


class _Renderer:
    """The last processor, in the format last configured: a logger cached on first use keeps
    its processors, and a later `configure_logging` (another app in the same process, a test)
    must still switch its format."""

    def __init__(self) -> None:
        self.render: structlog.typing.Processor = _TEXT

    def __call__(
        self, logger: object, method: str, event_dict: structlog.typing.EventDict
    ) -> str | bytes:
        return cast("str | bytes", self.render(logger, method, event_dict))


_TEXT = structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"])
_JSON = structlog.processors.JSONRenderer()
_RENDERER = _Renderer()


def configure_logging(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """structlog's events and the standard library's records (uvicorn's, alembic's) alike, in
    one format: a log shipper reading JSON must never meet a line that is not."""
    _RENDERER.render = _JSON if log_format == "json" else _TEXT
    stamped: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,  # a request's id on uvicorn's lines too
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _plain_enums,
    ]
    rendered: list[structlog.typing.Processor] = [
        structlog.processors.format_exc_info,
        _RENDERER,
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
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are chatter
    for name in ("httpx", "httpcore"):  # their INFO lines carry upstream URLs, signed links
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*stamped, *rendered],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(_CURRENT_STDERR),
        cache_logger_on_first_use=True,
    )
