"""Text as instanced glyph quads: one signed-distance-field atlas (VisPy's bundled OpenSans, rasterised by
freetype, distance field by VisPy's CPU kernel), laid out here on the CPU into per-glyph instances.

VisPy's TextVisual is one visual (one draw call) per text object; a viewer with hundreds of labels
wants them all in one buffer instead.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from cnnvis.layout._pack import shelf_pack

__all__ = ["GlyphAtlas", "glyph_atlas", "layout_text", "text_width", "ink_box", "GLYPH_DTYPE"]

GLYPH_DTYPE = np.dtype([("a_anchor", np.float32, 2), ("a_quad", np.float32, 4), ("a_uv", np.float32, 4),
                        ("a_size", np.float32), ("a_color", np.float32, 4)])
_CHARS = "".join(chr(i) for i in range(32, 127)) + "\u00b7\u00d7\u2013\u2265\u25b8\u2026\u2192\u2212\u2264"
_HIRES, _RATIO, _SPREAD = 256, 4, 32   # raster size, down-sampling, distance-field spread (hi-res px)


@dataclass(frozen=True)
class GlyphAtlas:
    """image (H, W) uint8 distance field (128 = outline); per char: quad in em (x0, y0, x1, y1, y up from
    the baseline), uv (u0, v0, u1, v1), advance in em."""
    image: np.ndarray
    quad: dict
    uv: dict
    advance: dict


@functools.lru_cache(maxsize=1)
def glyph_atlas() -> GlyphAtlas:
    """The atlas, from the user's cache when an earlier process made it with the same VisPy and settings
    (rasterising ~100 glyphs and their distance fields takes ~1.2 s, a third of opening a big model), else
    made here and cached (${XDG_CACHE_HOME:-~/.cache}/cnnvis/glyphs-KEY.npz; CNNVIS_CACHE overrides the
    folder). An unreadable or unwritable cache only costs the time."""
    path = _cache_path()
    if path is not None:
        try:
            return _read_atlas(path)
        except (OSError, KeyError, ValueError):
            pass
    atlas = _make_atlas()
    if path is not None:
        try:
            _write_atlas(path, atlas)
        except OSError:
            pass
    return atlas


def _cache_path():
    import hashlib
    import os
    from pathlib import Path

    import vispy

    folder = os.environ.get("CNNVIS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "cnnvis")
    key = hashlib.sha1(repr((1, vispy.__version__, _CHARS, _HIRES, _RATIO, _SPREAD)).encode()).hexdigest()[:16]
    return Path(folder) / f"glyphs-{key}.npz"


def _read_atlas(path) -> GlyphAtlas:
    with np.load(path, allow_pickle=False) as z:
        chars, image = str(z["chars"]), z["image"]
        quad, uv, advance = z["quad"], z["uv"], z["advance"]
    if image.dtype != np.uint8 or image.ndim != 2 or quad.shape != (len(chars), 4) or uv.shape != quad.shape \
            or advance.shape != (len(chars),):
        raise ValueError(f"{path}: not a glyph atlas")
    return GlyphAtlas(image, {c: tuple(map(float, q)) for c, q in zip(chars, quad)},
                      {c: tuple(map(float, u)) for c, u in zip(chars, uv)},
                      {c: float(a) for c, a in zip(chars, advance)})


def _write_atlas(path, atlas: GlyphAtlas) -> None:
    from cnnvis._atomic import atomic_write

    chars = "".join(atlas.quad)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, chars=np.array(chars), image=atlas.image,
                                           quad=np.array([atlas.quad[c] for c in chars], np.float64),
                                           uv=np.array([atlas.uv[c] for c in chars], np.float64),
                                           advance=np.array([atlas.advance[c] for c in chars], np.float64)))


def _make_atlas() -> GlyphAtlas:
    from vispy.util.fonts import _load_glyph            # freetype-py, VisPy's bundled OpenSans
    from vispy.visuals.text.text import SDFRendererCPU  # compiled distance-field kernel

    font = dict(face="OpenSans", size=_HIRES, bold=False, italic=False)
    renderer = SDFRendererCPU()
    glyphs: dict = {}
    tiles = []
    for ch in _CHARS:
        try:
            _load_glyph(font, ch, glyphs)
        except Exception:  # a char missing from the font: it renders as "?"
            continue
        g = glyphs[ch]
        bmp = g["bitmap"]
        data = np.zeros((bmp.shape[0] + 2 * _SPREAD, bmp.shape[1] + 2 * _SPREAD), np.uint8)
        if bmp.size:
            data[_SPREAD:-_SPREAD, _SPREAD:-_SPREAD] = bmp
        w, h = data.shape[1] // _RATIO, data.shape[0] // _RATIO
        tile = np.zeros((h, w, 3), np.uint8)
        renderer.render_to_texture(data, tile, (0, 0), (w, h))
        tiles.append((ch, tile[..., 0], g))
    # Shelf packing, rows of 512 px.
    # Shelves 512 texels wide, glyphs and shelves 1 texel apart (also after the last of each).
    width = 512
    xs, ys, total = shelf_pack([t.shape[1] for _, t, _ in tiles], [t.shape[0] for _, t, _ in tiles], width - 1, 1)
    places = list(zip(xs.astype(int), ys.astype(int)))
    height = int(total) + 1
    image = np.zeros((height, width), np.uint8)
    quad, uv, advance = {}, {}, {}
    for (ch, tile, g), (x, y) in zip(tiles, places):
        h, w = tile.shape
        image[y:y + h, x:x + w] = tile
        left, top = g["offset"]
        quad[ch] = ((left - _SPREAD) / _HIRES, (top + _SPREAD - h * _RATIO) / _HIRES,
                    (left - _SPREAD + w * _RATIO) / _HIRES, (top + _SPREAD) / _HIRES)
        uv[ch] = (x / width, y / height, (x + w) / width, (y + h) / height)
        advance[ch] = g["advance"] / _HIRES
    return GlyphAtlas(image, quad, uv, advance)


def text_width(text: str, size: float) -> float:
    """Advance width of a string in pixels at a font size in pixels."""
    return size * _em_width(str(text))


@functools.lru_cache(maxsize=8192)
def _em_width(text: str) -> float:
    # the panel and overlay measure the same few hundred strings every frame of a camera flight
    a = glyph_atlas()
    return sum(a.advance.get(ch, a.advance["?"]) for ch in text)


def ink_box(text: str, x: float, y: float, size: float) -> tuple:
    """Canvas box (x0, y0, x1, y1) of the ink of `text` drawn with its baseline-left at (x, y): the advance
    width across, the glyphs' own extent up and down (less the distance field's margin)."""
    a = glyph_atlas()
    pad = _SPREAD / _HIRES
    quads = [a.quad.get(ch, a.quad["?"]) for ch in str(text) if ch != " "] or [(0.0, 0.0, 0.0, 0.0)]
    lo = min(q[1] for q in quads) + pad
    hi = max(q[3] for q in quads) - pad
    return (x, y + size * min(lo, 0.0), x + text_width(text, size), y + size * max(hi, 0.0))


def layout_text(texts, anchors, sizes, colors) -> np.ndarray:
    """Glyph instances (GLYPH_DTYPE) for strings at left-baseline anchors; spaces emit no instance."""
    a = glyph_atlas()
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    sizes = np.broadcast_to(np.asarray(sizes, np.float32), (len(anchors),))
    colors = np.broadcast_to(np.asarray(colors, np.float32).reshape(-1, 4), (len(anchors), 4))
    quads, uvs, idx = [], [], []
    for i, text in enumerate(texts):
        pen = 0.0
        for ch in str(text):
            if ch not in a.quad:
                ch = "?"
            if ch != " ":
                x0, y0, x1, y1 = a.quad[ch]
                quads.append((x0 + pen, y0, x1 + pen, y1))
                uvs.append(a.uv[ch])
                idx.append(i)
            pen += a.advance[ch]
    out = np.zeros(len(idx), GLYPH_DTYPE)
    if idx:
        idx = np.asarray(idx)
        out["a_anchor"] = anchors[idx]
        out["a_quad"] = quads
        out["a_uv"] = uvs
        out["a_size"] = sizes[idx]
        out["a_color"] = colors[idx]
    return out
