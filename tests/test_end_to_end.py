"""End-to-end smoke run through the entry points the notebooks use: build a tiny world, train a
few steps, evaluate every suite, reload the checkpoint in plain open_clip. ~1 minute on 2 cores."""

import json

import open_clip
import pytest
import torch

from clipstudy import cli
from clipstudy.data import load_pairs
from clipstudy.store import load_run, train_or_load
from clipstudy.train import TrainConfig

TINY_WORLD = ["--classes", "40", "--pairs", "1024", "--retrieval-images", "64", "--probe-per-class", "12",
              "--image-size", "32"]


@pytest.fixture(scope="module")
def world(tiny_world):
    return tiny_world  # tests/conftest.py: built once per session, read-only


def test_world_build_through_the_cli_is_the_shared_tiny_world(world, tmp_path):
    out = tmp_path / "world"
    assert cli.main(["--quiet", "world", "build", "--out", str(out), *TINY_WORLD]) == 0

    def info(w):  # world.json less its build timings
        return {k: v for k, v in json.loads((w / "world.json").read_text()).items() if k != "seconds"}

    assert info(out) == info(world)
    for part in ("train/images.npy", "train/meta.jsonl", "suites/id/images.npy", "suites/retrieval/images.npy"):
        assert (out / part).read_bytes() == (world / part).read_bytes(), part


def test_build_train_eval_through_the_cli(world, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--quiet", "train", "--data", str(world), "--out", str(run), "--model", "vit-ti-8",
            "--samples", "512", "--batch-size", "64", "--warmup", "64", "--log-every", "2"]
    assert cli.main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["samples"] == 512
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [2, 4, 6, 8]
    assert all(m["loss"] > 0 for m in metrics)
    assert not (tmp_path / "run.partial").exists()

    capsys.readouterr()
    assert cli.main(["--quiet", "eval", "--run", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("id/top1", "id/top5", "id/coarse_top1", "probe/5shot_top1", "probe/10shot_top1",
                "probe/linear_top1", "retrieval/i2t_r1", "retrieval/t2i_r5"):
        assert 0.0 <= result[key] <= 1.0, key  # fractions, as CLIP_benchmark reports them
    info = json.loads((world / "world.json").read_text())
    shifts = [s for s in info["suites"] if s.startswith("shift-")]
    assert len(shifts) >= 3, shifts
    assert all(f"{s}/top1" in result for s in shifts)
    assert str(world) in json.loads((run / "eval.json").read_text())

    # The checkpoint loads back in plain open_clip and gives the same embeddings.
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["samples"] == 512
    configs = sorted(run.glob("clipstudy-*.json"))
    assert configs, f"no open_clip config beside the checkpoint in {sorted(p.name for p in run.iterdir())}"
    open_clip.add_model_config(configs[0])
    plain = open_clip.create_model(configs[0].stem, pretrained=str(run / "checkpoint.pt")).eval()
    from clipstudy.models import load_checkpoint
    ours, _ = load_checkpoint(run / "checkpoint.pt")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain.encode_image(x), ours.eval().encode_image(x))

    # ... and so does its word vocabulary: open_clip's tokenizer for the run folder (local-dir:,
    # which reads the tokenizer.json saved beside the checkpoint) gives the run's tokens and features
    ours_tok = load_run(run)[1]
    theirs_tok = open_clip.get_tokenizer(f"local-dir:{run}")
    texts = load_pairs(world).captions[:8] + ["a never seen word"]
    assert ours_tok.vocab_size < 1000 and torch.equal(theirs_tok(texts), ours_tok(texts))
    with torch.no_grad():
        torch.testing.assert_close(plain.encode_text(theirs_tok(texts)), ours.encode_text(ours_tok(texts)))


def test_train_or_load_reuses_only_identical_configs(world, tmp_path):
    cfg = TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64, warmup=0)
    first = train_or_load(cfg, runs_dir=tmp_path, progress=False)
    again = train_or_load(cfg, runs_dir=tmp_path, progress=False)
    assert again["dir"] == first["dir"] and again["eval"] == first["eval"]
    other = train_or_load(TrainConfig(**{**cfg.__dict__, "lr": 5e-4}), runs_dir=tmp_path, progress=False)
    assert other["dir"] != first["dir"]


def test_same_seed_same_run(world, tmp_path):
    def loss_curve(name):
        cfg = ["--quiet", "train", "--data", str(world), "--out", str(tmp_path / name), "--model", "vit-ti-8",
               "--samples", "192", "--batch-size", "64", "--log-every", "1"]
        assert cli.main(cfg) == 0
        return [json.loads(x)["loss"] for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    assert loss_curve("a") == loss_curve("b")


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "vit-huge"], "valid models"),
    (["train", "--batch-size", "many"], "batch_size='many' is not a valid int"),
    (["train", "--data", "no/such/world"], "no pairs found at 'no/such/world'"),
    (["world", "build", "--image-size", "7"], "image_size=7 is out of range"),
    (["world", "build", "--train-styles", "crayon"], "unknown style 'crayon'; valid styles"),
    (["eval", "--run", "no/such/run"], "no checkpoint"),
])
def test_bad_input_is_one_clear_error(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_unknown_option_lists_valid_ones(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--lerning-rate", "1"])
    assert e.value.code == 2
    assert "valid options:" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(world, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    args = ["train", "--data", str(world), "--out", str(tmp_path / "run"), "--samples", "64", "--batch-size", "64"]
    assert cli.main(args) == 2
    assert "already exists" in capsys.readouterr().err


def test_webdataset_export_trains_through_the_same_loader(world, tmp_path):
    assert cli.main(["world", "export", "--world", str(world), "--format", "wds", "--out", str(tmp_path / "shards")]) == 0
    pairs = load_pairs(tmp_path / "shards")
    assert len(pairs) == 1024 and pairs.image_size == 32
    cfg = ["--quiet", "train", "--data", str(tmp_path / "shards"), "--out", str(tmp_path / "run"), "--model",
           "vit-ti-8", "--samples", "128", "--batch-size", "64"]
    assert cli.main(cfg) == 0


def test_export_of_a_missing_world_writes_nothing(tmp_path, capsys):
    assert cli.main(["world", "export", "--world", str(tmp_path / "none"), "--format", "hf",
                     "--out", str(tmp_path / "hf")]) == 2
    assert "no pairs found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_run_key_follows_the_world_not_only_its_path(tmp_path):
    from clipstudy.store import config_hash
    from clipstudy.world import WorldConfig, build_world

    world = tmp_path / "world"
    small = dict(classes=10, pairs=300, retrieval_images=10, probe_per_class=0)
    build_world(WorldConfig(**small), world, progress=False)
    cfg = TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64)
    before = config_hash(cfg)
    build_world(WorldConfig(**small), world, progress=False, overwrite=True)
    assert config_hash(cfg) == before  # same settings, same world: build timings do not count
    build_world(WorldConfig(**{**small, "seed": 1}), world, progress=False, overwrite=True)
    assert config_hash(cfg) != before  # same path, other world


def test_learning_curve_is_recorded_during_training(world, tmp_path):
    cfg = TrainConfig(data=str(world), model="vit-ti-8", samples=320, batch_size=64, warmup=0, curve_every=128)
    run = train_or_load(cfg, runs_dir=tmp_path, progress=False)
    assert [r["samples"] for r in run["curve"]] == [128, 256, 320]  # each crossing, and the end
    assert all(0 <= r["id_top1"] <= 1 and r["images"] == 40 for r in run["curve"])


def test_siglip_loss_is_the_pairwise_sigmoid_formula():
    from clipstudy.losses import make_loss

    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    scale, bias = torch.tensor(10.0), torch.tensor(-10.0)
    loss = make_loss(TrainConfig(loss="siglip"))(img, txt, scale, bias, output_dict=True)["contrastive_loss"]
    # SigLIP (Zhai et al. 2023): -1/|B| sum_i sum_j log sigmoid(z_ij (t x_i.y_j + b)), z = +1 on the diagonal, -1 off it
    z = 2 * torch.eye(6) - 1
    formula = -torch.nn.functional.logsigmoid(z * (scale * img @ txt.T + bias)).sum() / 6
    assert loss.item() == pytest.approx(formula.item(), rel=1e-6)


def test_siglip_run_learns_its_scale_and_bias(world, tmp_path):
    cfg = TrainConfig(data=str(world), model="vit-ti-8", samples=640, batch_size=64, warmup=0, loss="siglip",
                      log_every=1)
    run = train_or_load(cfg, runs_dir=tmp_path, progress=False)
    first, last = run["metrics"][0], run["metrics"][-1]
    assert run["config"]["model_overrides"]["init_logit_bias"] == -10.0
    assert first["logit_scale"] == pytest.approx(10.0, abs=0.1) and first["logit_bias"] == pytest.approx(-10.0, abs=0.1)
    assert last["logit_bias"] != first["logit_bias"]  # both learned
    assert last["loss"] < first["loss"]
    model, _, _ = load_run(run["dir"])  # the checkpoint carries the bias
    assert model.logit_bias is not None and model.logit_bias.item() == pytest.approx(last["logit_bias"], abs=1e-3)


def test_logit_init_follows_the_loss_unless_the_temperature_is_set():
    import math

    from clipstudy.losses import logit_init

    assert logit_init(TrainConfig()) == {}  # CLIP's 0.07 is open_clip's own default
    assert logit_init(TrainConfig(loss="siglip")) == {"init_logit_scale": math.log(10), "init_logit_bias": -10.0}
    assert logit_init(TrainConfig(loss="siglip", temperature=0.05))["init_logit_scale"] == pytest.approx(math.log(20))
    assert logit_init(TrainConfig(temperature=0.03)) == {"init_logit_scale": math.log(1 / 0.03)}
