"""Rendering glyphs from system fonts into 28×28 grey images: the pretraining data of ``pecft-vit-glyphs``
(``tools/pretrain_vit_glyphs.py``) and the rendered domains of ``five_domains`` (``tools/build_vision_streams.py``).

Two pipelines, deliberately different so that a rendered stream does not share the pretraining's look:

``"pretraining"``
    glyph drawn at 48 px with a random stroke width (0–2 px) and rotation (±12°), cropped to its ink, fitted into a
    random box of 16–22 px (aspect kept), centred by its centre of mass in 28×28 — MNIST's own normalisation
    (LeCun et al. 1998: 20×20 box, centre of mass);
``"stream"``
    glyph drawn at 96 px without stroke or rotation, cropped to its ink and scaled (aspect kept) until its longer
    side is 26 px, centred by its box — the look of notMNIST (Bulatov 2011), whose letters fill the frame.

Images are white ink on black, ``uint8``.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image, ImageDraw, ImageFont

SIZE = 28


@functools.lru_cache(maxsize=None)
def font_faces(path: str) -> int:
    """Number of faces in a font file (``.ttc`` collections hold several)."""
    return len(TTCollection(path).fonts) if path.endswith(".ttc") else 1


@functools.lru_cache(maxsize=None)
def covered_codepoints(path: str, index: int = 0) -> frozenset[int]:
    """The code points that face ``index`` of the font file ``path`` maps to a glyph."""
    font = TTCollection(path).fonts[index] if path.endswith(".ttc") else TTFont(path, lazy=True)
    return frozenset(font.getBestCmap() or {})


@functools.lru_cache(maxsize=None)
def _font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=size, index=index)


def _draw(char: str, path: str, index: int, size: int, stroke: int) -> Image.Image | None:
    font = _font(path, index, size)
    canvas = Image.new("L", (3 * size, 3 * size), 0)
    ImageDraw.Draw(canvas).text((size, size), char, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    box = canvas.getbbox()
    return None if box is None else canvas.crop(box)


def _centre_of_mass_paste(glyph: np.ndarray) -> np.ndarray:
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    h, w = glyph.shape
    mass = glyph.sum()
    cy = (glyph.sum(1) * np.arange(h)).sum() / mass
    cx = (glyph.sum(0) * np.arange(w)).sum() / mass
    top = int(np.clip(round(SIZE / 2 - cy), 0, SIZE - h))
    left = int(np.clip(round(SIZE / 2 - cx), 0, SIZE - w))
    out[top:top + h, left:left + w] = glyph
    return out


def render(char: str, path: str, index: int = 0, *, pipeline: str, rng: np.random.Generator) -> np.ndarray | None:
    """``char`` in face ``index`` of font ``path`` as a ``uint8 [28, 28]`` image by ``pipeline`` (module
    docstring), or ``None`` when the font draws no ink for it. ``rng`` draws the random stroke, rotation and box."""
    if pipeline == "pretraining":
        glyph = _draw(char, path, index, 48, int(rng.integers(0, 3)))
        if glyph is None:
            return None
        glyph = glyph.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR, expand=True)
        glyph = glyph.crop(glyph.getbbox())
        target = int(rng.integers(16, 23))
        scale = target / max(glyph.size)
        size = (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale)))
        small = np.asarray(glyph.resize(size, Image.LANCZOS), dtype=np.float32)
        out = _centre_of_mass_paste(small)
    elif pipeline == "stream":
        glyph = _draw(char, path, index, 96, 0)
        if glyph is None:
            return None
        scale = 26 / max(glyph.size)
        w, h = max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))
        small = np.asarray(glyph.resize((w, h), Image.BOX), dtype=np.float32)
        out = np.zeros((SIZE, SIZE), dtype=np.float32)
        top, left = (SIZE - h) // 2, (SIZE - w) // 2
        out[top:top + h, left:left + w] = small
    else:
        raise ValueError(f"unknown pipeline {pipeline!r}; use 'pretraining' or 'stream'")
    return np.clip(out, 0, 255).round().astype(np.uint8)


def is_letter(codepoint: int) -> bool:
    """A letter (Unicode category L*), excluding digits, marks, punctuation and symbols."""
    return unicodedata.category(chr(codepoint)).startswith("L")


def font_files(folder: Path, prefixes: tuple[str, ...]) -> list[tuple[str, int]]:
    """(path, face index) of every font in ``folder`` whose file name starts with one of ``prefixes``
    followed by ``-`` (so ``NotoSansThai`` does not pick up ``NotoSansThaana``), sorted."""
    faces = []
    for path in sorted(folder.glob("*")):
        if path.suffix in {".ttf", ".otf", ".ttc"} and path.name.split("-")[0] in prefixes:
            faces += [(str(path), i) for i in range(font_faces(str(path)))]
    return faces
