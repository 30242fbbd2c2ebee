"""EmojiWorld: image-caption pairs made of real emoji artwork, built offline from PyPI packages.

    from clipstudy.world import WorldConfig, build_world
    info = build_world(WorldConfig(pairs=10_000, classes=100), "data/worlds/small")

Modules: classes (the class table), styles (art sources, sprite cache), scenes (composition),
captions (grammar), noise (caption noise), build (the world folder), export (webdataset / HF / CSV).
"""

from clipstudy.world.build import WorldConfig, build_world
from clipstudy.world.classes import load_classes
from clipstudy.world.export import export_csv, export_hf, export_webdataset
from clipstudy.world.styles import STYLES, sprites

__all__ = ["WorldConfig", "build_world", "load_classes", "STYLES", "sprites", "export_webdataset", "export_hf", "export_csv"]
