"""The real profile's sizes and costs (costs.real_costs, real_line, plan at a given pool) and the
book runner's --param. Cost: ~10 s on 2 CPU cores (towers built for their FLOPs)."""

import json

import pytest

from clipstudy import cli, costs, models, prose, study
from clipstudy.chapters import CHAPTERS


def measurements(tmp_path, gflop_s: float, decode: float):
    (tmp_path / "mfu-gpu.json").write_text(json.dumps({
        "machine": "a GPU", "image_size": 64, "batch": 2048,
        "rows": [{"model": "vit-b-16", "precision": "bf16", "achieved_gflop_s": gflop_s}]}))
    (tmp_path / "stream-cpu.json").write_text(json.dumps({
        "machine": "a CPU", "image_size": 64, "samples_per_s": {"decode": decode}}))
    return tmp_path


def test_every_chapter_has_real_sizes_that_stream_at_64_px():
    for name, sizes in CHAPTERS.items():
        train = sizes["real"]["train"]
        assert train["image_size"] == 64 and train["data_workers"] > 0 and train["vocab"] == "bpe", name
        assert len(sizes["real"]["seeds"]) >= 3, name


@pytest.mark.parametrize("bound", ["decode", "gpu"])
def test_a_run_goes_at_the_slower_of_decoding_and_the_gpu(tmp_path, bound):
    slow, fast = 100.0, 1e12
    results = measurements(tmp_path, gflop_s=fast if bound == "decode" else slow, decode=slow if bound == "decode" else fast)
    table, basis = costs.real_costs(pool=2_800_000, results_dir=results, pages=["10_data_quantity"])
    row = table.set_index("chapter").loc["10_data_quantity"]
    sizes = CHAPTERS["data_quantity"]["real"]
    samples = sum(p["samples"] for p in study.grid_points(sizes, 2_800_000)) * len(sizes["seeds"])
    assert row["runs"] == 27 and row["samples seen (M)"] == round(samples / 1e6, 1)
    gflops = row["train PFLOPs"] * 1e6 / samples  # one tower, one recipe: one cost per sample
    rate = slow * sizes["train"]["data_workers"] if bound == "decode" else slow / gflops
    assert row["GPU-hours"] == pytest.approx(samples / rate / 3600, rel=0.01)
    assert "a GPU" in basis and "a CPU" in basis and "2,800,000 pairs" in basis


def test_a_chapter_page_states_its_real_cost(tmp_path):
    line = prose.real_line("30_cnn_vs_vit", pool=10_000, results_dir=measurements(tmp_path, 1e5, 1e3))
    assert line.startswith("**At the `real` profile**") and "30 runs" in line and "{doc}`95_real_data`" in line


def test_the_plan_at_real_shows_the_whole_pool_it_is_given():
    table = prose.plan("real", pool=1_234_567)
    assert "1,234,567" in table and "250,000" in table and "| 0 |" not in table


def test_book_run_passes_parameters_only_to_notebooks_that_declare_them(capsys):
    assert cli.main(["book", "run", "--only", "95_real_data", "--param", "nope=1", "--no-html"]) == 2
    assert "'nope'" in capsys.readouterr().err
    assert cli.main(["book", "run", "--only", "95_real_data", "--param", "novalue", "--no-html"]) == 2


def test_an_eager_run_is_priced_from_the_eager_row_and_final_checkpoints_are_weights_only(tmp_path):
    """mfu-gpu.json holds vit-b-16 eager and compiled (the last row of a model won before, so eager
    runs were priced at the compiled rate)."""
    results = measurements(tmp_path, gflop_s=100.0, decode=1e12)
    record = json.loads((results / "mfu-gpu.json").read_text())
    record["rows"] = [{**record["rows"][0], "compile": False},
                      {**record["rows"][0], "compile": True, "achieved_gflop_s": 1e6}]
    (results / "mfu-gpu.json").write_text(json.dumps(record))
    eager, _ = costs.real_costs(pool=2_800_000, results_dir=results, pages=["10_data_quantity"])
    slow, _ = costs.real_costs(pool=2_800_000, results_dir=measurements(tmp_path, 100.0, 1e12), pages=["10_data_quantity"])
    row = eager.set_index("chapter").loc["10_data_quantity"]
    assert row["GPU-hours"] == slow.set_index("chapter").loc["10_data_quantity"]["GPU-hours"]
    tower = models.create_model("vit-b-16", image_size=64, context_length=32)  # open_clip's BPE, as the real grid
    weights = sum(p.numel() for p in tower.parameters()) * 4 / 1e9
    assert row["checkpoints (GB)"] == pytest.approx(27 * weights, abs=0.1)
