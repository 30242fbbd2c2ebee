"""Fixtures shared by several test files."""

import shutil
from pathlib import Path

import pytest

from clipstudy import book
from clipstudy.profiles import PROFILES
from clipstudy.world import WorldConfig, build_world


@pytest.fixture(scope="session")
def smoke_book_copy(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The book's sources copied outside the repository, with every notebook executed into it at
    the smoke profile through clipstudy.book (once per session: tests/test_book.py checks the
    notebooks, tests/test_browser.py the HTML built from them) -> (root of the copy, notebooks)."""
    root, tmp = book.ROOT, tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(root / name, tmp / name)
    (tmp / "book").mkdir()
    for md in (root / "book").glob("*.md"):
        shutil.copy(md, tmp / "book" / md.name)
    shutil.copytree(root / "docs", tmp / "docs")  # book/data.md includes docs/data-card.md
    if (root / "book" / "js").is_dir():  # widget JavaScript already fetched: no npm call
        shutil.copytree(root / "book" / "js", tmp / "book" / "js")
    world = tmp / "world"
    build_world(WorldConfig(**PROFILES["smoke"]["world"]), world, progress=False)
    done = book.execute("smoke", str(world), root=root, out_dir=tmp / "book", parameters={"runs_dir": str(tmp / "runs")})
    return tmp, done
