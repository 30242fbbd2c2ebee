"""The benchmark scripts' result files (benchmarks/results/<name>-<cpu|gpu>.json), as the
Performance page reads them.

    results.load("benchmarks/results", "mfu-cpu.json")   # the record, or None when not measured
    results.missing("benchmarks/results", "mfu")         # a note saying which script measures it
"""

from __future__ import annotations

import json
from pathlib import Path

from IPython.display import Markdown

# result name -> the script in benchmarks/ that writes it
SCRIPTS = {"vs-open-clip-train": "vs_open_clip_train.py", "mfu": "mfu.py", "precision": "precision.py", "core": "core.py"}


def load(results_dir: str | Path, name: str) -> dict | None:
    """The JSON record `name` in `results_dir`, or None where that benchmark has not been run."""
    path = Path(results_dir) / name
    return json.loads(path.read_text()) if path.is_file() else None


def missing(results_dir: str | Path, name: str) -> Markdown:
    """A note in place of a table whose benchmark has not been run into `results_dir`."""
    return Markdown(f"*No `{name}-cpu.json` in `{results_dir}`: run `python benchmarks/{SCRIPTS[name]}` "
                    "to measure it on this machine.*")
