"""The reference image a clip grows out of, decoded once into a frame of the clip's size."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from vidrelay.render.spec import InvalidReferenceImage
from vidrelay.render.yuv import Planes, planes_from_rgb

_REFERENCE_FORMATS = ("JPEG", "PNG", "WEBP")


def reference_planes(data: bytes, width: int, height: int) -> Planes:
    """Decode, orient and cover-crop (centred) the reference image to the frame size.

    Transparent areas are composited over black. Raises InvalidReferenceImage for anything
    that is not a decodable JPEG, PNG or WebP.
    """
    try:
        with Image.open(io.BytesIO(data), formats=_REFERENCE_FORMATS) as opened:
            opened.draft("RGB", (width, height))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidReferenceImage(
            "the reference image could not be decoded (expected JPEG, PNG or WebP)"
        ) from error
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        backdrop = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(backdrop, image.convert("RGBA"))
    fitted = ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.BICUBIC)
    return planes_from_rgb(np.asarray(fitted, dtype=np.float32) / 255.0)
