"""Media storage: where a job's reference image and finished assets live.

The local-directory store is the embedded default. An S3-compatible store is later work behind
the same methods; the api streams from `path_of` only for this local store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
assert set(ASSET_FILES) == set(CONTENT_VARIANTS)


class LocalMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def asset_path(self, job_id: str, variant: str) -> Path:
        return self.job_dir(job_id) / ASSET_FILES[variant]

    def save_reference(self, job_id: str, data: bytes) -> None:
        _write_atomically(self.job_dir(job_id) / REFERENCE_FILE, data)

    def load_reference(self, job_id: str) -> bytes | None:
        path = self.job_dir(job_id) / REFERENCE_FILE
        return path.read_bytes() if path.exists() else None

    def save_source_video(self, job_id: str, data: bytes) -> None:
        _write_atomically(self.job_dir(job_id) / SOURCE_VIDEO_FILE, data)

    def source_video_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / SOURCE_VIDEO_FILE

    def save_character_clip(self, character_id: str, data: bytes) -> None:
        _write_atomically(self.character_clip_path(character_id), data)

    def character_clip_path(self, character_id: str) -> Path:
        return self.root / CHARACTERS_DIR / f"{character_id}.mp4"

    def delete_character_clip(self, character_id: str) -> None:
        self.character_clip_path(character_id).unlink(missing_ok=True)

    def scratch_dir(self, job_id: str, attempt: int) -> Path:
        """Where an upstream run writes before its assets are committed."""
        return self.job_dir(job_id) / f".run-{attempt}"

    def commit_assets(self, job_id: str, produced: dict[str, Path]) -> None:
        """Move finished assets into place (same filesystem: a rename, atomic per file)."""
        for variant, source in produced.items():
            source.replace(self.asset_path(job_id, variant))

    def discard_scratch(self, job_id: str) -> None:
        for scratch in self.job_dir(job_id).glob(".run-*"):
            shutil.rmtree(scratch, ignore_errors=True)

    def delete_job_media(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
