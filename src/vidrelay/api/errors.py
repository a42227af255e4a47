"""The one place that renders errors, always in OpenAI's shape:
`{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from vidrelay.domain.errors import VidrelayError

log = structlog.get_logger(__name__)


def error_response(
    status_code: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def render_domain_error(error: VidrelayError) -> JSONResponse:
    headers = error.response_headers()
    if error.status_code == 401:
        headers["www-authenticate"] = "Bearer"
    return error_response(
        error.status_code,
        error.message,
        error_type=error.error_type,
        param=error.param,
        code=error.code,
        headers=headers,
    )


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, VidrelayError)
        return render_domain_error(error)

    async def on_validation_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("query", "body")]
        param = ".".join(location) or None
        return error_response(
            400,
            f"Invalid value for {param}: {first.get('msg', 'invalid')}.",
            param=param,
            code="invalid_value",
        )

    async def on_http_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        message = str(error.detail) if error.detail else "Request failed."
        if error.status_code == 404 and message == "Not Found":
            message = "Unknown request URL. Check the path and method."
        return error_response(
            error.status_code,
            message,
            code=_HTTP_CODES.get(error.status_code),
            headers=dict(error.headers) if error.headers else None,
        )

    async def on_unexpected(_request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, ClientDisconnect):  # the client left; nobody reads this answer
            return error_response(400, "The client closed the connection.", code="client_closed")
        log.error("unhandled_error", error_type=type(error).__name__, exc_info=error)
        return error_response(
            500,
            "The server had an error while processing your request.",
            error_type="server_error",
            code="internal_error",
        )

    app.add_exception_handler(VidrelayError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
