"""Tidy tables -> Plotly figures, and the renderer that makes them show in the offline book.

Plotly's default renderer under Papermill emits only its JSON mime type, which Jupyter Book 1
leaves blank (and warns about). `use_book_renderer()` makes every figure emit `text/html`
that relies on plotly.min.js, which the book serves once for all pages (see _config.yml).
Imports nothing of clipstudy.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots


class _BookRenderer(pio.base_renderers.MimetypeRenderer):
    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, validate=False)
        return {"text/html": html}


def use_book_renderer() -> None:
    pio.renderers["clipstudy_book"] = _BookRenderer()
    pio.renderers.default = "clipstudy_book"


def image_grid(images: np.ndarray, titles: list[str], cols: int = 6, size: int = 110) -> go.Figure:
    """uint8 [N, H, W, 3] -> a grid of images with (wrapped) titles."""
    rows = -(-len(images) // cols)
    wrapped = ["<br>".join(_wrap(t, size // 6)) for t in titles]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=wrapped, vertical_spacing=0.12 / max(1, rows - 1) + 0.06)
    for i, img in enumerate(images):
        fig.add_trace(go.Image(z=np.asarray(img)), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(height=rows * (size + 60), width=cols * size, margin=dict(l=5, r=5, t=60, b=5))
    return fig


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line]


def curves(rows: list[dict], x: str, y: str, color: str | None = None, title: str = "") -> go.Figure:
    """Line plot of tidy rows (list of dicts), one line per value of `color`."""
    fig = go.Figure()
    groups = sorted({r.get(color) for r in rows}) if color else [None]
    for g in groups:
        sel = [r for r in rows if color is None or r.get(color) == g]
        fig.add_trace(go.Scatter(x=[r[x] for r in sel], y=[r[y] for r in sel], mode="lines",
                                 name=str(g) if g is not None else y))
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=380)
    return fig


def bars(labels: list[str], values: list[float], title: str = "", yaxis: str = "") -> go.Figure:
    fig = go.Figure(go.Bar(x=labels, y=values, text=[f"{v:.1f}" for v in values], textposition="outside"))
    fig.update_layout(title=title, yaxis_title=yaxis, height=380, hovermode="x")  # anywhere over a bar's column
    return fig


def scatter(rows: list[dict], x: str, y: str, color: str, label: str, title: str = "", log: bool = True,
            xaxis: str = "", yaxis: str = "") -> go.Figure:
    """Points of tidy rows, one trace per value of `color` (legend toggles it), `label` as hover
    text and point labels; log-log axes by default."""
    fig = go.Figure()
    for g in sorted({str(r[color]) for r in rows}):
        sel = sorted((r for r in rows if str(r[color]) == g), key=lambda r: r[x])
        fig.add_trace(go.Scatter(x=[r[x] for r in sel], y=[r[y] for r in sel], mode="markers+text",
                                 text=[r[label] for r in sel], textposition="top center", name=g,
                                 hovertemplate=f"%{{text}}<br>{x}=%{{x:.3g}}<br>{y}=%{{y:.4g}}<extra>{g}</extra>"))
    kind = "log" if log else "linear"
    fig.update_layout(title=title, xaxis_title=xaxis or x, yaxis_title=yaxis or y, height=420,
                      xaxis_type=kind, yaxis_type=kind)
    return fig


def mean_lines(table, x: str, metrics: list[str], color: str, title: str = "", log_x: bool = True,
               xaxis: str = "", n_label: str = "seeds") -> go.Figure:
    """Mean +- standard deviation over seeds, one line per value of `color`, from a table with
    `<metric>_mean`, `<metric>_std` and `n` columns (stats.aggregate). Several metrics get a
    dropdown that switches the y axis between them; hover says n."""
    fig = go.Figure()
    groups = list(dict.fromkeys(table[color]))
    for m_i, metric in enumerate(metrics):
        for g in groups:
            sel = table[table[color] == g].sort_values(x)
            fig.add_trace(go.Scatter(
                x=sel[x], y=sel[f"{metric}_mean"], mode="lines+markers", name=str(g), legendgroup=str(g),
                visible=m_i == 0, error_y=dict(type="data", array=sel[f"{metric}_std"], visible=True),
                customdata=np.stack([sel[f"{metric}_std"], sel["n"]], axis=-1),
                hovertemplate=(f"{color}={g}<br>{x}=%{{x:,.0f}}<br>{metric}=%{{y:.2f}} ± %{{customdata[0]:.2f}}"
                               f"<br>n=%{{customdata[1]}} {n_label}<extra></extra>")))
    per = len(groups)
    if len(metrics) > 1:
        buttons = [dict(label=m, method="update",
                        args=[{"visible": [i // per == k for i in range(per * len(metrics))]}, {"yaxis.title.text": f"{m} (%)"}])
                   for k, m in enumerate(metrics)]
        fig.update_layout(updatemenus=[dict(buttons=buttons, x=1.0, xanchor="right", y=1.18, yanchor="top")])
    fig.update_layout(title=title, xaxis_title=xaxis or x, yaxis_title=f"{metrics[0]} (%)", height=420,
                      xaxis_type="log" if log_x else "linear", legend_title_text=color)
    return fig


def lower_envelope(rows: list[dict], x: str, y: str) -> list[dict]:
    """The rows that set a new lowest y as x grows: the best y reached at or below each x."""
    best, env = float("inf"), []
    for r in sorted(rows, key=lambda r: r[x]):
        if r[y] < best:
            best = r[y]
            env.append(r)
    return env


def frontier(rows: list[dict], x: str, y: str, color: str, label: str, title: str = "", xaxis: str = "",
             yaxis: str = "") -> go.Figure:
    """`scatter` plus the lower envelope of y over x (the best y reached at or below each x)."""
    fig = scatter(rows, x, y, color, label, title=title, xaxis=xaxis, yaxis=yaxis)
    fig.update_traces(mode="markers", textposition=None)
    env = lower_envelope(rows, x, y)
    fig.add_trace(go.Scatter(x=[r[x] for r in env], y=[r[y] for r in env], mode="lines", name="frontier",
                             line=dict(dash="dash", color="black"), line_shape="hv", hoverinfo="skip"))
    return fig


def frontier_means(points, kind: str, title: str = "", xaxis: str = "", yaxis: str = "") -> go.Figure:
    """verdicts.frontier_points as a figure: each configuration's mean error with its 95% interval
    over seeds, one trace per `kind`, open markers where some pre-training compute is not counted,
    and the frontier through the points on the lower envelope of the means."""
    fig = go.Figure()
    for g in list(dict.fromkeys(points[kind])):
        sel = points[points[kind] == g]
        fig.add_trace(go.Scatter(
            x=sel["compute"], y=sel["error"], mode="markers", name=str(g),
            marker=dict(symbol=["circle-open" if u else "circle" for u in sel["uncounted"]], size=8),
            error_y=dict(type="data", symmetric=False, array=sel["high"] - sel["error"],
                         arrayminus=sel["error"] - sel["low"], visible=True),
            customdata=np.array(list(zip(sel["samples"], sel["low"], sel["high"], sel["n"],
                                         sel["uncounted"].replace("", "nothing"))), dtype=object),
            hovertemplate=(f"{g}<br>%{{customdata[0]:,}} samples<br>%{{x:.3g}} PFLOPs<br>error %{{y:.1f}} "
                           "[%{customdata[1]:.1f}, %{customdata[2]:.1f}], n=%{customdata[3]}<br>"
                           "not counted: %{customdata[4]}<extra></extra>")))
    env = points[points["on_frontier"]].sort_values("compute")
    fig.add_trace(go.Scatter(x=env["compute"], y=env["error"], mode="lines", name="frontier (means)",
                             line=dict(dash="dash", color="black"), line_shape="hv", hoverinfo="skip"))
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, height=460, xaxis_type="log")
    return fig


def mean_bars(table, x: str, metrics: list[str], title: str = "", n_label: str = "seeds") -> go.Figure:
    """Mean +- standard deviation over seeds as bars, one per row of `table` (stats.aggregate's
    `<metric>_mean`, `<metric>_std`, `n`), labelled by column `x`; a dropdown switches the metric."""
    fig = go.Figure()
    for m_i, metric in enumerate(metrics):
        fig.add_trace(go.Bar(
            x=table[x].astype(str), y=table[f"{metric}_mean"], name=metric, visible=m_i == 0,
            error_y=dict(type="data", array=table[f"{metric}_std"], visible=True),
            text=[f"{v:.1f}" for v in table[f"{metric}_mean"]], textposition="outside",
            customdata=np.stack([table[f"{metric}_std"], table["n"]], axis=-1),
            hovertemplate=f"%{{x}}<br>{metric}=%{{y:.2f}} ± %{{customdata[0]:.2f}}<br>n=%{{customdata[1]}} {n_label}<extra></extra>"))
    if len(metrics) > 1:
        buttons = [dict(label=m, method="update", args=[{"visible": [i == k for i in range(len(metrics))]},
                                                         {"yaxis.title.text": f"{m} (%)"}]) for k, m in enumerate(metrics)]
        fig.update_layout(updatemenus=[dict(buttons=buttons, x=1.0, xanchor="right", y=1.18, yanchor="top")])
    # hover anywhere above a bar's label: a bar near zero is too thin to point at
    fig.update_layout(title=title, yaxis_title=f"{metrics[0]} (%)", height=420, showlegend=False, hovermode="x")
    return fig


def fitted_laws(points: list[dict], curves: list[dict], x: str, title: str = "", xaxis: str = "",
                yaxis: str = "error (%)") -> go.Figure:
    """Measured means with 95% intervals (`points`: arm, x, value, low, high) and each arm's fitted
    curve with its band (`curves`: arm, x, value, low, high, extrapolated), drawn solid over the
    measured range and dashed beyond it; log x."""
    fig = go.Figure()
    palette = pio.templates["plotly"].layout.colorway
    arms = list(dict.fromkeys([p["arm"] for p in points] + [c["arm"] for c in curves]))
    for i, arm in enumerate(arms):
        colour = palette[i % len(palette)]
        for beyond in (False, True):
            sel = sorted([c for c in curves if c["arm"] == arm and c["extrapolated"] == beyond], key=lambda c: c[x])
            if not sel:
                continue
            xs = [c[x] for c in sel]
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=[c["high"] for c in sel] + [c["low"] for c in sel][::-1],
                                     fill="toself", line=dict(width=0), fillcolor=colour, opacity=0.12,
                                     hoverinfo="skip", showlegend=False, legendgroup=arm))
            fig.add_trace(go.Scatter(x=xs, y=[c["value"] for c in sel], mode="lines", legendgroup=arm,
                                     line=dict(color=colour, dash="dash" if beyond else "solid"),
                                     name=f"{arm}: fit" + (", extrapolated" if beyond else ""),
                                     hovertemplate=f"{arm}<br>{x}=%{{x:,.0f}}<br>fitted %{{y:.1f}}<extra></extra>"))
        sel = sorted([p for p in points if p["arm"] == arm], key=lambda p: p[x])
        fig.add_trace(go.Scatter(x=[p[x] for p in sel], y=[p["value"] for p in sel], mode="markers", name=f"{arm}: measured",
                                 legendgroup=arm, marker=dict(color=colour, size=8),
                                 error_y=dict(type="data", symmetric=False, array=[p["high"] - p["value"] for p in sel],
                                              arrayminus=[p["value"] - p["low"] for p in sel]),
                                 hovertemplate=f"{arm}<br>{x}=%{{x:,.0f}}<br>measured %{{y:.1f}}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=xaxis or x, yaxis_title=yaxis, xaxis_type="log", height=460)
    return fig
