"""The real profile's sizes and costs (costs.real_costs, real_line, plan at a given pool) and the
book runner's --param. Cost: ~15 s on 2 CPU cores (towers built for their FLOPs and parameters)."""

import json
import math
from pathlib import Path

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
    runs = len(CHAPTERS["cnn_vs_vit"]["real"]["grid"]) * len(CHAPTERS["cnn_vs_vit"]["real"]["seeds"])
    assert line.startswith("**At the `real` profile**") and f"{runs} runs" in line and "{doc}`95_real_data`" in line


def test_the_plan_at_real_shows_the_whole_pool_it_is_given():
    table = prose.plan("real", pool=1_234_567)
    assert "1,234,567" in table and "250,000" in table and "| 0 |" not in table


def test_book_run_passes_parameters_only_to_notebooks_that_declare_them(capsys):
    assert cli.main(["book", "run", "--only", "95_real_data", "--param", "nope=1", "--no-html"]) == 2
    assert "'nope'" in capsys.readouterr().err
    assert cli.main(["book", "run", "--only", "95_real_data", "--param", "novalue", "--no-html"]) == 2


def test_an_eager_run_is_priced_from_the_eager_row_and_final_checkpoints_are_weights_only(tmp_path, monkeypatch):
    """mfu-gpu.json holds vit-b-16 eager and compiled (the last row of a model won before, so eager
    runs were priced at the compiled rate)."""
    monkeypatch.setitem(CHAPTERS["data_quantity"]["real"]["train"], "compile", False)  # the grid trains eager
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


def _two_modes(results, rows):
    record = json.loads((results / "mfu-gpu.json").read_text())
    record["rows"] = [{**record["rows"][0], **row} for row in rows]
    (results / "mfu-gpu.json").write_text(json.dumps(record))
    return results


def _hours(results):
    table, basis = costs.real_costs(pool=2_800_000, results_dir=results, pages=["10_data_quantity"])
    return table.set_index("chapter").loc["10_data_quantity"]["GPU-hours"], basis


def test_each_run_is_priced_from_the_row_of_its_own_mode_whatever_the_rows_order(tmp_path, monkeypatch):
    """A tower's last row won before: with the compiled row last (as mfu.py writes it) every eager
    run was priced at the compiled rate, with it first every compiled one at the eager rate."""
    eager, compiled = {"compile": False, "achieved_gflop_s": 100.0}, {"compile": True, "achieved_gflop_s": 200.0}
    results = measurements(tmp_path, gflop_s=100.0, decode=1e12)
    monkeypatch.setitem(CHAPTERS["data_quantity"]["real"]["train"], "compile", False)  # the grid trains eager
    hours = {order: _hours(_two_modes(results, rows))[0]
             for order, rows in {"compiled last": [eager, compiled], "compiled first": [compiled, eager]}.items()}
    assert hours["compiled last"] == hours["compiled first"] > 0
    monkeypatch.setitem(CHAPTERS["data_quantity"]["real"]["train"], "compile", True)  # the grid compiles (as GPU_TRAIN does)
    for rows in ([eager, compiled], [compiled, eager]):
        fast, basis = _hours(_two_modes(results, rows))
        assert fast == pytest.approx(hours["compiled last"] / 2, rel=0.05) and "No compiled row" not in basis
    # compiled runs of a tower timed only eager: the eager rate, and the sentence says so
    slow, basis = _hours(_two_modes(results, [eager]))
    assert slow == hours["compiled last"] and "No compiled row for `vit-b-16`" in basis


def test_towers_timed_in_their_own_record_are_priced_from_it(tmp_path):
    """mfu-towers-gpu.json (mfu.py over the CNN, Swin and Mixer towers) adds its rows to mfu-gpu.json's:
    the CNN-vs-ViT page prices rn50 from its own compiled rate, not the timed towers' median."""
    results = measurements(tmp_path, gflop_s=100.0, decode=1e12)
    before, basis = costs.real_costs(pool=2_800_000, results_dir=results, pages=["30_cnn_vs_vit"])
    assert "No row for" in basis and "`rn50`" in basis
    rows = [{"model": m, "precision": "bf16", "compile": c, "achieved_gflop_s": 1e4}
            for m in ("rn50", "convnext-t", "swin-t", "mixer-b-16") for c in (False, True)]
    (results / "mfu-towers-gpu.json").write_text(json.dumps({"rows": rows}))
    after, basis = costs.real_costs(pool=2_800_000, results_dir=results, pages=["30_cnn_vs_vit"])
    assert "`rn50`" not in basis and "mfu-towers-gpu.json" in basis
    assert after["GPU-hours"].iloc[0] < before["GPU-hours"].iloc[0]


def test_each_run_s_checkpoint_holds_its_own_model_s_weights(tmp_path):
    """The tricks chapter trains vit-b-16 with its own text tower and with MiniLM's (twice the
    parameters): each run's checkpoint is priced from its own model (one count per tower name
    before, whichever of the two was built last)."""
    table, basis = costs.real_costs(pool=2_800_000, results_dir=measurements(tmp_path, 1e5, 1e3), pages=["60_tricks"])
    sizes = CHAPTERS["tricks"]["real"]
    points = study.grid_points(sizes, 2_800_000)
    minilm = sum(p.get("pretrained_text") == "minilm" for p in points) * len(sizes["seeds"])
    runs = len(points) * len(sizes["seeds"])
    assert {p["model"] for p in points} == {"vit-b-16"} and 0 < minilm < runs
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    own = count(models.create_model("vit-b-16", image_size=64, context_length=32))
    with_minilm = count(models.create_model("vit-b-16", image_size=64, **models.text_tower_overrides("minilm", 32)))
    assert with_minilm > 1.5 * own
    expected = ((runs - minilm) * own + minilm * with_minilm) * 4 / 1e9
    assert table.set_index("chapter").loc["60_tricks", "checkpoints (GB)"] == pytest.approx(expected, abs=0.05)
    assert f"{with_minilm * 12 / 1e9:.2f} GB for the largest model, `vit-b-16` with the minilm text tower" in basis


def test_the_scale_out_page_states_the_gpu_profile_s_disk_as_counted():
    disk = costs.profile_disk("gpu")
    page = (Path(__file__).parent.parent / "book" / "scale_out.md").read_text()
    page = " ".join(page.split())  # one line: the numbers' sentences wrap
    assert f"holds {disk['worlds'] / 4:.1f} GB of images" in page and f"about {disk['worlds']:.0f} GB in all" in page
    assert f"about {disk['checkpoints']:.0f} GB over every chapter's runs" in page and disk["resumable"] < 1
    assert f"Plan on about {5 * math.ceil(disk['total'] / 5)} GB" in page
