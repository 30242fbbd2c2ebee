"""The built smoke book in headless Chromium, offline (clipstudy.browser): figures draw and
respond, widgets show their saved state, nothing is fetched from the network, no console errors.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make browser`); without them the tests skip,
or fail where CLIPSTUDY_REQUIRE_BROWSER=1 (CI). Cost: ~1 min beyond executing the notebooks,
which tests/test_book.py shares (conftest.py).
"""

import os
import shutil
from pathlib import Path

import plotly
import pytest

from clipstudy import book, browser


def _need_chromium() -> None:
    if Path(browser.CHROMIUM).is_file() and Path(browser.CHROMEDRIVER).is_file():
        return
    reason = f"{browser.CHROMIUM} or {browser.CHROMEDRIVER} is missing (`make browser` installs them)"
    if os.environ.get("CLIPSTUDY_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and CLIPSTUDY_REQUIRE_BROWSER=1")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def smoke_book(request) -> Path:
    """The HTML book built from the notebooks executed at the smoke profile (conftest.py), in a copy
    of the book's sources outside the repository -> its _build/html."""
    _need_chromium()  # before the notebooks run: without a browser there is nothing to check
    root, _ = request.getfixturevalue("smoke_book_copy")
    book.build_html(root)
    return root / "_build" / "html"


def test_smoke_book_in_chromium(smoke_book, tmp_path):
    shot = tmp_path / "emoji_world.png"
    assert browser.check_book(smoke_book, {"book/00_emoji_world.html": shot}) == []
    assert shot.stat().st_size > 50_000  # a full page of figures and widgets, not a blank window


def test_check_reports_a_book_without_plotly(smoke_book, tmp_path):
    html = shutil.copytree(smoke_book, tmp_path / "html")
    (html / "_static" / "plotly.min.js").unlink()
    for page in browser.pages(html):  # one page with figures is enough (each page takes seconds)
        if page != "book/00_emoji_world.html":
            (html / page).unlink()
    problems = browser.check_book(html, wait_s=3)  # figures that never draw are waited for this long
    assert "book/00_emoji_world.html: figure 1 did not draw (no SVG)" in problems
    assert any("Plotly is not defined" in p for p in problems)


FIGURE = """
<div id="fig" class="plotly-graph-div" style="height:400px;width:600px"></div>
<script>Plotly.newPlot("fig",
  [{x: [1, 2, 3], y: [1, 3, 2], name: "a"}, {x: [1, 2, 3], y: [2, 1, 3], name: "b"}],
  {updatemenus: [{buttons: [{label: "both", method: "restyle", args: ["visible", [true, true]]},
                            {label: "a", method: "restyle", args: ["visible", [true, false]]}]}],
   sliders: [{steps: [{label: "1", method: "relayout", args: ["title.text", "1"]},
                      {label: "2", method: "relayout", args: ["title.text", "2"]},
                      {label: "3", method: "relayout", args: ["title.text", "3"]}]}]});
</script>"""


def _page(folder: Path, name: str, body: str) -> None:
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", folder / "plotly.min.js")
    (folder / name).write_text(f'<html><head><script src="plotly.min.js"></script></head><body>{body}</body></html>')


def test_check_clicks_controls_and_catches_what_a_reader_would_meet(tmp_path):
    """A figure with a legend, a dropdown and a slider passes; a widget without its JavaScript, an
    image from the network and a script error are each reported."""
    _need_chromium()
    _page(tmp_path, "good.html", FIGURE)
    widget = '<div class="output"><script type="application/vnd.jupyter.widget-view+json">' \
             '{"model_id": "x", "version_major": 2, "version_minor": 0}</script></div>'
    _page(tmp_path, "bad.html", FIGURE + widget + '<img src="http://192.0.2.1/remote.png"><script>require(["x"])</script>')
    problems = browser.check_book(tmp_path, wait_s=3)  # the blank widget is waited for this long
    assert not [p for p in problems if p.startswith("good.html")]
    bad = [p.removeprefix("bad.html: ") for p in problems if p.startswith("bad.html")]
    assert "widget output 1 is blank" in bad
    assert "request to the network: http://192.0.2.1/remote.png" in bad
    assert any("require is not defined" in p for p in bad)
