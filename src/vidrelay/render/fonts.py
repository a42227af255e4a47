"""Which font draws the prompt, so text in any script shows as glyphs rather than boxes.

Pillow's built-in font (a subset of Aileron) covers ASCII and a few symbols only: Chinese, and
even accented Latin, come out as "missing glyph" boxes. The choice, in order:

1. the caller's `font_path`, when it loads;
2. when the built-in font lacks a glyph the prompt needs, the first loadable font among a few
   well-known system files with CJK coverage (`CJK_FONT_CANDIDATES`);
3. the built-in font: boxes for what it lacks, but rendering never fails for want of a font.

A prompt the built-in font covers renders exactly as it always has. Nothing is ever downloaded.
Loaded fonts are cached per (file, face, size) for the life of the process, so a pool worker
opens each font once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# Plain logging, not structlog: importing structlog (and rich) would cost each worker ~10 MiB.
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FontFace:
    """One face in a font file; `index` picks the face inside a collection (.ttc)."""

    path: str
    index: int = 0


# Most preferred first. Where a file holds several regional forms of the same characters, the
# Simplified Chinese face is picked: most prompts are Chinese.
CJK_FONT_CANDIDATES: tuple[FontFace, ...] = (
    # Debian/Ubuntu fonts-noto-cjk; faces are JP, KR, SC, TC, HK, so 2 is Simplified Chinese.
    FontFace("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", index=2),
    FontFace("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    FontFace("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    FontFace("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
    FontFace("/System/Library/Fonts/PingFang.ttc"),  # macOS
    FontFace("/System/Library/Fonts/STHeiti Medium.ttc"),  # macOS
    FontFace("/Library/Fonts/Arial Unicode.ttf"),  # macOS with Office
)

# Coverage is probed at this size: large enough that a real glyph never rasterises like the box.
_PROBE_SIZE = 32
# A noncharacter: no font maps it, so it always renders as the font's missing-glyph box.
_UNMAPPED = "\uffff"


def prompt_font(text: str, size: int, font_path: str | None = None) -> ImageFont.FreeTypeFont:
    """The font to draw `text` with at `size` pixels, chosen as the module docstring says."""
    for face in _faces_to_try(text, font_path):
        font = _load(face, size)
        if font is not None:
            return font
    return _builtin(size)


def builtin_font_covers(text: str) -> bool:
    """True when Pillow's built-in font has a glyph for every visible character of `text`.

    Invisible characters (spaces, controls, zero-width marks) do not count: no font draws them
    usefully, so they must not switch a Latin prompt to another font.
    """
    return all(
        _builtin_has_glyph(character)
        for character in set(text)
        if character.isprintable() and not character.isspace()
    )


def _faces_to_try(text: str, font_path: str | None) -> Iterator[FontFace]:
    if font_path:
        yield FontFace(font_path)
    if not builtin_font_covers(text):
        yield from (face for face in CJK_FONT_CANDIDATES if Path(face.path).is_file())


@functools.lru_cache(maxsize=128)
def _load(face: FontFace, size: int) -> ImageFont.FreeTypeFont | None:
    """The face at `size`, or None (logged once per face) when the file cannot be loaded."""
    try:
        return ImageFont.truetype(face.path, size, index=face.index)
    except (OSError, ValueError) as error:
        _log_unloadable(face, str(error))
        return None


@functools.cache
def _log_unloadable(face: FontFace, reason: str) -> None:
    log.warning(
        "font %s (face %d) cannot be loaded, falling back: %s", face.path, face.index, reason
    )


@functools.lru_cache(maxsize=64)
def _builtin(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("Pillow needs FreeType support to draw prompt text")
    return font


@functools.lru_cache(maxsize=4096)
def _builtin_has_glyph(character: str) -> bool:
    """Pillow exposes no character map, so compare the rendering with the missing-glyph box."""
    return _builtin_raster(character) != _missing_glyph_raster()


@functools.lru_cache(maxsize=1)
def _missing_glyph_raster() -> bytes:
    return _builtin_raster(_UNMAPPED)


def _builtin_raster(character: str) -> bytes:
    image = Image.new("L", (2 * _PROBE_SIZE, 2 * _PROBE_SIZE))
    ImageDraw.Draw(image).text((0, 0), character, font=_builtin(_PROBE_SIZE), fill=255)
    return image.tobytes()
