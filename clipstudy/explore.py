"""ipywidgets explorers of a world and its runs, for a live Jupyter session.

    from clipstudy.explore import world_browser, caption_search, run_curves
    world_browser("data/worlds/default")
    caption_search(run["dir"], "data/worlds/default")  # run = store.train_or_load(...)
    run_curves([run, other_run])

Each explorer opens already showing something (the first page of pairs, a caption searched, the
first run), because that saved state is what the book shows: its pages have no kernel, so there
the controls do not respond. Images and curves travel inside HTML widgets as data-URI PNGs and
inline SVG, which the book's static widget embedding renders as they are.

Cost: caption_search computes the suite's image features once (~2 s for the default world's
5,000 retrieval images on 2 cores); each search is then one caption through the text tower.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from clipstudy.data import load_pairs, load_suite, load_world_info
from clipstudy.evaluate import image_features, text_features
from clipstudy.store import load_run

THUMB_PX = 96  # shown size of an image; 32 px worlds are upscaled with visible pixels, as the model sees them


def png_uri(image: np.ndarray) -> str:
    """uint8 [H, W, 3] -> a data: URI of its PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def thumbs(images: np.ndarray, captions: list[str], size: int = THUMB_PX) -> str:
    """An HTML grid of images, each with its caption below."""
    cells = [f'<figure style="width:{size}px;margin:0 6px 10px 0">'
             f'<img src="{png_uri(img)}" width="{size}" height="{size}" style="image-rendering:pixelated">'
             f'<figcaption style="font-size:11px;line-height:1.2">{html.escape(c)}</figcaption></figure>'
             for img, c in zip(images, captions)]
    return f'<div style="display:flex;flex-wrap:wrap">{"".join(cells)}</div>'


def matching(captions: list[str], query: str) -> list[int]:
    """Indices of the captions holding every word of `query` (case-insensitive); all for ''."""
    words = query.lower().split()
    return [i for i, c in enumerate(captions) if all(w in c.lower() for w in words)]


def world_browser(world_dir: str | Path, per_page: int = 12):
    """Pages of a world's training pairs, filtered by words in their captions."""
    pairs = load_pairs(world_dir)
    query = widgets.Text(description="caption has", placeholder="e.g. cat striped", continuous_update=False)
    page = widgets.BoundedIntText(value=1, min=1, max=1, description="page", layout={"width": "160px"})
    status, grid = widgets.Label(), widgets.HTML()

    def show(_=None):
        hits = matching(pairs.captions, query.value)
        page.max = max(1, math.ceil(len(hits) / per_page))
        shown = hits[(page.value - 1) * per_page:page.value * per_page]
        status.value = f"{len(hits):,} of {len(pairs):,} training pairs; page {page.value} of {page.max}"
        grid.value = thumbs(pairs.images[shown], [pairs.captions[i] for i in shown])

    def new_query(_):
        page.value = 1
        show()

    query.observe(new_query, names="value")
    page.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([query, page]), status, grid])


def nearest(image_feats: torch.Tensor, text_feat: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    """The k images closest to a caption: indices into `image_feats` [N, D] and their cosine
    similarities to `text_feat` [D] (both L2-normalised), best first."""
    top = (image_feats @ text_feat.reshape(-1)).topk(min(k, len(image_feats)))
    return top.indices.tolist(), top.values.tolist()


def caption_search(run_dir: str | Path, world_dir: str | Path, suite: str = "retrieval", k: int = 8,
                   caption: str | None = None):
    """Type a caption, see the k images of a world's suite that a run's model puts closest to it.
    Starts with `caption`, by default the first caption of the suite's first image."""
    model, tokenizer, _ = load_run(Path(run_dir))
    s = load_suite(Path(world_dir) / "suites" / suite)
    if s.captions is not None:  # retrieval suite: an image's first caption names it
        names = [c[0] for c in s.captions]
    else:
        classes = load_world_info(world_dir)["classes"]["names"]
        names = [classes[int(y)] for y in s.labels]
    feats = image_features(model, s.images)  # once: each search is one caption's text feature

    def search(text: str) -> str:
        idx, sims = nearest(feats, text_features(model, tokenizer, [text])[0], k)
        return thumbs(s.images[idx], [f"{sim:.2f} · {names[i]}" for i, sim in zip(idx, sims)])

    box = widgets.Text(value=caption or names[0], description="caption", continuous_update=False,
                       layout={"width": "60%"})
    note = widgets.Label(f"closest {k} of {len(s.images):,} images in suite '{suite}' (cosine similarity · "
                         f"{'its first caption' if s.captions is not None else 'its class'})")
    grid = widgets.HTML(search(box.value))
    box.observe(lambda change: setattr(grid, "value", search(change["new"])), names="value")
    return widgets.VBox([box, note, grid])


def svg_line(xs: list[float], ys: list[float], xlabel: str, ylabel: str, width: int = 460, height: int = 240) -> str:
    """A line chart as inline SVG: the curve, its axes and their end values."""
    left, bottom, pad = 56, 36, 12
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    px = [left + (x - x0) / ((x1 - x0) or 1) * (width - left - pad) for x in xs]
    py = [height - bottom - (y - y0) / ((y1 - y0) or 1) * (height - bottom - pad) for y in ys]
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
    axis = f'stroke="#888" x1="{left}" y1="{height - bottom}"'
    text = 'font-size="11" fill="#444"'
    return (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<line {axis} x2="{width - pad}" y2="{height - bottom}"/><line {axis} x2="{left}" y2="{pad}"/>'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{points}"/>'
            f'<text {text} x="{left}" y="{height - bottom + 14}">{x0:,.0f}</text>'
            f'<text {text} x="{width - pad}" y="{height - bottom + 14}" text-anchor="end">{x1:,.0f}</text>'
            f'<text {text} x="{(left + width) / 2}" y="{height - 4}" text-anchor="middle">{html.escape(xlabel)}</text>'
            f'<text {text} x="{left - 4}" y="{height - bottom}" text-anchor="end">{y0:.4g}</text>'
            f'<text {text} x="{left - 4}" y="{pad + 8}" text-anchor="end">{y1:.4g}</text>'
            f'<text {text} x="12" y="{(height - bottom) / 2}" transform="rotate(-90 12 {(height - bottom) / 2})" '
            f'text-anchor="middle">{html.escape(ylabel)}</text></svg>')


def _table(rows: dict[str, object]) -> str:
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right;padding-left:12px'>"
                    f"{v:,.4g}</td></tr>" if isinstance(v, (int, float)) else
                    f"<tr><td>{html.escape(k)}</td><td style='padding-left:12px'>{html.escape(str(v))}</td></tr>"
                    for k, v in rows.items())
    return f"<table style='font-size:12px;margin-right:24px'>{cells}</table>"


def run_card(run: dict) -> str:
    """One run (a store.train_or_load dict) as HTML: its loss curve, its summary, its evaluation in %."""
    curve = svg_line([m["samples"] for m in run["metrics"]], [m["loss"] for m in run["metrics"]], "samples", "loss")
    summary = {k: v for k, v in run["summary"].items() if k != "out"}
    evals = {f"{k} (%)": 100 * v for k, v in sorted(run["eval"].items()) if k != "eval_seconds"}
    return f'<div style="display:flex;flex-wrap:wrap;align-items:flex-start">{curve}{_table(summary)}{_table(evals)}</div>'


def run_curves(runs: list[dict]):
    """Pick one of `runs` (store.train_or_load dicts); see its loss curve, summary and evaluation."""
    pick = widgets.Dropdown(options=[(Path(r["dir"]).name, i) for i, r in enumerate(runs)], description="run")
    card = widgets.HTML(run_card(runs[0]))
    pick.observe(lambda change: setattr(card, "value", run_card(runs[change["new"]])), names="value")
    return widgets.VBox([pick, card])
