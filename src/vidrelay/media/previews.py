"""Thumbnail (WebP) and spritesheet (JPEG grid) for a video.

The local renderer feeds these from the few frames it samples while encoding; an upstream that
returns only an MP4 goes through `previews_from_mp4`, which decodes once and keeps only the
sampled frames, so memory stays flat whatever the clip length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import av
from PIL import Image

THUMBNAIL_MAX_SIDE = 1280
SPRITESHEET_FRAMES = 16
SPRITESHEET_TILE_SIDE = 256


def sample_indices(frame_count: int, samples: int = SPRITESHEET_FRAMES) -> list[int]:
    """Evenly spaced frame indices from the first to the last frame (fewer if the clip is short)."""
    if frame_count <= 0 or samples <= 0:
        return []
    if samples == 1:
        return [thumbnail_index(frame_count)]
    if frame_count <= samples:
        return list(range(frame_count))
    return [round(k * (frame_count - 1) / (samples - 1)) for k in range(samples)]


def thumbnail_index(frame_count: int) -> int:
    """The frame a third of the way in: past any fade-in, still representative."""
    return max(0, frame_count // 3)


def fit_within(frame: Image.Image, max_side: int) -> Image.Image:
    """Scale down (never up) so the longer side is at most `max_side`, keeping aspect ratio."""
    longer = max(frame.size)
    if longer <= max_side:
        return frame
    scale = max_side / longer
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    return frame.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def make_tile(frame: Image.Image) -> Image.Image:
    """A spritesheet-sized copy of a frame; keep these, not full frames, while sampling."""
    return fit_within(frame.convert("RGB"), SPRITESHEET_TILE_SIDE)


def frame_to_image(frame: av.VideoFrame) -> Image.Image:
    """An RGB Pillow image of a decoded or encoded frame, honouring its colour tags."""
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]  # PyAV stub lacks types
    return image


def write_thumbnail(frame: Image.Image, path: Path) -> None:
    """Write `frame` as a WebP no larger than THUMBNAIL_MAX_SIDE, atomically."""
    image = fit_within(frame.convert("RGB"), THUMBNAIL_MAX_SIDE)
    _save_atomically(image, path, "WEBP", quality=80, method=4)


def write_spritesheet(frames: Sequence[Image.Image], path: Path) -> None:
    """Write `frames` as a near-square JPEG grid of tiles, in order, atomically."""
    if not frames:
        raise ValueError("a spritesheet needs at least one frame")
    tiles = [make_tile(frame) for frame in frames]
    tile_width = max(tile.width for tile in tiles)
    tile_height = max(tile.height for tile in tiles)
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height))
    for position, tile in enumerate(tiles):
        row, column = divmod(position, columns)
        sheet.paste(tile, (column * tile_width, row * tile_height))
    _save_atomically(sheet, path, "JPEG", quality=82)


def previews_from_mp4(video: Path, thumbnail: Path, spritesheet: Path) -> None:
    """Decode `video` once and write its thumbnail and spritesheet.

    Frames are sampled evenly using the stream's frame count (counted from packets when the
    container does not say), and only the sampled ones are kept.
    """
    frame_count = _count_frames(video)
    wanted = set(sample_indices(frame_count))
    thumbnail_at = thumbnail_index(frame_count)
    tiles: list[Image.Image] = []
    thumbnail_frame: Image.Image | None = None
    last_frame: av.VideoFrame | None = None
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            last_frame = frame
            if index == thumbnail_at:
                thumbnail_frame = fit_within(frame_to_image(frame), THUMBNAIL_MAX_SIDE)
            if index in wanted:
                tiles.append(make_tile(frame_to_image(frame)))
    if last_frame is None:
        raise ValueError(f"{video} has no decodable video frames")
    if thumbnail_frame is None:  # the container over-reported its frame count
        thumbnail_frame = frame_to_image(last_frame)
    if not tiles:
        tiles.append(make_tile(frame_to_image(last_frame)))
    write_thumbnail(thumbnail_frame, thumbnail)
    write_spritesheet(tiles, spritesheet)


def _count_frames(video: Path) -> int:
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise ValueError(f"{video} has no video stream")
        stream = container.streams.video[0]
        if stream.frames > 0:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _save_atomically(image: Image.Image, path: Path, image_format: str, **params: int) -> None:
    """Save next to `path` then rename, so a reader never sees a half-written preview."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        image.save(partial, format=image_format, **params)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
