"""What the local renderer is asked to make, and what it hands back.

Plain frozen values so a spec can cross a process boundary (pickled into a pool worker) and be
compared or logged without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class InvalidReferenceImage(ValueError):
    """The reference image bytes could not be decoded as an image (JPEG, PNG or WebP)."""


class SourceUse(StrEnum):
    """How a source video takes part in a render."""

    PREFIX = "prefix"
    """An extension: the source's frames first, then the new seconds."""
    BACKDROP = "backdrop"
    """An edit: the source's frames under the new prompt's shapes and text."""


@dataclass(frozen=True)
class SourceClip:
    """A video a render starts from: `path` (an MP4), played for `seconds` at the render's
    frame rate (its last frame held if it is shorter)."""

    path: str
    seconds: int
    use: SourceUse


@dataclass(frozen=True)
class Cameo:
    """A character drawn into a clip: its name under a frame of its clip (an MP4 at `clip`)."""

    name: str
    clip: str


@dataclass(frozen=True)
class RenderSpec:
    """One clip to render: the prompt drives its text, colours and motion.

    `width` and `height` must be even (H.264 4:2:0 needs it); the clip is exactly `seconds` long
    at `fps`. `reference_image`, when given, is the first frame the animation grows out of.
    `font_path` is a font file for the prompt's text; without one, a prompt the built-in font
    cannot draw (Chinese, say) uses a system CJK font if one is installed (see `render.fonts`).
    """

    prompt: str
    width: int
    height: int
    seconds: int
    reference_image: bytes | None = None
    fps: int = 24
    font_path: str | None = None
    palette_prompt: str | None = None
    """Seeds the colours and motion instead of `prompt` (a remix keeps its source's look)."""
    source: SourceClip | None = None
    cameos: tuple[Cameo, ...] = ()

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError(f"size must be positive and even, got {self.width}x{self.height}")
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def frame_count(self) -> int:
        """Every frame of the clip: an extension's are its source's and its new ones."""
        return self.total_seconds * self.fps

    @property
    def total_seconds(self) -> int:
        if self.source is not None and self.source.use is SourceUse.PREFIX:
            return self.source.seconds + self.seconds
        return self.seconds

    @property
    def prefix_frames(self) -> int:
        """The frames copied from the source before the new ones begin."""
        if self.source is not None and self.source.use is SourceUse.PREFIX:
            return self.source.seconds * self.fps
        return 0


@dataclass(frozen=True)
class RenderOutputs:
    """The finished files; all three exist and are complete when this is returned."""

    video: Path
    thumbnail: Path
    spritesheet: Path
