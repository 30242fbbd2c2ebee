"""Open every page of a built book in headless Chromium, offline, and check what a reader sees.

    python -m clipstudy.browser _build/html
    python -m clipstudy.browser _build/html --screenshot book/00_emoji_world.html:emoji.png

The pages are served from a localhost http.server (as a reader's web server would; file://
pages may not load fonts) to Debian's /usr/bin/chromium, driven by selenium through
/usr/bin/chromedriver (a given driver path: selenium-manager never runs). Per page:

- every Plotly figure drew: an SVG of non-zero size with its traces in it;
- on one figure, a legend click hides a trace (if a figure has a legend of 2+ entries), and the
  mouse over a point shows hover text; every dropdown / button row / slider responds to a click;
- every widget output shows widget DOM of non-zero size (or a note): the saved state rendered;
- every image loaded; no console error ("Plotly is not defined", "require is not defined", ...);
- no request left the machine (anything but localhost, data: and blob: URLs).

Exit status 1 with one line per problem. Cost: ~5 s to start Chromium, 1-3 s per page.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SKIP_DIRS = {"_static", "_sources", "_images"}  # assets, not pages
WAIT_S = 20  # default wait for figures and widgets to draw (widgets wait for require.js to load embed-amd.js)

# True once every figure has drawn and every widget view has rendered (html-manager puts a
# div.widget-subarea beside each view's <script>).
READY_JS = """
const figs = [...document.querySelectorAll('div.plotly-graph-div')];
const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
return document.readyState === 'complete'
    && figs.every(gd => gd.querySelector('svg.main-svg'))
    && views.every(s => s.parentElement.querySelector('.widget-subarea *'));
"""

# One problem string per figure that did not draw; one per widget output left blank; broken images.
DRAWN_JS = """
const problems = [];
document.querySelectorAll('div.plotly-graph-div').forEach((gd, i) => {
  const box = gd.getBoundingClientRect();
  const traces = gd.querySelectorAll('g.trace, g.imagelayer image, g.im image').length;
  if (!gd.querySelector('svg.main-svg')) problems.push(`figure ${i + 1} did not draw (no SVG)`);
  else if (box.width < 10 || box.height < 10) problems.push(`figure ${i + 1} is ${box.width}x${box.height} px`);
  else if ((gd.data || []).length && !traces) problems.push(`figure ${i + 1} drew none of its ${gd.data.length} traces`);
});
document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').forEach((s, i) => {
  const area = s.parentElement, box = area.getBoundingClientRect();
  const widget = area.querySelector('.widget-subarea *, .jupyter-widgets');
  if (!(widget || area.innerText.trim()) || box.height < 5) problems.push(`widget output ${i + 1} is blank`);
});
document.querySelectorAll('img').forEach(img => {
  if (!img.complete || img.naturalWidth === 0) problems.push(`image ${(img.getAttribute('src') || '').slice(0, 60)} did not load`);
});
return problems;
"""

# The first figure with a legend of 2+ entries, and the first with a point to hover: their
# indices and, for the hover, the point's offset from the figure's top-left corner in px.
TARGETS_JS = """
const figs = [...document.querySelectorAll('div.plotly-graph-div')];
const legend = figs.findIndex(gd => gd.querySelectorAll('g.legend g.traces').length > 1);
let hover = null;
for (const [i, gd] of figs.entries()) {
  const fd = (gd._fullData || []).find(t => (t.type === 'scatter' || t.type === 'bar') && t.visible === true && t.x && t.x.length);
  if (fd) {
    const xa = gd._fullLayout[fd.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[fd.yaxis.replace('y', 'yaxis')];
    const j = Math.floor(fd.x.length / 2);
    hover = [i, xa._offset + xa.d2p(fd.x[j]), ya._offset + ya.d2p(fd.y[j])];
    break;
  }
  const img = gd.querySelector('g.imagelayer image, g.im image');
  if (img) {
    const a = img.getBoundingClientRect(), b = gd.getBoundingClientRect();
    hover = [i, a.x - b.x + a.width / 2, a.y - b.y + a.height / 2];
    break;
  }
}
return [legend, hover];
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """A localhost http.server of `folder` in a thread -> its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium():
    """Headless Chromium with a fresh profile, console and network logs on."""
    from selenium import webdriver  # lazy (here and below): selenium is only for the browser check
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        raise FileNotFoundError(f"{CHROMIUM} and {CHROMEDRIVER} are needed: "
                                f"apt-get install chromium chromium-driver (or `make browser`)")
    with tempfile.TemporaryDirectory(prefix="clipstudy-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + [f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(60)  # a page waiting on an unreachable host fails, not hangs
        try:
            yield driver
        finally:
            driver.quit()


def pages(html_dir: Path) -> list[str]:
    """Every HTML page of a built book, as paths relative to `html_dir` (POSIX)."""
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if not SKIP_DIRS & set(p.relative_to(html_dir).parts))


def _wait(driver, script: str, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if driver.execute_script(script):
            return True
        time.sleep(0.1)
    return False


def _figure(driver, index: int):
    from selenium.webdriver.common.by import By

    gd = driver.find_elements(By.CSS_SELECTOR, "div.plotly-graph-div")[index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", gd)
    return gd


def _on_figure(index: int, expression: str) -> str:
    """A script returning `expression` evaluated with `gd` = the page's index-th figure."""
    return f"return (gd => {expression})(document.querySelectorAll('div.plotly-graph-div')[{index}])"


def _click(driver, element, dx: int = 0) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).move_to_element_with_offset(element, dx, 0).click().perform()


def _legend_toggles(driver, index: int) -> str | None:
    from selenium.webdriver.common.by import By

    item = _figure(driver, index).find_elements(By.CSS_SELECTOR, "g.legend g.traces rect.legendtoggle")[0]
    visible = "gd._fullData[gd.querySelector('g.legend g.traces').__data__[0].trace.index].visible"
    _click(driver, item)  # Plotly acts on a single click after its double-click delay (300 ms)
    hidden = _wait(driver, _on_figure(index, f"{visible} === 'legendonly'"), 3)
    time.sleep(0.5)
    _click(driver, item)  # and show it again, for the screenshot
    _wait(driver, _on_figure(index, f"{visible} === true"), 3)
    return None if hidden else f"figure {index + 1}: a legend click did not hide its trace"


def _hover_shows_text(driver, index: int, x: float, y: float) -> str | None:
    from selenium.webdriver.common.action_chains import ActionChains

    gd = _figure(driver, index)
    width, height = gd.rect["width"], gd.rect["height"]
    # selenium 4 offsets are from the element's centre
    ActionChains(driver).move_to_element_with_offset(gd, int(x - width / 2), int(y - height / 2)).perform()
    shown = _wait(driver, _on_figure(index, "!!gd.querySelector('.hoverlayer .hovertext')"), 3)
    ActionChains(driver).move_to_element_with_offset(gd, 0, int(height / 2) - 1).perform()  # off the point
    return None if shown else f"figure {index + 1}: hovering a point shows no hover text"


MENU_BUTTONS = "g.updatemenu-button, g.updatemenu-dropdown-button"  # a row of buttons, an open dropdown


def _controls_respond(driver) -> list[str]:
    """Click another entry of every dropdown / button row and the far end of every slider; each
    must become the active one."""
    from selenium.webdriver.common.by import By

    problems = []
    for i, gd in enumerate(driver.find_elements(By.CSS_SELECTOR, "div.plotly-graph-div")):
        menus, sliders = driver.execute_script(
            "const l = arguments[0]._fullLayout || {}; return [l.updatemenus || [], l.sliders || []]"
            ".map(xs => xs.map(x => [x.type || '', x.active, (x.buttons || x.steps).length]))", gd)
        for m, (kind, active, n) in enumerate(menus):
            if n < 2:
                continue
            group = _figure(driver, i).find_elements(By.CSS_SELECTOR, "g.updatemenu-container")[m]
            if kind == "dropdown":
                _click(driver, group.find_element(By.CSS_SELECTOR, "g.updatemenu-header"))
                _wait(driver, _on_figure(i, f"gd.querySelectorAll('g.updatemenu-container')[{m}]"
                                               f".querySelectorAll('{MENU_BUTTONS}').length === {n}"), 2)
            target = 1 if active != 1 else 0
            _click(driver, group.find_elements(By.CSS_SELECTOR, MENU_BUTTONS)[target])
            if not _wait(driver, _on_figure(i, f"gd._fullLayout.updatemenus[{m}].active === {target}"), 3):
                problems.append(f"figure {i + 1}: menu {m + 1} did not respond to a click")
        for k, (_, active, n) in enumerate(sliders):
            if n < 2:
                continue
            rail = _figure(driver, i).find_elements(By.CSS_SELECTOR, "g.slider-container rect.slider-rail-touch-rect")[k]
            target = 0 if active == n - 1 else n - 1
            _click(driver, rail, int((target / (n - 1) - 0.5) * (rail.rect["width"] - 10)))
            if not _wait(driver, _on_figure(i, f"gd._fullLayout.sliders[{k}].active === {target}"), 3):
                problems.append(f"figure {i + 1}: slider {k + 1} did not respond to a click")
    return problems


def _remote_requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            parsed = urlparse(url)
            if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in LOCAL_HOSTS:
                urls.append(url)
    return urls


def check_page(driver, url: str, wait_s: float = WAIT_S) -> list[str]:
    """Problems a reader of the page at `url` would meet (empty when it is fine)."""
    from selenium.common.exceptions import TimeoutException, WebDriverException

    try:
        driver.get(url)
    except TimeoutException:
        return ["the page did not finish loading in 60 s", *[f"request to the network: {u}" for u in _remote_requests(driver)]]
    ready = _wait(driver, READY_JS, wait_s)
    problems = driver.execute_script(DRAWN_JS)
    if not ready and not problems:
        problems.append(f"figures or widgets still not drawn after {wait_s} s")
    legend, hover = driver.execute_script(TARGETS_JS)
    checks = [lambda: [_legend_toggles(driver, legend)] if legend >= 0 else [],
              lambda: [_hover_shows_text(driver, *hover)] if hover else [],
              lambda: _controls_respond(driver)]
    for check in checks:
        try:
            problems += check()
        except WebDriverException as e:  # a figure without the parts a reader would click
            problems.append(f"interaction failed: {e.msg.splitlines()[0] if e.msg else e}")
    problems += [f"request to the network: {u}" for u in _remote_requests(driver)]
    # the browser asks every site for /favicon.ico by itself; the book has none
    problems += [f"console error: {e['message'][:300]}" for e in driver.get_log("browser")
                 if e["level"] == "SEVERE" and "/favicon.ico " not in e["message"]]
    return [p for p in problems if p]


def screenshot(driver, url: str, out: Path, width: int = 1280) -> None:
    """A PNG of the whole page at `url`: the window is made as tall as the page."""
    driver.get(url)
    _wait(driver, READY_JS, WAIT_S)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.5)  # Plotly re-lays out figures on resize
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))


def check_book(html_dir: str | Path, screenshots: dict[str, Path] | None = None, wait_s: float = WAIT_S) -> list[str]:
    """Check every page of the built book at `html_dir`; -> one line per problem, each naming
    its page. `screenshots` maps pages (relative paths) to PNG files to write; `wait_s` is how
    long a page may take to draw its figures and widgets."""
    html_dir = Path(html_dir)
    names = pages(html_dir)
    if not names:
        return [f"{html_dir}: no HTML pages"]
    missing = [p for p in (screenshots or {}) if p not in names]
    problems = [f"{p}: no such page to screenshot" for p in missing]
    with serve(html_dir) as base, chromium() as driver:
        for name in names:
            problems += [f"{name}: {p}" for p in check_page(driver, base + name, wait_s)]
        for name, out in (screenshots or {}).items():
            if name not in missing:
                screenshot(driver, base + name, Path(out))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("html_dir", help="a built book, e.g. _build/html")
    parser.add_argument("--screenshot", action="append", default=[], metavar="PAGE:PNG",
                        help="also write a full-page PNG of PAGE (relative to html_dir); repeatable")
    args = parser.parse_args(argv)
    shots = dict(s.rsplit(":", 1) for s in args.screenshot)
    problems = check_book(args.html_dir, {page: Path(png) for page, png in shots.items()})
    for p in problems:
        print(p)
    n = len(pages(Path(args.html_dir)))
    print(f"{n} pages, {len(problems)} problems" if problems else f"{n} pages checked, no problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
