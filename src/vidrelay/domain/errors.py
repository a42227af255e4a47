"""Domain errors. Each carries what the API needs to render an OpenAI-style error.

The api renders them in one place (`api/errors.py`); nothing else builds error bodies.
"""

from __future__ import annotations


class VidrelayError(Exception):
    status_code = 400
    error_type = "invalid_request_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def response_headers(self) -> dict[str, str]:
        """Protocol-level hints that go with the error (e.g. when to retry)."""
        return {}


class InvalidRequest(VidrelayError):
    default_code = "invalid_value"


class ModelNotFound(VidrelayError):
    default_code = "model_not_found"


class AuthenticationFailed(VidrelayError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDenied(VidrelayError):
    """The caller is known but may not do this (e.g. a key limited to other models)."""

    status_code = 403
    default_code = "permission_denied"


class NotFound(VidrelayError):
    status_code = 404
    default_code = "not_found"


class Conflict(VidrelayError):
    """The resource exists but its state forbids the request (e.g. content of a running job)."""

    status_code = 409


class InsufficientQuota(VidrelayError):
    status_code = 429
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class PayloadTooLarge(VidrelayError):
    status_code = 413
    default_code = "request_too_large"


class UnsupportedMediaType(VidrelayError):
    status_code = 415
    default_code = "unsupported_media_type"


class RateLimited(VidrelayError):
    """Too many requests or jobs in flight; `retry_after_s` says when trying again can help."""

    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.headers = headers or {}

    def response_headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return dict(self.headers)
        return {**self.headers, "retry-after": str(self.retry_after_s)}


class RangeNotSatisfiable(VidrelayError):
    """A `Range` that starts past the end of the content (RFC 9110 §15.5.17)."""

    status_code = 416
    default_code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"The requested range starts past the end of the content ({size} bytes).",
            param="Range",
        )
        self.size = size

    def response_headers(self) -> dict[str, str]:
        return {"content-range": f"bytes */{self.size}"}
