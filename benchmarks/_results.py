"""The result file the benchmarks write: `<out>/<name>-<gpu|cpu>.json`, indented JSON.

    from _results import write_result  # benchmarks run as scripts: this folder is on sys.path
"""

import json
from pathlib import Path


def write_result(out: str | Path, name: str, result: dict, gpu: bool) -> Path:
    """Write `result` to `out`/`name`-gpu.json (`gpu`: measured on a CUDA device) or -cpu.json,
    making `out` if need be; -> the file's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{'gpu' if gpu else 'cpu'}.json"
    path.write_text(json.dumps(result, indent=2))
    return path
