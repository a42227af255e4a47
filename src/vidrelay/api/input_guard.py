"""The one place that refuses input the databases cannot store or the parsers cannot bound.

PostgreSQL refuses a NUL in text, and a lone surrogate (U+D800-U+DFFF) cannot even be encoded
as UTF-8: either one reaching a query, or a response that echoes it, is a 500. So every string a
handler can read is checked here before the handler sees it: the path (hence every path
parameter), the query string, header names and values, and the body in each shape the app parses
(JSON at any depth, urlencoded and multipart text fields). JSON is also bounded: its nesting
depth (Python's json recurses once per level), the length of its numbers (past 4,300 digits an
int is a ValueError) and NaN or infinite numbers (neither PostgreSQL nor our JSON responses can
carry them). Each refusal is a 400 naming the parameter, on SQLite and PostgreSQL alike.

A body is checked as the app reads it, never before, so a request refused for its key never has
its body read. When a body is refused the app is told the client left (`http.disconnect`) and
what it answers is replaced by the 400.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Protocol
from urllib.parse import parse_qsl

from fastapi.routing import iter_route_contexts
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import QueryParams
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidrelay.api.errors import render_domain_error
from vidrelay.domain.errors import InvalidRequest, UnsupportedMediaType, VidrelayError

MAX_JSON_DEPTH = 64
MAX_NUMBER_CHARS = 100
"""Longer than any real amount, id or seed; far below the 4,300 digits where int() gives up."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MULTIPART_CHARSETS = frozenset({"utf-8", "ascii", "iso8859-1"})
"""Charsets in which a text field holds a NUL exactly where its bytes do, and no surrogate."""


def unstorable(text: str) -> str | None:
    """What in `text` no database can store, as words for a message; None when nothing."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "a NUL character"
    return f"a lone surrogate (U+{ord(found.group()):04X})"


def _printable(name: str) -> str:
    """A parameter name fit to echo in an error, whatever it holds."""
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", name)[:100]


def _check_text(text: str, param: str | None) -> None:
    problem = unstorable(text)
    if problem is not None:
        _refuse(problem, param)


def _refuse(problem: str, param: str | None) -> NoReturn:
    param = _printable(param) if param else None
    raise InvalidRequest(
        f"{param or 'The body'} contains {problem}, which is not accepted.", param=param
    )


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_path(scope)
            _check_query(scope)
            _check_headers(scope)
        except VidrelayError as error:
            await render_domain_error(error)(scope, receive, send)
            return
        body_check = _body_check_for(_content_type(scope))
        if body_check is None:
            await self.app(scope, receive, send)
            return
        refused: VidrelayError | None = None
        response_started = False

        async def checked_receive() -> Message:
            nonlocal refused
            if refused is not None:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                try:
                    body_check.feed(message.get("body", b""), more=message.get("more_body", False))
                except VidrelayError as error:
                    if not response_started:
                        refused = error
                        return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused is not None:
                return  # the app's answer to a client that "left"; the 400 replaces it
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, checked_receive, guarded_send)
        except Exception:
            if refused is None:
                raise
        if refused is not None:
            await render_domain_error(refused)(scope, receive, send)


def _check_path(scope: Scope) -> None:
    """Named after the path parameter that holds the character, when a route matches."""
    if unstorable(scope["path"]) is None:
        return
    param = None
    for route in iter_route_contexts(getattr(scope.get("app"), "routes", [])):
        match, child = route.matches(scope)
        if match is not Match.NONE:
            params: dict[str, object] = child.get("path_params", {})
            param = next((name for name, value in params.items() if unstorable(str(value))), None)
            break
    _check_text(scope["path"], param or "path")


def _content_type(scope: Scope) -> str:
    """Read straight from the scope: building `Headers` costs the poll hot path more."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-type":
            return value.decode("latin-1")
    return ""


def _check_query(scope: Scope) -> None:
    if not scope["query_string"]:
        return
    for name, value in QueryParams(scope["query_string"]).multi_items():
        _check_text(name, name)
        _check_text(value, name)


def _check_headers(scope: Scope) -> None:
    for name, value in scope["headers"]:
        if b"\x00" in name or b"\x00" in value:
            _refuse("a NUL character", name.decode("latin-1"))


class _BodyCheck(Protocol):
    def feed(self, chunk: bytes, *, more: bool) -> None:
        """Take the next chunk; raise a VidrelayError for input to refuse."""


def _body_check_for(content_type: str) -> _BodyCheck | None:
    """A checker for each body shape the app parses (create_request.py, FastAPI's JSON)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return _WholeBodyCheck(check_json_body)
    if media_type == "application/x-www-form-urlencoded":
        return _WholeBodyCheck(_check_urlencoded)
    if media_type == "multipart/form-data":
        return _MultipartCheck(content_type)
    return None


class _WholeBodyCheck:
    def __init__(self, check: Callable[[bytes], None]) -> None:
        self._check = check
        self._chunks: list[bytes] = []

    def feed(self, chunk: bytes, *, more: bool) -> None:
        self._chunks.append(chunk)
        if not more:
            body, self._chunks = b"".join(self._chunks), []
            if body:
                self._check(body)


def _check_urlencoded(body: bytes) -> None:
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        _check_text(name, name)
        _check_text(value, name)


class _Refused:
    """A JSON number kept from the parser so the walk can name where it was."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_int(text: str) -> int | _Refused:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _parse_float(text: str) -> float | _Refused:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    number = float(text)
    return number if math.isfinite(number) else _Refused(f"{text[:20]}, out of range")


def _parse_constant(text: str) -> _Refused:
    return _Refused(f"{text}, which JSON does not allow")


def check_json_body(body: bytes) -> None:
    """Refuse a body that is not JSON, or whose JSON holds anything this module refuses."""
    try:
        document = json.loads(
            body, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except RecursionError as error:
        raise InvalidRequest(
            f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."
        ) from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidRequest(f"The request body is not valid JSON: {error}") from error
    for value, path, depth in _walk(document):
        param = ".".join(path) or None
        if isinstance(value, str):
            _check_text(value, param)
        elif isinstance(value, _Refused):
            raise InvalidRequest(f"{param or 'The body'} is {value.reason}.", param=param)
        elif depth > MAX_JSON_DEPTH:
            raise InvalidRequest(
                f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.", param=param
            )


def _walk(document: Any) -> Iterator[tuple[Any, tuple[str, ...], int]]:
    """Every value and object key with its path and depth, without recursion."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(document, (), 0)]
    while stack:
        value, path, depth = stack.pop()
        yield value, path, depth
        if isinstance(value, dict):
            for key, item in value.items():
                yield key, (*path, _printable(key)), depth + 1
                stack.append((item, (*path, _printable(key)), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(index)), depth + 1) for index, item in enumerate(value))


class _MultipartCheck:
    """Checks text fields as they stream through, so an upload is never held twice."""

    def __init__(self, content_type: str) -> None:
        self._content_type = content_type
        self._parser: MultipartParser | None = None
        self._started = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._field = ""
        self._is_text = False

    def feed(self, chunk: bytes, *, more: bool) -> None:
        if not self._started:
            self._started = True
            self._parser = self._start()
        if self._parser is None:
            return
        try:
            self._parser.write(chunk)
            if not more:
                self._parser.finalize()
        except FormParserError:
            self._parser = None  # the app's parser refuses the same bytes with its message

    def _start(self) -> MultipartParser | None:
        _, options = parse_options_header(self._content_type)
        charset = options.get(b"charset")
        if charset is not None:
            try:
                name = codecs.lookup(charset.decode("latin-1")).name
            except LookupError:
                name = "iso8859-1"  # what Starlette decodes with then
            if name not in _MULTIPART_CHARSETS:
                raise UnsupportedMediaType(
                    f"charset {charset.decode('latin-1')[:40]!r} is not supported for "
                    "multipart/form-data; send UTF-8."
                )
        boundary = options.get(b"boundary")
        if not boundary:
            return None  # the app answers that itself
        return MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
            },
        )

    def _on_part_begin(self) -> None:
        self._disposition, self._field, self._is_text = b"", "", False

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name, self._header_value = bytearray(), bytearray()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._field = options.get(b"name", b"").decode("latin-1")
        _check_text(self._field, self._field)
        self._is_text = b"filename" not in options

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_text and data.find(b"\x00", start, end) != -1:
            _refuse("a NUL character", self._field)
