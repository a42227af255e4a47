"""What the local renderer is asked to make, and what it hands back.

Plain frozen values so a spec can cross a process boundary (pickled into a pool worker) and be
compared or logged without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class InvalidReferenceImage(ValueError):
    """The reference image bytes could not be decoded as an image (JPEG, PNG or WebP)."""


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

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError(f"size must be positive and even, got {self.width}x{self.height}")
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def frame_count(self) -> int:
        return self.seconds * self.fps


@dataclass(frozen=True)
class RenderOutputs:
    """The finished files; all three exist and are complete when this is returned."""

    video: Path
    thumbnail: Path
    spritesheet: Path
