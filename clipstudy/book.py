"""Execute the notebooks with Papermill, then build the Jupyter Book (1.x) from the executed copies.

    python -m clipstudy book run --profile laptop --world data/worlds/default

Jupyter Book cannot pass parameters, so Papermill runs first (notebooks/*.ipynb ->
book/<name>.ipynb) and the book is built with execution off. Before a chapter's notebook, its
runs are trained here (`chapter_train.train_chapter`: side by side, a bar of runs done and time
left on the console) and the notebook loads them. A failed notebook (a cell that
raises, or hangs past the cell timeout) stops the run with one line naming it and the cell, and
exit status 1 (`NotebookFailed`); its half-executed copy goes to notebooks/_executed/failed/ for
reading, so nothing is published from it. Each executed notebook's wall time is appended to
`<runs_dir>/book-times.jsonl` (the Performance page reads it, the console line of the next
execution quotes it), with how many runs it had to train rather than load.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import plotly

from clipstudy import npm
from clipstudy.chapter_train import train_chapter
from clipstudy.chapters import PAGES
from clipstudy.config import ConfigError
from clipstudy.profiles import profile as check_profile
from clipstudy.prose import plan
from clipstudy.records import RunFailed

ROOT = Path(__file__).resolve().parent.parent


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9]*.ipynb"))


class NotebookFailed(RuntimeError):
    """A notebook that stopped on an error or a hung cell: the message is one line naming the
    chapter, the cell and where the half-executed copy was put (never in book/)."""


FAILED_DIR = "notebooks/_executed/failed"  # half-executed copies, for reading; the book never includes them


def execute(profile: str, world: str, root: Path = ROOT, timeout_s: int = 3600, only: list[str] | None = None,
            out_dir: Path | None = None, parameters: dict | None = None) -> list[Path]:
    """Run every notebook (or those named in `only`) with Papermill into `out_dir` (book/)."""
    import papermill  # lazy, as the other notebook-execution packages here: seconds to import, `book run` only
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError


    check_profile(profile)
    unknown = sorted(set(only or []) - {nb.stem for nb in notebooks(root)})
    if unknown:
        raise ConfigError(f"no notebook named {unknown}; valid names: {[nb.stem for nb in notebooks(root)]}")
    runs_dir = root / (parameters or {}).get("runs_dir", "data/runs")
    chosen = [nb for nb in notebooks(root) if not only or nb.stem in only]
    declared = {name for nb in chosen for name in papermill.inspect_notebook(str(nb))}
    undeclared = sorted(set(parameters or {}) - declared - {"study_world"})
    if undeclared:
        raise ConfigError(f"no notebook run here declares the parameter(s) {undeclared}; they declare {sorted(declared)}")
    done = []
    for k, nb in enumerate(chosen, 1):
        out = (out_dir or root / "book") / nb.name
        out.parent.mkdir(parents=True, exist_ok=True)
        start, before = time.perf_counter(), _finished_runs(runs_dir)
        tmp = out.with_suffix(".running.ipynb")
        print(f"[{k}/{len(chosen)}] {nb.stem} (profile={profile})" + _last_time(runs_dir, nb.stem, profile), flush=True)
        if nb.stem in CHAPTER_OF_PAGE and "reference" not in (parameters or {}):  # a reference of one's own: the notebook's cuts
            _train_first(profile, CHAPTER_OF_PAGE[nb.stem], (parameters or {}).get("study_world", ""), runs_dir, root)
        # A cell that hangs (e.g. an ipywidget, nbclient #312) fails after timeout_s instead.
        # each notebook gets the parameters it declares (chapters take `study_world`, not `world`)
        declared = papermill.inspect_notebook(str(nb))
        given = {"profile": profile, "world": world, **(parameters or {})}
        try:
            papermill.execute_notebook(str(nb), str(tmp), parameters={k: v for k, v in given.items() if k in declared},
                                       execution_timeout=timeout_s, cwd=str(root), progress_bar=False,
                                       kernel_name="python3")
        except (PapermillExecutionError, CellTimeoutError, DeadKernelError) as e:
            raise NotebookFailed(_set_aside(nb, tmp, e, root, timeout_s)) from None
        _hide_parameters(tmp)
        tmp.replace(out)
        done.append(out)
        _record_time(runs_dir, {"chapter": nb.stem, "profile": profile, "seconds": round(time.perf_counter() - start, 1),
                                "runs_trained": len(_finished_runs(runs_dir) - before),
                                "date": datetime.datetime.now().isoformat(timespec="seconds")})
    _write_scale(profile, out_dir or root / "book")
    return done


def _set_aside(nb: Path, tmp: Path, error: Exception, root: Path, timeout_s: int) -> str:
    """Move the half-executed copy `tmp` of notebook `nb` to FAILED_DIR; -> one line naming the
    chapter, the cell (its number in `nb` and its first line) and what went wrong."""
    if isinstance(error, TimeoutError):  # nbclient's CellTimeoutError: a hung cell
        what = f"it ran past the {timeout_s} s cell timeout (--timeout)"
    elif hasattr(error, "ename"):  # PapermillExecutionError: the cell raised
        lines = str(error.evalue).strip().splitlines()
        what = error.ename + (f": {lines[0]}" if lines else "")
    else:  # the kernel died
        what = f"{type(error).__name__}: {error}"
    if not tmp.is_file():
        return f"notebook {nb.stem} failed: {what}"
    # the notebook's own cells (less those Papermill adds: parameters, error notes); execution
    # stopped at the cell that failed or hung, the last one that started
    added = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in nbformat.read(tmp, as_version=4).cells if not added & set(c.metadata.get("tags", []))]
    index = max((i for i, c in enumerate(cells) if c.metadata.get("papermill", {}).get("start_time")), default=0)
    first = next((line.strip() for line in cells[index].source.splitlines() if line.strip()), "")
    dest = root / FAILED_DIR / nb.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(dest)
    return f"notebook {nb.stem} failed at cell {index + 1} ({first!r}): {what}; the half-executed copy is {dest}"


CHAPTER_OF_PAGE = {page: name for name, page in PAGES.items()}


def _train_first(profile: str, name: str, world: str, runs_dir: Path, root: Path) -> None:
    """Train (or find) a chapter's runs before its notebook runs, in this process, so that the
    console shows them: a bar of runs done of the chapter's total with the time left from the
    training cost done so far, the runs side by side on this machine's cores (`study.train_all`). The
    notebook then loads them; a run that fails is named here and left to the notebook to report."""
    with contextlib.chdir(root):  # the notebook's own working folder: relative world paths are its
        try:
            train_chapter(profile, name, world, runs_dir, progress=True)
        except RunFailed as e:
            print(f"  {name}: {e}", flush=True)


def _last_time(runs_dir: Path, page: str, profile: str) -> str:
    """': last time N runs trained here in M min', from book-times.jsonl, for a person watching."""
    past = [t for t in book_times(runs_dir) if t["chapter"] == page and t["profile"] == profile and t["runs_trained"]]
    return (f": last time {past[-1]['runs_trained']} runs trained here in {past[-1]['seconds'] / 60:.1f} min"
            if past else "")


SCALE_PAGE = "_scale.md"  # included by the landing page: what each chapter trains at the executed profile


def _write_scale(profile: str, book_dir: Path) -> None:
    text = (f"This copy of the book was executed at profile **`{profile}`**; its chapters train:\n\n{plan(profile)}\n\n"
            "Chapters share runs where their grids meet (the result store trains each config once); the "
            "compute-frontier chapter trains nothing.\n")
    (book_dir / SCALE_PAGE).write_text(text)


def _hide_parameters(path: Path) -> None:
    """Tag the parameters cells (the default and the injected one) `remove-cell`: the page
    states its scale in prose; the cells stay in the notebook for whoever re-runs it."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


BOOK_TIMES = "book-times.jsonl"  # one line per executed notebook, beside the runs it used


def _finished_runs(runs_dir: Path) -> set[str]:
    return {p.parent.name for p in runs_dir.glob("*/summary.json")}


def _record_time(runs_dir: Path, row: dict) -> None:
    runs_dir.mkdir(parents=True, exist_ok=True)
    with (runs_dir / BOOK_TIMES).open("a") as f:
        f.write(json.dumps(row) + "\n")


def book_times(runs_dir: str | Path = "data/runs") -> list[dict]:
    """Every recorded notebook execution: chapter, profile, seconds, runs_trained (0 = all of its
    runs came from the store), date."""
    path = Path(runs_dir) / BOOK_TIMES
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def build_html(root: Path = ROOT) -> Path:
    """jupyter-book build of the book at `root` (its _config.yml, _toc.yml and book/), warnings as
    errors; plotly.js and the ipywidgets JavaScript are served from book/js (offline)."""
    js = root / "book" / "js"
    js.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", js / "plotly.min.js")
    fetch_widget_js(js / "widgets")
    (js / "widgets" / "require-paths.js").write_text(REQUIRE_PATHS_JS)
    shutil.rmtree(root / "_build" / "html", ignore_errors=True)
    jb = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jb), "build", str(root), "-W", "-n", "--keep-going"], check=True, cwd=root)
    return root / "_build" / "html" / "index.html"


# Widgets saved by Papermill show in the book through require.js and @jupyter-widgets/html-manager
# (1.0.x goes with ipywidgets 8.1: widgets base 6, controls 5). myst-nb takes both from a CDN by
# default; _config.yml's nb_ipywidgets_js points at these copies instead. npm package -> (its
# tarball's integrity, the files the book serves); embed-amd.js finds its icon fonts beside it.
WIDGET_JS = {
    "requirejs@2.3.8": ("sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
                        ["require.js"]),
    "@jupyter-widgets/html-manager@1.0.15": (
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        ["dist/embed-amd.js", "dist/*.woff2", "dist/*.woff", "dist/*.ttf", "dist/*.eot", "dist/*.svg"]),
}


# The widget modules inside embed-amd.js find their icon fonts beside their own module URL, which
# require.js resolves against the page's folder; this maps them to the folder of this script.
REQUIRE_PATHS_JS = """(function () {
  const here = document.currentScript.src.replace(/\\/[^/]*$/, "");
  require.config({paths: {"@jupyter-widgets/html-manager/dist": here, "@jupyter-widgets": here}});
})();
"""


def fetch_widget_js(dest: Path) -> None:
    """Copy WIDGET_JS's files into `dest`, from `npm pack` tarballs checked against their integrity
    and unpacked once into the npm cache (clipstudy.npm)."""
    dest.mkdir(parents=True, exist_ok=True)
    for spec, (integrity, patterns) in WIDGET_JS.items():
        files = npm.unpack(spec, integrity, patterns, "the ipywidgets JavaScript the book serves")
        for f in files.iterdir():
            if f.name != npm.STAMP:
                shutil.copy(f, dest / f.name)
