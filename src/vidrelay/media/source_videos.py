"""Uploaded videos (an edit's or extension's source, a character's clip): checked to be an MP4
with a video stream before anything is charged, and measured, since the length is priced."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import av

from vidrelay.domain.errors import InvalidRequest

_MP4_BRANDS = (b"ftyp",)


@dataclass(frozen=True)
class VideoInfo:
    seconds: float
    width: int
    height: int

    @property
    def whole_seconds(self) -> int:
        """The length rounded up to a whole second (at least 1): what is priced."""
        return max(1, math.ceil(self.seconds - 1e-6))


def probe_mp4(data: bytes, param: str) -> VideoInfo:
    """The length and frame size of an MP4 upload; a 400 naming `param` for anything else
    (another container, no video stream, a file that does not decode)."""
    if len(data) < 12 or data[4:8] not in _MP4_BRANDS:
        raise InvalidRequest(f"{param} must be an MP4 video file.", param=param)
    try:
        with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
            if not container.streams.video:
                raise InvalidRequest(f"{param} has no video stream.", param=param)
            stream = container.streams.video[0]
            seconds = _duration(container, stream)
            width, height = stream.width, stream.height
    except av.FFmpegError as error:
        raise InvalidRequest(f"{param} is not a readable MP4 video.", param=param) from error
    if seconds <= 0 or width <= 0 or height <= 0:
        raise InvalidRequest(f"{param} is an empty video.", param=param)
    return VideoInfo(seconds, width, height)


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0
