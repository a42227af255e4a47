"""`VIDRELAY_MEDIA_URL`, parsed once: a local directory or an S3 bucket and prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
"""S3's bucket naming rules (3-63 characters: lower-case letters, digits, dots, hyphens)."""
MEDIA_URL_FORMS = "write file:///ABSOLUTE/PATH or s3://BUCKET/PREFIX"


@dataclass(frozen=True)
class LocalMedia:
    root: Path


@dataclass(frozen=True)
class S3Media:
    bucket: str
    prefix: str
    """Without leading or trailing slashes; empty for the bucket's root."""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


MediaLocation = LocalMedia | S3Media


def parse_media_url(url: str) -> MediaLocation:
    """Raises ValueError, worded for the operator, on anything but the two forms."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"{MEDIA_URL_FORMS} (no query or fragment)")
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ValueError(f"{MEDIA_URL_FORMS}: a file URL names an absolute path")
        return LocalMedia(Path(path))
    if parts.scheme == "s3":
        if not _BUCKET.fullmatch(parts.netloc):
            raise ValueError(
                f"{MEDIA_URL_FORMS}: {parts.netloc!r} is not a bucket name "
                "(3-63 lower-case letters, digits, dots and hyphens)"
            )
        prefix = parts.path.strip("/")
        if prefix and any(segment in ("", ".", "..") for segment in prefix.split("/")):
            raise ValueError(f"{MEDIA_URL_FORMS}: the prefix has an empty, . or .. segment")
        return S3Media(parts.netloc, prefix)
    raise ValueError(MEDIA_URL_FORMS)
