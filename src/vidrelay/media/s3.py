"""Media in an S3-compatible bucket (AWS S3, MinIO, R2, moto's server), through obstore.

Objects are `PREFIX/JOB_ID/video.mp4` (and `thumbnail.webp`, `spritesheet.jpg`,
`reference.bin`). Adapters still download into a local scratch directory; a commit uploads each
file streamed from disk, in parts above `UPLOAD_PART_BYTES` (S3 shows a multipart upload only
once it is completed, a single PUT only once it is whole), so a process killed mid-upload
leaves no object behind, and its job is not completed (the runner marks it only after the
commit). At most `UPLOAD_CONCURRENCY` parts are in memory per upload.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path

import anyio
import obstore
from obstore.store import S3Store

from vidrelay.media.location import S3Media
from vidrelay.media.storage import (
    ASSET_FILES,
    CHARACTERS_DIR,
    MEDIA_TYPES,
    REFERENCE_FILE,
    SOURCE_VIDEO_FILE,
    AssetInfo,
)
from vidrelay.settings import Settings

UPLOAD_PART_BYTES = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 4
READ_CHUNK_BYTES = 1024 * 1024
"""obstore buffers this much of a download before handing it on: small enough to keep the
memory of many concurrent downloads flat, large enough to keep Python out of the way."""


class S3MediaStore:
    def __init__(self, location: S3Media, settings: Settings) -> None:
        self.location = location
        self._scratch_root = settings.data_dir / "scratch"
        endpoint = settings.s3_endpoint_url
        self._endpoint = endpoint
        config: dict[str, str] = {}
        if endpoint:
            config["endpoint"] = endpoint
        for key, value in (
            ("access_key_id", settings.aws_access_key_id),
            ("secret_access_key", settings.aws_secret_access_key),
            ("region", settings.aws_region),
        ):
            if value:
                config[key] = value
        self._store = S3Store(
            location.bucket,
            prefix=location.prefix or None,
            config=config,  # type: ignore[arg-type]  # S3Config is a TypedDict of strings
            client_options={"allow_http": bool(endpoint and endpoint.startswith("http://"))},
        )

    def describe(self) -> str:
        return self.location.url + (f" at {self._endpoint}" if self._endpoint else "")

    @staticmethod
    def _key(job_id: str, name: str) -> str:
        return f"{job_id}/{name}"

    async def save_reference(self, job_id: str, data: bytes) -> None:
        await obstore.put_async(self._store, self._key(job_id, REFERENCE_FILE), data)

    async def load_reference(self, job_id: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, self._key(job_id, REFERENCE_FILE))
        except FileNotFoundError:
            return None
        return bytes(await result.bytes_async())

    async def save_source_video(self, job_id: str, data: bytes) -> None:
        await obstore.put_async(self._store, self._key(job_id, SOURCE_VIDEO_FILE), data)

    async def source_video_file(self, job_id: str, source_video_id: str | None) -> Path | None:
        key = (
            self._key(source_video_id, ASSET_FILES["video"])
            if source_video_id is not None
            else self._key(job_id, SOURCE_VIDEO_FILE)
        )
        return await self._copy_to_scratch(
            key, self._scratch_root / job_id / "inputs" / "source.mp4"
        )

    @staticmethod
    def _character_key(character_id: str) -> str:
        return f"{CHARACTERS_DIR}/{character_id}.mp4"

    async def save_character_clip(self, character_id: str, data: bytes) -> None:
        await obstore.put_async(self._store, self._character_key(character_id), data)

    async def character_clip_file(self, character_id: str, job_id: str) -> Path | None:
        destination = self._scratch_root / job_id / "inputs" / f"{character_id}.mp4"
        return await self._copy_to_scratch(self._character_key(character_id), destination)

    async def delete_character_clip(self, character_id: str) -> None:
        await obstore.delete_async(self._store, self._character_key(character_id))

    async def _copy_to_scratch(self, key: str, destination: Path) -> Path | None:
        """Stream an object into a local file (adapters and the renderer read files); None when
        the object is not stored. The job's scratch goes with `discard_scratch`."""
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            return None
        await asyncio.to_thread(destination.parent.mkdir, parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".part")
        async with await anyio.open_file(partial, "wb") as file:
            async for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
                await file.write(chunk)
        await asyncio.to_thread(partial.replace, destination)
        return destination

    def scratch_dir(self, job_id: str, attempt: int) -> Path:
        return self._scratch_root / job_id / f"run-{attempt}"

    async def commit_assets(self, job_id: str, produced: dict[str, Path]) -> None:
        for variant, source in produced.items():
            await obstore.put_async(
                self._store,
                self._key(job_id, ASSET_FILES[variant]),
                source,  # obstore reads the file itself, part by part
                attributes={
                    "Content-Type": MEDIA_TYPES[variant],
                    "Content-Disposition": f'inline; filename="{job_id}{source.suffix}"',
                },
                chunk_size=UPLOAD_PART_BYTES,
                max_concurrency=UPLOAD_CONCURRENCY,
            )

    async def discard_scratch(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._scratch_root / job_id, ignore_errors=True)

    async def delete_job_media(self, job_id: str) -> None:
        """Every object under the job's prefix (a listing, so nothing stored is missed)."""
        await self.discard_scratch(job_id)
        listed = await obstore.list(self._store, prefix=job_id).collect_async()
        paths = [meta["path"] for meta in listed]
        if paths:
            await obstore.delete_async(self._store, paths)

    async def asset_info(self, job_id: str, variant: str) -> AssetInfo | None:
        try:
            meta = await obstore.head_async(self._store, self._key(job_id, ASSET_FILES[variant]))
        except FileNotFoundError:
            return None
        modified = meta["last_modified"].timestamp()
        etag = meta["e_tag"] or f"{meta['size']}-{modified}"
        return AssetInfo(
            size=meta["size"],
            etag=etag if etag.startswith('"') else f'"{etag}"',
            last_modified=formatdate(modified, usegmt=True),
        )

    async def read_asset(
        self, job_id: str, variant: str, start: int, end: int
    ) -> AsyncIterator[bytes]:
        if start >= end:
            return
        result = await obstore.get_async(
            self._store, self._key(job_id, ASSET_FILES[variant]), options={"range": (start, end)}
        )
        async for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
            yield chunk

    async def presigned_url(self, job_id: str, variant: str, expires_in_s: int) -> str | None:
        return await obstore.sign_async(
            self._store,
            "GET",
            self._key(job_id, ASSET_FILES[variant]),
            timedelta(seconds=expires_in_s),
        )
