"""Frames taken from existing videos: a source a render extends or edits, and a still of a
character's clip."""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np
from PIL import Image

from vidrelay.media.previews import frame_to_image
from vidrelay.render.yuv import Bytes


def source_frames(path: str, width: int, height: int, fps: int, count: int) -> Iterator[Bytes]:
    """`count` frames at `fps` from the video at `path`, each scaled to `width`x`height` as a
    packed yuv420p array (what `Planes.packed` holds). Decoded as they are needed, one frame
    held at a time; the last frame repeats when the video is shorter. Raises ValueError for a
    video without a frame."""
    with av.open(path) as container:
        decoded = container.decode(container.streams.video[0])
        upcoming = next(decoded, None)
        if upcoming is None:
            raise ValueError("the source video has no frame")
        current, converted = upcoming, None
        for index in range(count):
            moment = index / fps
            while upcoming is not None and (upcoming.time or 0.0) <= moment + 1e-6:
                current, converted = upcoming, None
                upcoming = next(decoded, None)
            if converted is None:
                converted = current.reformat(
                    width=width, height=height, format="yuv420p"
                ).to_ndarray()
            yield np.ascontiguousarray(converted)


def middle_still(path: str) -> Image.Image:
    """The frame halfway through the video at `path`, as an RGB image."""
    with av.open(path) as container:
        half = (container.duration or 0) / av.time_base / 2
        still = None
        for frame in container.decode(container.streams.video[0]):
            still = frame
            if (frame.time or 0.0) >= half:
                break
        if still is None:
            raise ValueError("the character's clip has no frame")
        return frame_to_image(still).convert("RGB")
