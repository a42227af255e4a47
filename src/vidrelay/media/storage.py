"""Media storage: where a job's reference image and finished assets live.

`MediaStore` is the cut: the local directory (the embedded default) and an S3-compatible
bucket (`media/s3.py`) are siblings behind it, chosen by `VIDRELAY_MEDIA_URL`
(`engine/background.py::open_media_store`). What every store guarantees:
- an asset becomes visible whole or not at all (a rename on disk, a completed upload in S3),
  and the runner marks a job completed only after `commit_assets` returned, so a process
  killed mid-commit leaves neither a half object nor a completed job;
- scratch (where adapters write before a commit) is always on local disk;
- every method that does I/O is async and never holds a whole video in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import anyio

from vidrelay.domain.jobs import CONTENT_VARIANTS

ASSET_FILES = {
    "video": "video.mp4",
    "thumbnail": "thumbnail.webp",
    "spritesheet": "spritesheet.jpg",
}
MEDIA_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}
REFERENCE_FILE = "reference.bin"
SOURCE_VIDEO_FILE = "source.mp4"
"""An uploaded MP4 an edit or an extension starts from, kept with the job's media."""
CHARACTERS_DIR = "characters"
READ_CHUNK_BYTES = 256 * 1024
assert set(ASSET_FILES) == set(CONTENT_VARIANTS)


@dataclass(frozen=True)
class AssetInfo:
    """What HTTP caching and ranges need to know about a stored asset."""

    size: int
    etag: str
    """Quoted, as sent in an `ETag` header."""
    last_modified: str
    """An HTTP date."""


class MediaStore(Protocol):
    def describe(self) -> str:
        """Where media lives, for the start-up log (no secret in it)."""
        ...

    async def save_reference(self, job_id: str, data: bytes) -> None: ...

    async def load_reference(self, job_id: str) -> bytes | None: ...

    async def save_source_video(self, job_id: str, data: bytes) -> None:
        """An uploaded MP4 an edit or an extension starts from."""
        ...

    async def source_video_file(self, job_id: str, source_video_id: str | None) -> Path | None:
        """A local file of what a derived job starts from: the video of `source_video_id`,
        else the job's uploaded MP4 (a remote store copies it into the job's scratch)."""
        ...

    async def save_character_clip(self, character_id: str, data: bytes) -> None: ...

    async def character_clip_file(self, character_id: str, job_id: str) -> Path | None:
        """A local file of the character's clip, for a job that names it."""
        ...

    async def delete_character_clip(self, character_id: str) -> None: ...

    def scratch_dir(self, job_id: str, attempt: int) -> Path:
        """Where an upstream run writes (local disk) before its assets are committed."""
        ...

    async def commit_assets(self, job_id: str, produced: dict[str, Path]) -> None:
        """Store each produced file as its variant, each visible only once whole."""
        ...

    async def discard_scratch(self, job_id: str) -> None: ...

    async def delete_job_media(self, job_id: str) -> None:
        """Everything stored for the job (reference, assets, scratch); absent is fine."""
        ...

    async def asset_info(self, job_id: str, variant: str) -> AssetInfo | None:
        """None when the asset is not stored (never collected, or deleted)."""
        ...

    def read_asset(self, job_id: str, variant: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes `start` to `end` (exclusive), streamed in chunks."""
        ...

    async def presigned_url(self, job_id: str, variant: str, expires_in_s: int) -> str | None:
        """A URL anyone may GET the asset from for `expires_in_s`; None when the store cannot
        sign (the local directory)."""
        ...


class LocalMediaStore:
    """A directory per job under `root`; scratch lives inside it, so a commit is a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return str(self.root.resolve())

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def asset_path(self, job_id: str, variant: str) -> Path:
        return self.job_dir(job_id) / ASSET_FILES[variant]

    async def save_reference(self, job_id: str, data: bytes) -> None:
        await asyncio.to_thread(_write_atomically, self.job_dir(job_id) / REFERENCE_FILE, data)

    async def load_reference(self, job_id: str) -> bytes | None:
        path = self.job_dir(job_id) / REFERENCE_FILE
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def save_source_video(self, job_id: str, data: bytes) -> None:
        await asyncio.to_thread(_write_atomically, self.job_dir(job_id) / SOURCE_VIDEO_FILE, data)

    async def source_video_file(self, job_id: str, source_video_id: str | None) -> Path | None:
        if source_video_id is not None:
            return self.asset_path(source_video_id, "video")
        return self.job_dir(job_id) / SOURCE_VIDEO_FILE

    def character_clip_path(self, character_id: str) -> Path:
        return self.root / CHARACTERS_DIR / f"{character_id}.mp4"

    async def save_character_clip(self, character_id: str, data: bytes) -> None:
        await asyncio.to_thread(_write_atomically, self.character_clip_path(character_id), data)

    async def character_clip_file(self, character_id: str, job_id: str) -> Path | None:
        return self.character_clip_path(character_id)

    async def delete_character_clip(self, character_id: str) -> None:
        self.character_clip_path(character_id).unlink(missing_ok=True)

    def scratch_dir(self, job_id: str, attempt: int) -> Path:
        return self.job_dir(job_id) / f".run-{attempt}"

    async def commit_assets(self, job_id: str, produced: dict[str, Path]) -> None:
        """Move finished assets into place (same filesystem: a rename, atomic per file)."""
        for variant, source in produced.items():
            source.replace(self.asset_path(job_id, variant))

    async def discard_scratch(self, job_id: str) -> None:
        for scratch in self.job_dir(job_id).glob(".run-*"):
            await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)

    async def delete_job_media(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), ignore_errors=True)

    async def asset_info(self, job_id: str, variant: str) -> AssetInfo | None:
        try:
            stat = await asyncio.to_thread(self.asset_path(job_id, variant).stat)
        except FileNotFoundError:
            return None
        # Starlette's FileResponse formula, so the ETags served before this store stay valid.
        tag = hashlib.md5(f"{stat.st_mtime}-{stat.st_size}".encode(), usedforsecurity=False)
        return AssetInfo(
            size=stat.st_size,
            etag=f'"{tag.hexdigest()}"',
            last_modified=formatdate(stat.st_mtime, usegmt=True),
        )

    async def read_asset(
        self, job_id: str, variant: str, start: int, end: int
    ) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.asset_path(job_id, variant), "rb") as file:
            await file.seek(start)
            while start < end:
                chunk = await file.read(min(READ_CHUNK_BYTES, end - start))
                if not chunk:
                    return  # truncated under us: the client sees a short body
                start += len(chunk)
                yield chunk

    async def presigned_url(self, job_id: str, variant: str, expires_in_s: int) -> str | None:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
