"""The findings page: every claim of the two papers, tested on the chapters' recorded runs.

    world, tables, verdicts = findings.gather(profile, study_world, runs_dir)  # one verdict per claim
    findings.corrected(verdicts)    # + Holm and Benjamini-Hochberg standing over the book's claims
    findings.table(verdicts)        # one row per claim: quote, source, test, effect, interval, n, verdict
    findings.table_html(verdicts)   # the same, as the page shows it (chapter links)
    findings.plot(verdicts)         # every effect with its interval, coloured by verdict
    findings.chance_line(verdicts)  # how many decisive verdicts chance alone would give
    findings.discussion(verdicts, tables)
    findings.precision_line(tables)  # the runs' precision; a chapter's verdicts in fp32 vs bf16, where measured

It reads every chapter's runs from the store (`study.chapter_table`, `quality_chapter.quality_table`,
`costs.throughput`): executed after the chapters, it trains nothing.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from clipstudy import chapters, claims, costs, quality_chapter, study
from clipstudy.verdicts import BEYOND, DECISIVE, EQUIVALENT, FAILS, FLOOR, HOLDS, INCONCLUSIVE, effect_text
from clipstudy.worlds import chance

ALPHA = 0.05
COLOURS = {HOLDS: "#2a9d4b", EQUIVALENT: "#2a7fb8", FAILS: "#d1495b", INCONCLUSIVE: "#8d8d8d", FLOOR: "#e3a21a",
           BEYOND: "#6d4c9f"}


def tables(profile: str, study_world: str = "", runs_dir: str | Path = "data/runs") -> tuple[Path, dict, float]:
    """Each chapter's tidy table (the data-quality chapter's at its main noise rate), the throughput
    benchmark's rows under "throughput", the study world and its chance level."""
    out = {}
    for name in chapters.CHAPTERS:
        world, out[name] = study.chapter_table(profile, name, study_world, runs_dir)
    _, quality, _ = quality_chapter.quality_table(profile, study_world, runs_dir)  # its world is the noisy copy
    out["data_quality"] = quality_chapter.main_rate(quality, profile)
    out["throughput"] = costs.throughput()
    return world, out, chance(world)


def gather(profile: str, study_world: str = "", runs_dir: str | Path = "data/runs") -> tuple[Path, dict, list[dict]]:
    """The study world, the chapters' tables (`tables`) and the verdict of every claim of the papers
    (not our own checks), in the registry's order."""
    world, by_chapter, level = tables(profile, study_world, runs_dir)
    out = []
    for chapter in dict.fromkeys(c.chapter for c in claims.CLAIMS):  # the registry groups its claims by chapter
        out += claims.verdicts_of(chapter, by_chapter[chapter], level, ours=False)
    return world, by_chapter, out


def _holm(p: np.ndarray, alpha: float) -> np.ndarray:
    order = np.argsort(p)
    keep = np.zeros(len(p), bool)
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        keep[i] = True
    return keep


def corrected(verdicts: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Each verdict with `holm` and `bh`: whether a decisive verdict survives Holm's family-wise
    correction and Benjamini-Hochberg's false-discovery correction at `alpha`, over every claim
    tested with a p-value (beyond-our-scale claims are not tested; floor-limited and inconclusive
    ones count in the family, as tests that were run)."""
    tested = [i for i, v in enumerate(verdicts) if v["verdict"] != BEYOND and not math.isnan(v.get("p", math.nan))]
    p = np.array([verdicts[i]["p"] for i in tested])
    holm = _holm(p, alpha) if len(p) else np.array([], bool)
    bh = stats.false_discovery_control(p, method="bh") <= alpha if len(p) else np.array([], bool)
    out = [{**v, "holm": "–", "bh": "–"} for v in verdicts]
    for j, i in enumerate(tested):
        if verdicts[i]["verdict"] in DECISIVE:
            out[i]["holm"] = "stands" if holm[j] else "falls"
            out[i]["bh"] = "stands" if bh[j] else "falls"
    return out


def chance_line(verdicts: list[dict], alpha: float = ALPHA) -> str:
    """How many decisive verdicts chance alone would give if every tested claim were truly null."""
    m = sum(v["verdict"] != BEYOND and not math.isnan(v.get("p", math.nan)) for v in verdicts)
    decisive = sum(v["verdict"] in DECISIVE for v in verdicts)
    upper = int(stats.binom.ppf(0.95, m, alpha)) if m else 0
    return (f"**{decisive}** of the {len(verdicts)} claims got a decisive verdict (holds, does not hold or equivalent). "
            f"{m} were tested with a p-value; were every one of them truly null, chance alone would give "
            f"{alpha * m:.1f} decisive verdicts on average ({ALPHA:.0%} each), and at most {upper} in 95% of books "
            f"(binomial). The last two columns say which decisive verdicts stand after correcting for testing "
            f"{m} claims at once: Holm (family-wise error) and Benjamini-Hochberg (false discovery rate), at {alpha:g}.")


def table(verdicts: list[dict]) -> pd.DataFrame:
    """One row per claim: the claim, the paper's words, source, our test (and whether it is faithful
    to the seed), the effect with its 95% interval and n, the verdict and its corrected standing,
    and the chapter page that tests it."""
    rows = []
    for v in verdicts:
        magnitude = v.get("magnitude", v)
        paper = v.get("paper_effect")
        inside = ("–" if paper is None or magnitude["n"] < 2 else
                  "inside" if magnitude["low"] <= paper <= magnitude["high"] else "outside")
        rows.append({"claim": v["claim"], "paper's words": f"“{v['quote']}”", "source": v["source"],
                     "test": f"{v['kind']}: {v['test']}", "faithful to the seed": v["faithful"],
                     "effect (95% interval, n)": effect_text(v), "verdict": v["verdict"],
                     "at chance": "; ".join(v.get("floor", [])) or "–",
                     "paper's magnitude": "–" if paper is None else f"{paper:+g} ({inside} our interval)",
                     "Holm": v.get("holm", "–"), "BH": v.get("bh", "–"),
                     "chapter": v["page"]})
    return pd.DataFrame(rows)


def table_html(verdicts: list[dict]) -> str:
    """`table` as the page shows it, in four columns a page can hold: the claim over the paper's words and
    source; our test over whether it is faithful; the effect (and the paper's magnitude); the verdict,
    the cells at chance, its Holm / BH standing and a link to the chapter's Verdict section. Text escaped."""
    e = html.escape
    rows = []
    for row in table(verdicts).to_dict("records"):
        words, magnitude, page = row["paper's words"], row["paper's magnitude"], row["chapter"]
        floor = "" if row["at chance"] == "–" else f"<br>at chance: {e(row['at chance'])}"
        size = "" if magnitude == "–" else f"<br>paper: {e(magnitude)}"
        rows.append(
            f"<tr><td><b>{e(row['claim'])}</b><br>{e(words)} ({e(row['source'])})</td>"
            f"<td>{e(row['test'])}<br><i>faithful:</i> {e(row['faithful to the seed'])}</td>"
            f"<td>{e(row['effect (95% interval, n)'])}{size}</td>"
            f"<td><b>{e(row['verdict'])}</b>{floor}<br>Holm {e(row['Holm'])}, BH {e(row['BH'])}"
            f'<br><a href="{page}.html#verdict">{page}</a></td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("claim (the paper's words)", "our test", "effect",
                                             "verdict (Holm, BH; chapter)"))
    return (f'<table class="findings" style="font-size: 0.8em"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def runs(tables: dict) -> pd.DataFrame:
    """Every chapter's runs in one table (a run two chapters share appears in both)."""
    return pd.concat([t for name, t in tables.items() if name != "throughput"], ignore_index=True)


def plot(verdicts: list[dict]) -> go.Figure:
    """Every measured effect with its 95% interval, one row per claim, coloured by verdict; one panel
    per unit (points of accuracy, % of throughput, ...), as effects in different units do not share an axis."""
    measured = [v for v in verdicts if v["n"] >= 1 and not math.isnan(v["effect"])]
    units = list(dict.fromkeys(v.get("unit", "points") for v in measured))
    heights = [sum(v.get("unit", "points") == u for v in measured) for u in units]
    fig = make_subplots(rows=len(units), cols=1, row_heights=heights, vertical_spacing=0.08,
                        subplot_titles=[f"effect ({u})" for u in units])
    seen = set()
    for row, unit in enumerate(units, start=1):
        for v in (v for v in measured if v.get("unit", "points") == unit):
            low, high = (v["low"], v["high"]) if v["n"] >= 2 else (v["effect"], v["effect"])
            fig.add_trace(go.Scatter(
                x=[v["effect"]], y=[v["claim"]], mode="markers", marker=dict(color=COLOURS[v["verdict"]], size=9),
                error_x=dict(type="data", symmetric=False, array=[high - v["effect"]], arrayminus=[v["effect"] - low]),
                name=v["verdict"], legendgroup=v["verdict"], showlegend=v["verdict"] not in seen,
                hovertext=f"{v['key']}: {v['test']}<br>{effect_text(v)}<br>{v['verdict']}", hoverinfo="text"),
                row=row, col=1)
            seen.add(v["verdict"])
        fig.add_vline(x=0, line=dict(color="black", width=1), row=row, col=1)
        fig.update_yaxes(autorange="reversed", row=row, col=1)
    # one screen high, so a reader (and the browser check's 757-px window) sees it whole
    fig.update_layout(height=700, title="Every claim's effect at our scale (95% interval over seeds; "
                      "positive = the claim's direction)", margin=dict(l=20, r=20, t=80, b=40), font=dict(size=10))
    fig.update_yaxes(tickfont=dict(size=9), dtick=1)  # every claim named, none skipped
    return fig


def discussion(verdicts: list[dict], tables: dict) -> str:
    """By theme: which claims hold here, which do not, which could not be decided and which lie
    beyond our grid (names from the verdicts); then how our scale differs from the papers' (from
    the chapters' tables: samples seen, image size, epochs)."""
    lines = []
    for theme, heading in claims.THEMES.items():
        mine = [v for v in verdicts if v["theme"] == theme]
        if not mine:
            continue
        by = {word: [v["claim"] for v in mine if v["verdict"] == word] for word in COLOURS}
        said = "; ".join(f"**{word}** ({len(names)}): " + ", ".join(f"*{n}*" for n in names)
                         for word, names in by.items() if names)
        lines.append(f"- **{heading}** — {said}.")
    runs_ = runs(tables)
    lines.append(
        f"\n**Why our scale differs.** The papers train on hundreds of millions to billions of web pairs (A: up to 3.4B "
        f"WebLI samples; B: 24 epochs of CC3M's ~3M pairs); our runs see {int(runs_['samples'].min()):,} to "
        f"{int(runs_['samples'].max()):,} samples of the study world, {runs_['epochs'].min():g} to "
        f"{runs_['epochs'].max():g} epochs of their pool. Images are "
        f"{' and '.join(str(int(x)) for x in sorted(runs_['image_size'].unique()))} px, not 224, so a ViT sees a few "
        f"dozen tokens, not hundreds; captions are short sentences of a closed vocabulary, not web alt-text. A claim "
        f"that does not hold here says what a small CLIP does in this regime, not that the paper is wrong; claims beyond "
        f"our scale (a crossover at more samples, a plateau after more epochs) are left to scaling-law fits.")
    return "\n".join(lines)


def precision_line(tables: dict, results_dir: str | Path = "benchmarks/results") -> str:
    """The precision this book's runs trained in, and whether a chapter's verdicts change between
    fp32 and bf16 (benchmarks/precision_verdicts.py's record, where one was measured)."""
    used = sorted(runs(tables)["precision"].unique())
    line = f"**Precision.** This book's runs trained in {' and '.join(used)}. "
    path = Path(results_dir) / "precision-verdicts-cpu.json"
    if not path.is_file():
        return line + "No chapter has been trained both ways here (`benchmarks/precision_verdicts.py` does it)."
    pv = json.loads(path.read_text())
    changed = [r["claim"] for r in pv["claims"] if r["verdict changed"]]
    seeds = {f["seeds"] for f in pv["runs"].values()}
    return line + (f"The {pv['chapter'].replace('_', ' ')} chapter trained both ways at the {pv['profile']} profile "
                   f"({', '.join(str(n) for n in sorted(seeds))} seeds; `benchmarks/precision_verdicts.py`, on "
                   f"{pv['machine']}): **{len(changed)} of its {len(pv['claims'])} verdicts change** between fp32 "
                   f"and bf16" + (": " + ", ".join(f"*{c}*" for c in changed) if changed else "") + ".")
