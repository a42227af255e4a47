"""A reference image reaches every upstream at the video's size: cover-cropped (scaled to fill,
the overflow cut evenly), never stretched; one already that size is passed on untouched."""

from __future__ import annotations

import io

from PIL import Image

from vidrelay.media.reference_images import ReferenceImageChecker


def image_bytes(size: tuple[int, int], mode: str = "RGB", image_format: str = "PNG") -> bytes:
    """Left half blue, right half red (half transparent in RGBA)."""
    image = Image.new(mode, size, (255, 0, 0, 128) if mode == "RGBA" else (255, 0, 0))
    image.paste((0, 0, 255) if mode == "RGB" else (0, 0, 255, 128), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    image.save(out, image_format)
    return out.getvalue()


async def test_a_square_image_is_cropped_to_a_portrait_frame_not_stretched() -> None:
    fitted = await ReferenceImageChecker(40_000_000).fitted(
        image_bytes((100, 100)), "input_reference", (720, 1280)
    )
    with Image.open(io.BytesIO(fitted)) as image:
        assert (image.format, image.size) == ("JPEG", (720, 1280))
        rgb = image.convert("RGB")
        # the square filled the height (1280 px), so its sides were cut: both halves remain,
        # each 360 px wide
        assert rgb.getpixel((100, 640))[2] > 200 and rgb.getpixel((620, 640))[0] > 200


async def test_an_image_of_the_right_size_is_passed_on_byte_for_byte() -> None:
    original = image_bytes((1280, 720), image_format="WEBP")
    fitted = await ReferenceImageChecker(40_000_000).fitted(
        original, "input_reference", (1280, 720)
    )
    assert fitted == original


async def test_transparency_survives_as_png() -> None:
    fitted = await ReferenceImageChecker(40_000_000).fitted(
        image_bytes((64, 64), mode="RGBA"), "input_reference", (128, 64)
    )
    with Image.open(io.BytesIO(fitted)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (128, 64), "RGBA")
        assert image.getpixel((64, 32))[3] == 128
