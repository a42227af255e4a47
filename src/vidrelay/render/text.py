"""The prompt's text panel: wrapped, sized to fit, drawn once with Pillow as a YUV overlay."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidrelay.render.fonts import prompt_font
from vidrelay.render.yuv import Overlay, even

_TEXT_PANEL_ALPHA = 150


def text_overlay(
    prompt: str, width: int, height: int, font_path: str | None = None
) -> tuple[Overlay, int, int] | None:
    """The prompt on a translucent panel in the lower part of the frame, with its position.

    None when the prompt is blank. The panel is drawn once per clip and blended per frame;
    `font_path` is a preferred font file (see `fonts.prompt_font` for the fallbacks).
    """
    text = " ".join(prompt.split())
    if not text:
        return None
    short_side = min(width, height)
    max_text_width = int(width * 0.84)
    max_text_height = int(height * 0.42)
    font, lines, line_height = _fit_text(
        text, short_side, max_text_width, max_text_height, font_path
    )
    padding = max(8, line_height // 2)
    panel_width = even(max(font.getlength(line) for line in lines) + 2 * padding + 1) + 2
    panel_height = even(line_height * len(lines) + 2 * padding) + 2
    panel = Image.new("RGBA", (panel_width, panel_height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(panel)
    draw.rounded_rectangle(
        (0, 0, panel_width - 1, panel_height - 1),
        radius=padding,
        fill=(0, 0, 0, _TEXT_PANEL_ALPHA),
    )
    stroke = max(1, line_height // 20)
    for number, line in enumerate(lines):
        draw.text(
            (panel_width / 2, padding + number * line_height),
            line,
            font=font,
            fill=(255, 255, 255, 255),
            anchor="mt",
            stroke_width=stroke,
            stroke_fill=(0, 0, 0, 255),
        )
    pixels = np.asarray(panel, dtype=np.float32) / 255.0
    overlay = Overlay.from_rgba(pixels[..., :3], pixels[..., 3])
    left = even((width - panel_width) / 2)
    top = even(max(0, height - int(height * 0.08) - panel_height))
    return overlay, left, top


def _fit_text(
    text: str, short_side: int, max_width: int, max_height: int, font_path: str | None
) -> tuple[ImageFont.FreeTypeFont, list[str], int]:
    """The largest font size (within a readable range) whose wrapped text fits the box.

    Text that does not fit even at the smallest size is cut with an ellipsis.
    """
    size = max(14, round(short_side * 0.055))
    smallest = max(12, round(short_side * 0.032))
    while True:
        font = prompt_font(text, size, font_path)
        line_height = round(size * 1.3)
        lines = _wrap(text, font, max_width)
        max_lines = max(1, max_height // line_height)
        if len(lines) <= max_lines:
            return font, lines, line_height
        if size <= smallest:
            return font, _ellipsize(lines[:max_lines], font, max_width), line_height
        size = max(smallest, round(size * 0.88))


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap; a word wider than a line is broken inside (CJK text has no spaces)."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        pieces = list(_break_word(word, font, max_width))
        lines.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        lines.append(current)
    return lines


def _break_word(word: str, font: ImageFont.FreeTypeFont, max_width: int) -> Iterable[str]:
    """Split a word wider than a line at the longest prefixes that fit (binary search)."""
    while len(word) > 1 and font.getlength(word) > max_width:
        fits, too_long = 1, len(word)
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if font.getlength(word[:middle]) <= max_width:
                fits = middle
            else:
                too_long = middle
        yield word[:fits]
        word = word[fits:]
    yield word


def _ellipsize(lines: list[str], font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    last = lines[-1]
    while last and font.getlength(f"{last}…") > max_width:
        last = last[:-1]
    return [*lines[:-1], f"{last.rstrip()}…"]


def cameo_overlay(
    still: Image.Image, name: str, width: int, height: int, font_path: str | None = None
) -> Overlay:
    """A character as it is drawn in: a still of its clip, framed, its name beneath."""
    box = even(min(width, height) * 0.28)
    picture = still.copy()
    picture.thumbnail((box, box))
    size = max(12, round(min(width, height) * 0.04))
    font = prompt_font(name, size, font_path)
    label = _ellipsize([name], font, box)[0] if font.getlength(name) > box else name
    padding = max(4, size // 3)
    card_width = even(max(picture.width, font.getlength(label)) + 2 * padding) + 2
    card_height = even(picture.height + round(size * 1.4) + 3 * padding) + 2
    card = Image.new("RGBA", (card_width, card_height), (0, 0, 0, _TEXT_PANEL_ALPHA))
    card.paste(picture, ((card_width - picture.width) // 2, padding))
    ImageDraw.Draw(card).text(
        (card_width / 2, picture.height + 2 * padding),
        label,
        font=font,
        fill=(255, 255, 255, 255),
        anchor="mt",
    )
    pixels = np.asarray(card, dtype=np.float32) / 255.0
    return Overlay.from_rgba(pixels[..., :3], pixels[..., 3])
