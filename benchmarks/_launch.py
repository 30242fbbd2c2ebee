"""Run a Python module as `python -m` would, with clipstudy's model configs registered in
open_clip, and write the process's peak memory as JSON when it exits.

    python benchmarks/_launch.py PEAK.json MODULE [ARGS...]

The benchmarks launch both trainers through this, so open_clip_train can build clipstudy's
models by name (`--model vit-s-8`) and both are measured the same way.
"""

import atexit
import json
import resource
import runpy
import sys
from pathlib import Path


def _peak_mib(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux reports KiB


def main() -> None:
    out, module, *args = sys.argv[1:]
    import open_clip

    import clipstudy.models

    open_clip.add_model_config(Path(clipstudy.models.__file__).parent / "model_configs")
    # the trainer's own process only: a forked child's peak counts the pages it shares with its
    # parent, so children's figures (git, data-loader workers) would mostly repeat the parent's
    atexit.register(lambda: Path(out).write_text(json.dumps({"peak_rss_mib": _peak_mib(resource.RUSAGE_SELF)})))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
