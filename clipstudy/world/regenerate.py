"""Regenerate the class table (classes.tsv) from Unicode's candidates, keeping only the emoji
that every required art style can draw. A maintenance tool: rendering them all takes about 5 s.

    python -c "from clipstudy.world.regenerate import write_table; print(write_table())"

It sits above both classes.py (the table and its candidates) and styles.py (the art that
decides which candidates stay), so neither imports the other's way back.
"""

from __future__ import annotations

from pathlib import Path

from clipstudy.world.classes import COLUMNS, TABLE, _table, candidate_classes
from clipstudy.world.styles import STYLES


def write_table(path: Path = TABLE) -> dict[str, list[str]]:
    """Regenerate classes.tsv: candidates that every required style draws. Returns the dropped
    keys per style (a class missing from several styles is listed under each)."""
    rows = candidate_classes()
    dropped: dict[str, list[str]] = {}
    for style in (s for s in STYLES.values() if s.required):
        missing = [r.key for r in rows if style.render(r, 32) is None]
        dropped[style.name] = missing
    gone = {k for keys in dropped.values() for k in keys}
    kept = [r for r in rows if r.key not in gone]
    lines = ["\t".join(COLUMNS)]
    for r in kept:
        lines.append("\t".join([r.key, r.char, r.name, r.group, r.subgroup, ";".join(r.synonyms)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _table.cache_clear()
    return dropped
