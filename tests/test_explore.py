"""The explorers (clipstudy.explore): their pure parts, and each widget on a tiny trained run,
with its callbacks driven from Python as a live kernel would (~15 s)."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipstudy import explore
from clipstudy.config import from_dict
from clipstudy.data import load_pairs, load_suite
from clipstudy.evaluate import image_features, text_features
from clipstudy.profiles import PROFILES
from clipstudy.records import read_metrics
from clipstudy.store import load_run
from clipstudy.train import TrainConfig, train


def test_matching_needs_every_word():
    captions = ["a cat on a red background", "a dog", "A red Cat"]
    assert explore.matching(captions, "red cat") == [0, 2]
    assert explore.matching(captions, "") == [0, 1, 2]


def test_nearest_ranks_by_cosine_similarity():
    feats = torch.eye(8)  # image i points along axis i
    caption = F.normalize(torch.tensor([0, 0, 0, 0.4, 0, 0, 0, 0.9]), dim=-1)
    idx, sims = explore.nearest(feats, caption, k=3)
    assert idx[:2] == [7, 3] and sims == sorted(sims, reverse=True)
    assert sims[0] == pytest.approx(0.9 / (0.4 ** 2 + 0.9 ** 2) ** 0.5)


def test_png_uri_round_trips():
    import base64
    import io

    from PIL import Image

    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    data = base64.b64decode(explore.png_uri(img).removeprefix("data:image/png;base64,"))
    assert (np.asarray(Image.open(io.BytesIO(data))) == img).all()


@pytest.fixture(scope="module")
def tiny_run(tiny_world, tmp_path_factory):
    """The shared tiny world (tests/conftest.py: 1,024 pairs, 64 retrieval images) and a run of the
    smoke profile's model trained for three steps (~5 s)."""
    tmp = tmp_path_factory.mktemp("explore")
    world = tiny_world
    cfg = from_dict(TrainConfig, {**PROFILES["smoke"]["train"], "data": str(world), "out": str(tmp / "run"),
                                  "samples": 192, "batch_size": 64, "warmup": 64, "log_every": 1})
    summary = train(cfg, progress=False)
    run = {"dir": tmp / "run", "config": {}, "summary": summary, "metrics": read_metrics(tmp / "run"),
           "eval": {"id/top1": 0.05, "eval_seconds": 1.0}}
    return world, run


def _captions(grid_html: str) -> list[str]:
    return re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", grid_html)


def test_caption_search_shows_the_closest_images(tiny_run):
    world, run = tiny_run
    suite = load_suite(world / "suites" / "retrieval")
    caption = suite.captions[3][0]
    box, note, grid = explore.caption_search(run["dir"], world, k=5, caption=caption).children

    model, tokenizer, _ = load_run(run["dir"])  # the same ranking, computed here
    sims = image_features(model, suite.images) @ text_features(model, tokenizer, [caption])[0]
    best = int(sims.argmax())
    shown = _captions(grid.value)
    assert len(shown) == 5 and shown[0] == f"{float(sims[best]):.2f} · {suite.captions[best][0]}"
    assert "closest 5 of 64 images in suite 'retrieval'" in note.value

    box.value = suite.captions[9][0]  # typing a new caption searches again
    assert _captions(grid.value) != shown


def test_caption_search_on_a_classification_suite_names_classes(tiny_run):
    world, run = tiny_run
    from clipstudy.data import load_world_info

    names = load_world_info(world)["classes"]["names"]
    _, _, grid = explore.caption_search(run["dir"], world, suite="id", k=3).children
    assert all(c.split(" · ", 1)[1] in names for c in _captions(grid.value))


def test_world_browser_pages_and_filters(tiny_run):
    world, _ = tiny_run
    controls, status, grid = explore.world_browser(world, per_page=12).children
    query, page = controls.children
    assert status.value == "1,024 of 1,024 training pairs; page 1 of 86" and len(_captions(grid.value)) == 12
    page.value = 2
    assert "page 2 of 86" in status.value
    query.value = "cat"  # a new filter starts again at page 1
    assert page.value == 1 and _captions(grid.value) and all("cat" in c.lower() for c in _captions(grid.value))
    assert status.value.startswith(f"{len(explore.matching(load_pairs(world).captions, 'cat')):,} of 1,024")


def test_run_curves_switches_runs(tiny_run):
    _, run = tiny_run
    other = {**run, "dir": run["dir"].with_name("other"), "metrics": [{"samples": 0, "loss": 9.0}, {"samples": 10, "loss": 1.0}]}
    pick, card = explore.run_curves([run, other]).children
    assert "<svg" in card.value and "id/top1 (%)" in card.value and "eval_seconds" not in card.value
    assert "polyline" in card.value and [label for label, _ in pick.options] == ["run", "other"]
    pick.value = 1
    assert card.value == explore.run_card(other)
