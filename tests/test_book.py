"""The notebooks execute under Papermill at the smoke profile, through clipstudy.book (~1 min)."""

import nbformat
import pytest

from clipstudy import book
from clipstudy.config import ConfigError


def test_notebooks_execute_at_smoke_profile(smoke_book_copy):
    _, done = smoke_book_copy  # executed once for this and tests/test_browser.py (conftest.py)
    assert [p.name for p in done] == [p.name for p in book.notebooks()]
    for path in done:
        nb = nbformat.read(path, as_version=4)  # joins multi-line outputs
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"]
        # figures reach the book as HTML (plotly.js is served once by the book), not as Plotly JSON
        html = [o for o in outputs if "text/html" in o.get("data", {}) and "Plotly.newPlot" in o["data"]["text/html"]]
        assert html, f"{path.name} shows no Plotly figure"
        assert not [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]


def test_unknown_profile_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"profile='huge' is not valid; choose one of \['smoke', 'laptop'"):
        book.execute("huge", str(tmp_path))


def test_performance_page_without_benchmark_results(tmp_path, capsys):
    """A copy with no benchmark results (or an empty store) gets notes in place of tables, not errors;
    the console says which page of how many runs, and how long it last took here."""
    params = {"runs_dir": str(tmp_path / "runs"), "results_dir": str(tmp_path / "none")}
    (done,) = book.execute("smoke", str(tmp_path / "no-world"), only=["90_performance"], out_dir=tmp_path,
                           parameters=params)
    assert "[1/1] 90_performance (profile=smoke)\n" in capsys.readouterr().out
    book._record_time(tmp_path / "runs", {"chapter": "90_performance", "profile": "smoke", "seconds": 90.0,
                                          "runs_trained": 3, "date": "2026-12-03T10:00:00"})
    book.execute("smoke", str(tmp_path / "no-world"), only=["90_performance"], out_dir=tmp_path, parameters=params)
    assert "[1/1] 90_performance (profile=smoke): last time 3 runs trained here in 1.5 min" in capsys.readouterr().out
    nb = nbformat.read(done, as_version=4)
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells for o in c.get("outputs", []))
    assert "run `python benchmarks/mfu.py` to measure it" in text
    assert "No GPU benchmark has been recorded" in text
    assert "run `python benchmarks/precision_verdicts.py`" in text


def test_unknown_notebook_name_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no notebook named \['nope'\]; valid names: \['00_emoji_world'"):
        book.execute("smoke", str(tmp_path), only=["nope"])
