"""Fixtures shared by several test files.

    tiny_world                        # the EmojiWorld most tests train or evaluate on (TINY_WORLDS["tiny"])
    small_world                       # a smaller one for tests that only read, export or score a pool
    make_world("small", noise_mismatch=0.3)   # another world: a preset (or a dict of WorldConfig fields) plus overrides

Each distinct world is built once per session and shared by every test that asks for it, so it
is read-only: a test that writes into a world folder builds its own in tmp_path (the session
fails at teardown if a shared world's files changed).

`make test` runs the files side by side in pytest-xdist processes (`-n auto`): each file runs
whole in one process, so that its module fixtures are built once, and the files of the smoke book
(`smoke_book_copy`, executed once) run in one process together (`pytest_xdist_make_scheduler`
below). Each process gets an equal share of the cores for torch, and trains a chapter's runs in
itself, one after another (tests that train side by side ask for it).
"""

import dataclasses
import os
import shutil
from pathlib import Path

# The suite runs on CPU wherever it runs (its resumes are bit-identical on CPU, its torchrun ranks
# use gloo): a GPU machine's devices are hidden before torch first looks for them, in this process
# and the ones it starts, unless CLIPSTUDY_TEST_GPU=1 keeps them for tests/test_gpu.py (`make test-gpu`).
if os.environ.get("CLIPSTUDY_TEST_GPU") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest  # noqa: E402

from clipstudy import book  # noqa: E402
from clipstudy.world import WorldConfig, build_world  # noqa: E402


# The EmojiWorld page's world in the smoke book the tests execute (`make book PROFILE=smoke` takes
# the default world; this one keeps the suite's book to seconds of world building)
SMOKE_BOOK_WORLD = {"pairs": 2_048, "classes": 60, "retrieval_images": 200, "probe_per_class": 12}


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
    build_world(WorldConfig(**SMOKE_BOOK_WORLD), world, progress=False)
    done = book.execute("smoke", str(world), root=root, out_dir=tmp / "book", parameters={"runs_dir": str(tmp / "runs")})
    return tmp, done


def pytest_configure(config):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:  # side-by-side test processes share the cores: torch's threads too
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ["OMP_NUM_THREADS"] = threads  # the subprocesses tests start inherit it
        # a chapter's runs one after another in the process (or notebook kernel) that asks for them,
        # not side by side in freshly spawned ones: its share of the cores is one process's
        os.environ.setdefault("CLIPSTUDY_WORKERS", f"1x{threads}")
        import torch

        torch.set_num_threads(int(threads))


# Files whose tests share the executed smoke book (`smoke_book_copy`, a session fixture): one process runs them all
SMOKE_BOOK_FILES = {"tests/test_book.py", "tests/test_browser.py"}
# The files that take longest (seconds in one xdist process on 2 cores: the smoke book ~430,
# reliability ~200, performance ~130), run first so that the short ones fill in around them
LONG_FILES = ["tests/test_book.py", "tests/test_browser.py", "tests/test_reliability.py", "tests/test_performance.py"]


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(items):
    def rank(item):
        file = _file(item.nodeid)
        return LONG_FILES.index(file) if file in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: each file's tests keep their order


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unused without it
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`-n`), each test file runs whole in one process, so its module fixtures
    are built once, and the files of the smoke book run in one process together, so it is executed
    once. (xdist's own `--dist loadgroup` marks do not reach its scheduler under pytest 9.2: it
    writes the group into `item._nodeid`, which pytest no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = _file(nodeid)
            return "smoke book" if file in SMOKE_BOOK_FILES else file

    return ByFile(config, log)


TINY_WORLDS = {
    # learns within a few hundred samples of vit-ti-8 (40-way zero-shot, 12-shot probe, 64-image retrieval)
    "tiny": {"classes": 40, "pairs": 1024, "retrieval_images": 64, "probe_per_class": 12},
    # a pool of 256 pairs and minimal suites, for tests that only read, export or score a pool
    "small": {"classes": 20, "pairs": 256, "retrieval_images": 16, "probe_per_class": 2},
}


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def make_world(tmp_path_factory):
    """make_world(base="tiny", **overrides) -> the folder of an EmojiWorld built with
    WorldConfig(**{**base, **overrides}) (`base`: a name in TINY_WORLDS or a dict of fields), built
    once per session per distinct config. Shared: do not write into it."""
    built: dict[str, Path] = {}

    def make(base: str | dict = "tiny", **overrides) -> Path:
        cfg = WorldConfig(**{**(TINY_WORLDS[base] if isinstance(base, str) else base), **overrides})
        key = repr(dataclasses.asdict(cfg))
        if key not in built:
            out = tmp_path_factory.mktemp("world") / "world"
            build_world(cfg, out, progress=False)
            built[key] = out
            files[out] = _files(out)
        return built[key]

    files: dict[Path, dict] = {}
    yield make
    changed = {str(w): sorted(set(f.items()) ^ set(_files(w).items())) for w, f in files.items() if _files(w) != f}
    assert not changed, f"tests wrote into shared worlds (build your own in tmp_path to write): {changed}"


@pytest.fixture(scope="session")
def tiny_world(make_world) -> Path:
    return make_world("tiny")


@pytest.fixture(scope="session")
def small_world(make_world) -> Path:
    return make_world("small")
