"""Execute the notebooks with Papermill, then build the Jupyter Book (1.x) from the executed copies.

    python -m clipstudy book run --profile laptop --world data/worlds/default

Jupyter Book cannot pass parameters, so Papermill runs first (notebooks/*.ipynb ->
book/<name>.ipynb) and the book is built with execution off. A failed notebook stops the run
with its name and exit status 1; nothing is published from a half-executed notebook. Each
executed notebook's wall time is appended to `<runs_dir>/book-times.jsonl` (the Performance
page reads it), with how many runs it had to train rather than load.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9]*.ipynb"))


def execute(profile: str, world: str, root: Path = ROOT, timeout_s: int = 3600, only: list[str] | None = None,
            out_dir: Path | None = None, parameters: dict | None = None) -> list[Path]:
    """Run every notebook (or those named in `only`) with Papermill into `out_dir` (book/)."""
    import papermill

    from clipstudy.profiles import profile as check_profile

    check_profile(profile)
    runs_dir = root / (parameters or {}).get("runs_dir", "data/runs")
    done = []
    for nb in notebooks(root):
        if only and nb.stem not in only:
            continue
        out = (out_dir or root / "book") / nb.name
        start, before = time.perf_counter(), _finished_runs(runs_dir)
        tmp = out.with_suffix(".running.ipynb")
        print(f"executing {nb.relative_to(root)} (profile={profile})", flush=True)
        # A cell that hangs (e.g. an ipywidget, nbclient #312) fails after timeout_s instead.
        papermill.execute_notebook(str(nb), str(tmp), parameters={"profile": profile, "world": world, **(parameters or {})},
                                   execution_timeout=timeout_s, cwd=str(root), progress_bar=False,
                                   kernel_name="python3")
        tmp.replace(out)
        done.append(out)
        _record_time(runs_dir, {"chapter": nb.stem, "profile": profile, "seconds": round(time.perf_counter() - start, 1),
                                "runs_trained": len(_finished_runs(runs_dir) - before),
                                "date": datetime.datetime.now().isoformat(timespec="seconds")})
    return done


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
    """jupyter-book build, warnings as errors; plotly.js is served from book/js (offline)."""
    import plotly

    js = root / "book" / "js"
    js.mkdir(exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", js / "plotly.min.js")
    shutil.rmtree(root / "_build" / "html", ignore_errors=True)
    jb = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jb), "build", str(root), "-W", "-n", "--keep-going"], check=True, cwd=root)
    return root / "_build" / "html" / "index.html"
