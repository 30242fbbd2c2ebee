"""Execute the notebooks with Papermill, then build the Jupyter Book (1.x) from the executed copies.

    python -m clipstudy book run --profile laptop --world data/worlds/default

Jupyter Book cannot pass parameters, so Papermill runs first (notebooks/*.ipynb ->
book/<name>.ipynb) and the book is built with execution off. A failed notebook stops the run
with its name and exit status 1; nothing is published from a half-executed notebook.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
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
    done = []
    for nb in notebooks(root):
        if only and nb.stem not in only:
            continue
        out = (out_dir or root / "book") / nb.name
        tmp = out.with_suffix(".running.ipynb")
        print(f"executing {nb.relative_to(root)} (profile={profile})", flush=True)
        # A cell that hangs (e.g. an ipywidget, nbclient #312) fails after timeout_s instead.
        papermill.execute_notebook(str(nb), str(tmp), parameters={"profile": profile, "world": world, **(parameters or {})},
                                   execution_timeout=timeout_s, cwd=str(root), progress_bar=False,
                                   kernel_name="python3")
        tmp.replace(out)
        done.append(out)
    return done


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
