"""Keyless, expiring links to a job's content (`video_url`): an HMAC over id, variant, expiry."""

from __future__ import annotations

import hashlib
import hmac
import time


class UrlSigner:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def signature(self, job_id: str, variant: str, expires: int) -> str:
        message = f"{job_id}:{variant}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def derived_key(self, purpose: str) -> bytes:
        """A key for another use of the instance's secret (the web console's sessions), so one
        secret in the database serves every process without one signature standing for
        another."""
        return hmac.new(self._secret, f"derived:{purpose}".encode(), hashlib.sha256).digest()

    def verify(self, job_id: str, variant: str, expires: int, signature: str) -> bool:
        if expires < time.time() or not signature.isascii():
            return False  # compare_digest raises TypeError on a non-ASCII str
        return hmac.compare_digest(self.signature(job_id, variant, expires), signature)
