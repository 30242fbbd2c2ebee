"""Real evaluation sets (clipstudy.real): tiny fixtures in each layout real data ships in, their
labels, class names, templates and captions checked by hand and against CLIP_benchmark's own
dataset classes, bad samples skipped and counted, and evaluation with a tiny random model.
Cost: a few seconds on 2 CPU cores."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch

from clipstudy import models
from clipstudy.config import ConfigError
from clipstudy.data import DataError
from clipstudy.real import evaluate_eval_set, load_eval_set

cb_builder = pytest.importorskip("clip_benchmark.datasets.builder")
ALL_WNIDS = list(cb_builder.all_imagenet_wordnet_ids)


def _cb_json(name):
    import clip_benchmark.datasets as d
    from pathlib import Path

    return json.loads((Path(d.__file__).parent / name).read_text())


NAMES_1K = _cb_json("en_classnames.json")["imagenet1k"]
TEMPLATES_1K = [t.replace("{c}", "{}") for t in _cb_json("en_zeroshot_classification_templates.json")["imagenet1k"]]


def _image(seed, fmt="JPEG", size=(40, 30), mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 4 if mode == "RGBA" else 3), dtype=np.uint8)
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, fmt)
    return buf.getvalue()


CORRUPT = _image(99)[:200]  # a JPEG cut short: its header parses, its data does not


def _folders(root, classes, per_class=2):
    """root/<class>/<i>.<ext> with a mix of formats and extension cases."""
    formats = [("JPEG", "JPEG"), ("PNG", "png"), ("WEBP", "webp")]
    for c, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            fmt, ext = formats[(c + i) % 3]
            (root / cls / f"img{i}.{ext}").write_bytes(_image(10 * c + i, fmt))
    return root


def _tar(path, samples):
    """A webdataset shard: samples are (key, {ext: bytes})."""
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return models.create_model("vit-ti-8", 32).eval(), models.get_tokenizer("vit-ti-8")


def _check_metrics(metrics, keys):
    assert set(metrics) == set(keys)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


# --- class folders -----------------------------------------------------------------------------
def test_imagenet1k_wnid_folders(tmp_path):
    wnids = ["n01440764", "n02085620", "n04591713"]  # tench, Chihuahua, wine bottle
    root = _folders(tmp_path / "val", wnids)
    (root / wnids[0] / "broken.jpg").write_bytes(CORRUPT)
    (root / wnids[0] / "README.txt").write_text("not an image")  # ignored, as ImageFolder does
    (root / wnids[1] / "rgba.PNG").write_bytes(_image(7, "PNG", mode="RGBA"))

    es = load_eval_set(root, "imagenet1k", image_size=32)
    assert es.kind == "classification" and es.layout == "class folders"
    assert es.classnames == NAMES_1K  # the full 1,000-way problem
    assert es.templates == TEMPLATES_1K and all(t.count("{}") == 1 for t in es.templates)
    assert es.suite.images.shape == (7, 32, 32, 3) and es.suite.images.dtype == np.uint8
    assert sorted(es.suite.labels.tolist()) == [0, 0, 151, 151, 151, 907, 907]
    assert [es.classnames[i] for i in (0, 151, 907)] == ["tench", "Chihuahua", "wine bottle"]
    assert all(ALL_WNIDS[y] in wnids for y in es.suite.labels)
    assert es.skipped == {"corrupt image": 1} and "broken.jpg" in es.skipped_examples[0]
    assert es.suite.name == "imagenet1k"

    # a limit reads the classes round-robin: one image of each
    assert sorted(load_eval_set(root, "imagenet1k", image_size=32, limit=3).suite.labels.tolist()) == [0, 151, 907]


@pytest.mark.parametrize("name", ["imagenet-r", "imagenet-a"])
def test_imagenet_200_class_variants_match_clip_benchmark(tmp_path, name):
    wnids = {"imagenet-r": ["n01443537", "n02106662", "n12267677"],  # goldfish, German Shepherd Dog, acorn
             "imagenet-a": ["n01498041", "n02106662", "n12267677"]}[name]
    root = _folders(tmp_path / name, wnids, per_class=1)
    es = load_eval_set(root, name, image_size=32)
    # CLIP_benchmark's own dataset on the same folder (no download: the root exists)
    theirs = cb_builder.build_dataset(name, root=str(root), transform=None, split="test")
    assert len(es.classnames) == 200 and es.classnames == theirs.classes
    assert es.templates == TEMPLATES_1K
    # each folder's label names its own wnid's class, first and last of the 200 at the ends
    labels = es.suite.labels.tolist()
    assert labels[0] == 0 and labels[-1] == 199 and 0 < labels[1] < 199
    assert [es.classnames[y] for y in labels] == [NAMES_1K[ALL_WNIDS.index(w)] for w in wnids]
    if name == "imagenet-r":
        assert [es.classnames[y] for y in labels] == ["goldfish", "German Shepherd Dog", "acorn"]

    _folders(tmp_path / "bad", ["n01440764"], per_class=1)  # tench: in neither 200-class set
    with pytest.raises(DataError, match="n01440764"):
        load_eval_set(tmp_path / "bad", name, image_size=32)


def test_imagenetv2_numeric_folders_are_class_indices(tmp_path):
    root = _folders(tmp_path / "ImageNetV2-matched-frequency", ["0", "10", "2"], per_class=1)
    es = load_eval_set(root, "imagenetv2", image_size=32)
    assert es.classnames == NAMES_1K
    assert sorted(es.suite.labels.tolist()) == [0, 2, 10]  # int(folder), as CLIP_benchmark's ImageNetV2Dataset


def test_folders_without_a_name(tmp_path):
    # classnames.txt, one per sorted folder; the root's own templates
    root = _folders(tmp_path / "pets", ["a_cat", "b_dog"], per_class=1)
    (root / "classnames.txt").write_text("cat\ndog\n")
    (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\n{c} {with braces}\n")
    es = load_eval_set(root, image_size=32)
    assert es.classnames == ["cat", "dog"] and es.suite.labels.tolist() == [0, 1]
    assert es.templates == ["a photo of a {}.", "{} {{with braces}}"]
    assert [t.format("x") for t in es.templates] == ["a photo of a x.", "x {with braces}"]
    assert es.suite.name == "pets"
    # no classnames.txt: folder names, "_" as spaces; CLIP_benchmark's ImageNet templates
    (root / "classnames.txt").unlink()
    (root / "zeroshot_classification_templates.txt").unlink()
    es = load_eval_set(root, image_size=32)
    assert es.classnames == ["a cat", "b dog"] and es.templates == TEMPLATES_1K
    # unnamed ImageNet wnid folders: their ImageNet names, over the folders present
    root = _folders(tmp_path / "sub", ["n01440764", "n04591713"], per_class=1)
    assert load_eval_set(root, image_size=32).classnames == ["tench", "wine bottle"]
    # a name with a CLIP_benchmark class list but the wrong number of folders
    with pytest.raises(DataError, match="fer2013 has 7 classes"):
        load_eval_set(root, "fer2013", image_size=32)


def test_objectnet_matches_clip_benchmark(tmp_path):
    root = tmp_path / "objectnet"
    _folders(root / "objectnet-1.0" / "images", ["alarm_clock", "banana", "not_in_imagenet"], per_class=1)
    (root / "folder_to_objectnet_label.json").write_text(json.dumps(
        {"alarm_clock": "Alarm clock", "banana": "Banana", "not_in_imagenet": "Not in ImageNet"}))
    (root / "objectnet_to_imagenet_1k.json").write_text(json.dumps(
        {"Alarm clock": "analog clock; digital clock", "Banana": "banana"}))
    (root / "imagenet_to_label_2012_v2").write_text("analog clock\nbanana\ndigital clock\n")
    (root / "pytorch_to_imagenet_2012_id.json").write_text(json.dumps({"409": 0, "954": 1, "530": 2}))
    from clip_benchmark.datasets.objectnet import ObjectNetDataset

    es = load_eval_set(root, "objectnet", image_size=32)
    assert es.classnames == ObjectNetDataset(str(root), transform=None).classes == ["alarm clock", "banana"]
    assert sorted(es.suite.labels.tolist()) == [0, 1]  # the folder outside the mapping is left out
    assert es.templates == TEMPLATES_1K


# --- CLIP_benchmark webdataset -----------------------------------------------------------------
def _wds_classification(root):
    (root / "test").mkdir(parents=True)
    (root / "classnames.txt").write_text("cat\ndog\nfish\n")
    (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\na {c} in the wild.\n")
    (root / "test" / "nshards.txt").write_text("2\n")
    samples = [(f"s{i:07d}", {"webp": _image(i, "WEBP"), "cls": str(i % 3).encode()}) for i in range(6)]
    samples[4] = ("s0000004", {"jpg": CORRUPT, "cls": b"1"})
    _tar(root / "test" / "0.tar", samples[:4])
    _tar(root / "test" / "1.tar", samples[4:] + [("s0000006", {"webp": _image(6, "WEBP"), "cls": b"0"})])
    # cut 1.tar inside its last member's data: that sample is lost, the shard counted as truncated
    data = (root / "test" / "1.tar").read_bytes()
    cut = data.rindex(b"s0000006.webp") + 512 + 100
    (root / "test" / "1.tar").write_bytes(data[:cut])
    return root


@pytest.mark.filterwarnings("ignore:WebDataset\\(shardshuffle:UserWarning")  # CLIP_benchmark's reader
def test_wds_classification(tmp_path):
    root = _wds_classification(tmp_path / "wds_cats")
    es = load_eval_set(root, image_size=32)
    assert es.kind == "classification" and es.layout == "webdataset"
    assert es.classnames == ["cat", "dog", "fish"]
    assert es.templates == ["a photo of a {}.", "a {} in the wild."]
    assert es.suite.labels.tolist() == [0, 1, 2, 0, 2]  # s4 corrupt, s6 in the cut
    assert es.skipped == {"corrupt image": 1, "truncated shard": 1}
    assert any("1.tar:s0000004" in e for e in es.skipped_examples)
    # CLIP_benchmark reads the same class names and templates ({c} form)
    theirs = cb_builder.build_wds_dataset("wds_cats", transform=None, data_dir=str(root))
    assert es.classnames == theirs.classes
    assert es.templates == [t.replace("{c}", "{}") for t in theirs.templates]
    # a limit stops early; the 'wds/' form of a name is accepted
    assert len(load_eval_set(root, "wds/imagenet1k", image_size=32, limit=2)) == 2


def _wds_retrieval(root):
    (root / "test").mkdir(parents=True)
    (root / "dataset_type.txt").write_text("retrieval\n")
    (root / "test" / "nshards.txt").write_text("1\n")
    samples = [(f"s{i}", {"jpg": _image(i), "txt": f"a {i} dog\nthe {i} sun\n".encode()}) for i in range(4)]
    samples[1] = ("s1", {"png": _image(1, "PNG"), "txt": b"one caption"})
    samples.append(("s4", {"jpg": _image(4)}))  # no captions
    _tar(root / "test" / "0.tar", samples)
    return root


def test_wds_retrieval(tmp_path):
    es = load_eval_set(_wds_retrieval(tmp_path / "wds_mscoco_captions"), "wds_mscoco_captions", image_size=32)
    assert es.kind == "retrieval" and es.classnames is None and es.templates is None
    assert es.suite.captions == [["a 0 dog", "the 0 sun"], ["one caption"], ["a 2 dog", "the 2 sun"],
                                 ["a 3 dog", "the 3 sun"]]
    assert es.skipped == {"no caption": 1} and es.suite.name == "mscoco_captions"


# --- caption annotations over an image folder --------------------------------------------------
def test_karpathy_json(tmp_path):
    root = tmp_path / "flickr30k"
    (root / "flickr30k-images").mkdir(parents=True)
    images = []
    for i, split in enumerate(["test", "train", "test", "test"]):
        if i != 3:  # the last test image is missing on disk
            (root / "flickr30k-images" / f"{i}.jpg").write_bytes(_image(i))
        images.append({"filename": f"{i}.jpg", "split": split,
                       "sentences": [{"raw": f"photo {i} caption {j}"} for j in range(1 + i % 2)]})
    (root / "dataset_flickr30k.json").write_text(json.dumps({"images": images, "dataset": "flickr30k"}))
    es = load_eval_set(root, "flickr30k", image_size=32)
    assert es.layout == "karpathy json" and es.kind == "retrieval"
    assert es.suite.captions == [["photo 0 caption 0"], ["photo 2 caption 0"]]  # test split only
    assert es.skipped == {"missing image": 1}


def test_clip_benchmark_flickr_txt_matches_its_reader(tmp_path):
    root = tmp_path / "flickr8k"
    root.mkdir()
    lines = ["image,caption", "10.jpg,a dog, running", "11.jpg,a cat", "10.jpg,a brown dog", "12.jpg,cut"]
    (root / "flickr8k_test_karpathy.txt").write_text("\n".join(lines) + "\n")
    for i in (10, 11, 12):
        (root / f"{i}.jpg").write_bytes(_image(i) if i != 12 else CORRUPT)
    from clip_benchmark.datasets.flickr import Flickr

    es = load_eval_set(root, image_size=32)
    theirs = dict(Flickr(str(root), str(root / "flickr8k_test_karpathy.txt")).data)
    assert es.layout == "flickr txt"
    assert es.suite.captions == [theirs["10.jpg"], theirs["11.jpg"]] == [["a dog, running", "a brown dog"], ["a cat"]]
    assert es.skipped == {"corrupt image": 1}


def test_coco_format_json(tmp_path):
    root = tmp_path / "coco"
    (root / "val2014").mkdir(parents=True)
    ann = {"images": [{"id": 7, "file_name": "b.jpg"}, {"id": 3, "file_name": "a.jpg"}],
           "annotations": [{"image_id": 7, "caption": "b one"}, {"image_id": 3, "caption": "a one"},
                           {"image_id": 7, "caption": "b two"}]}
    (root / "coco_test_karpathy.json").write_text(json.dumps(ann))
    for n in ("a", "b"):
        (root / "val2014" / f"{n}.jpg").write_bytes(_image(ord(n)))
    es = load_eval_set(root / "coco_test_karpathy.json", "mscoco_captions", image_size=32)
    assert es.layout == "coco json" and es.suite.captions == [["a one"], ["b one", "b two"]]  # sorted ids


# --- evaluation --------------------------------------------------------------------------------
def test_evaluate_eval_sets(tmp_path, tiny):
    model, tokenizer = tiny
    cls = load_eval_set(_wds_classification(tmp_path / "c"), image_size=32)
    metrics = evaluate_eval_set(model, tokenizer, cls, batch_size=4, precision="fp32")
    _check_metrics(metrics, ["top1", "top5"])
    assert metrics["top5"] == 1.0  # 3 classes
    ret = load_eval_set(_wds_retrieval(tmp_path / "r"), image_size=32)
    _check_metrics(evaluate_eval_set(model, tokenizer, ret, batch_size=3, precision="fp32"),
                   ["i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"])
    folders = load_eval_set(_folders(tmp_path / "f", ["n01440764", "n02085620"], per_class=1), image_size=32)
    _check_metrics(evaluate_eval_set(model, tokenizer, folders, precision="fp32"), ["top1", "top5"])


# --- errors ------------------------------------------------------------------------------------
def test_errors(tmp_path):
    root = _folders(tmp_path / "f", ["a", "b"], per_class=1)
    with pytest.raises(ConfigError, match="unknown evaluation set name 'imagenet-z'.*imagenet-r"):
        load_eval_set(root, "imagenet-z", image_size=32)
    with pytest.raises(DataError, match="nowhere"):
        load_eval_set(tmp_path / "nowhere", image_size=32)
    with pytest.raises(ConfigError, match="'flickr30k' is a retrieval set"):
        load_eval_set(root, "flickr30k", image_size=32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no evaluation set found"):
        load_eval_set(tmp_path / "empty", image_size=32)
    for p in (root / "a").iterdir():
        p.write_bytes(CORRUPT)
    for p in (root / "b").iterdir():
        p.write_bytes(CORRUPT)
    with pytest.raises(DataError, match="no usable images.*corrupt image"):
        load_eval_set(root, image_size=32)
