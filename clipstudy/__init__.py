"""clipstudy: CLIP scaled down, re-run on an offline emoji world.

Layers (nothing imports upward): notebooks -> cli -> world / train / evaluate -> data / models / config.
"""

__version__ = "0.1.0"
