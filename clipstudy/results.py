"""The benchmark scripts' result files (benchmarks/results/<name>-<cpu|gpu>.json), as the
Performance page reads them.

    results.load("benchmarks/results", "mfu-cpu.json")   # the record, or None when not measured
    results.missing("benchmarks/results", "mfu")         # a note saying which script measures it
    results.finding(vs_oc, mfu, core)                    # the page's finding, from three records
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


def finding(vs_oc: dict, mfu: dict, core: dict | None = None) -> str:
    """The Performance page's finding, from the vs-open-clip-train, MFU and (if measured) core
    records: the laptop model's speed against open_clip_train's best, its MFU, one evaluation's time."""
    auto = vs_oc["auto_precision"]
    lap = next(r for r in vs_oc["rows"] if r["setting"] == "laptop" and r["precision"] == auto)
    lap32 = next(r for r in vs_oc["rows"] if r["setting"] == "laptop" and r["precision"] == "fp32")
    tiny = [r for r in vs_oc["rows"] if r["setting"] != "laptop"]
    default = next(r for r in mfu["rows"] if r["model"] == "vit-s-8" and r["precision"] == auto and not r["compile"])
    text = (f"**Finding.** On {vs_oc['machine']}, clipstudy trains the laptop model in its default precision "
            f"({auto}) at {lap['clipstudy']['samples_per_s']:.0f} samples/s, "
            f"{lap['speedup_vs_best_open_clip_train']:.2f}x open_clip_train's best in the same precision "
            f"(in fp32: {lap32['speedup_vs_best_open_clip_train']:.2f}x)")
    if tiny:
        text += "; on the tiny 4x128 ViT, " + ", ".join(f"{r['speedup_vs_best_open_clip_train']:.2f}x in {r['precision']}" for r in tiny)
    text += (f". The default model runs at {100 * default['mfu']:.0f}% of the measured {default['precision']} "
             f"matmul peak in the MFU benchmark.")
    if core:
        text += (f" Evaluating one checkpoint on every suite took {core['eval_all_suites_32px_s']:.0f} s "
                 f"on {core['machine']}.")
    return text
