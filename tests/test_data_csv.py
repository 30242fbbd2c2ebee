"""Caption tables as training data (clipstudy.data.load_pairs): open_clip_train's CSV / TSV with a
header, CC3M's headerless `caption<TAB>image` TSV, and a world exported with `export_csv` loading
back to the same pairs and training. Fixtures are built in tmp_path with PIL and csv (the world
is tests/conftest.py's small_world). ~5 s on 2 cores.
"""

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clipstudy.data import DataError, load_pairs


def color(i: int) -> tuple[int, int, int]:
    return (10 * i % 256, 200 - 5 * i % 200, 30 + 7 * i % 200)


def write_images(folder: Path, n: int, size: int = 8) -> list[str]:
    """`n` PNGs of one flat colour each in `folder`; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        Image.new("RGB", (size, size), color(i)).save(folder / f"{i:03d}.png")
        names.append(f"{i:03d}.png")
    return names


def write_table(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def pixel(pairs, i: int) -> tuple[int, ...]:
    return tuple(int(v) for v in pairs.images[i, 0, 0])


# ---- the two layouts ----------------------------------------------------------------------------

def test_open_clip_csv_with_header_and_extra_columns(tmp_path):
    names = write_images(tmp_path / "images", 3)
    rows = [["title", "filepath", "source"]] + [[f"caption {i}", f"images/{n}", f"web{i}"] for i, n in enumerate(names)]
    table = write_table(tmp_path / "train.csv", rows)
    for source in (table, tmp_path, str(table)):  # the file, or the folder holding it
        pairs = load_pairs(source)
        assert pairs.captions == ["caption 0", "caption 1", "caption 2"]
        assert pairs.images.shape == (3, 8, 8, 3) and pairs.images.dtype == np.uint8
        assert [pixel(pairs, i) for i in range(3)] == [color(i) for i in range(3)]
        assert pairs.meta == [{"source": "web0"}, {"source": "web1"}, {"source": "web2"}]
        assert pairs.skipped == {} and pairs.skipped_examples == []


def test_tsv_with_header_and_aliases_limit_and_image_size(tmp_path):
    names = write_images(tmp_path / "img", 4, size=12)
    rows = [["Image_Path", "caption"]] + [[f"img/{n}", f"a photo {i}"] for i, n in enumerate(names)]
    write_table(tmp_path / "pairs.tsv", rows, delimiter="\t")
    pairs = load_pairs(tmp_path, image_size=6, limit=3)
    assert pairs.captions == ["a photo 0", "a photo 1", "a photo 2"]
    assert pairs.images.shape == (3, 6, 6, 3)
    assert pairs.meta == [{}, {}, {}]


def test_cc3m_headerless_tsv_relative_and_absolute_paths(tmp_path):
    names = write_images(tmp_path / "data" / "images", 2)
    elsewhere = write_images(tmp_path / "elsewhere", 3)
    rows = [["a dog on a beach", f"images/{names[0]}"],
            ["actor attends the premiere", str(tmp_path / "elsewhere" / elsewhere[2])],
            ["a cat, indoors", f"images/{names[1]}"]]
    table = write_table(tmp_path / "data" / "Train_GCC-training.tsv", rows, delimiter="\t")
    pairs = load_pairs(table)
    assert pairs.captions == ["a dog on a beach", "actor attends the premiere", "a cat, indoors"]
    assert [pixel(pairs, i) for i in range(3)] == [color(0), color(2), color(1)]
    assert pairs.meta == [{}, {}, {}] and pairs.skipped == {}


def test_cc3m_tsv_of_urls_is_read_but_never_downloaded(tmp_path):
    write_images(tmp_path / "images", 1)
    rows = [["a remote picture", "http://lh6.ggpht.com/-IvRtNLNcG8o/IMG_3422.JPG?imgmax=800"],
            ["another", "https://example.com/image"],
            ["a local picture", "images/000.png"]]
    write_table(tmp_path / "cc3m.tsv", rows, delimiter="\t")
    pairs = load_pairs(tmp_path)
    assert pairs.captions == ["a local picture"]
    assert pairs.skipped == {"remote image (download first)": 2}
    assert pairs.skipped_examples == ["cc3m.tsv:row 1 (remote image (download first))",
                                      "cc3m.tsv:row 2 (remote image (download first))"]


def test_quoted_caption_with_comma_quote_and_newline(tmp_path):
    names = write_images(tmp_path / "images", 2)
    tricky = 'a "big" dog,\non two lines, with commas'
    for delimiter, suffix in ((",", "csv"), ("\t", "tsv")):
        table = write_table(tmp_path / f"t.{suffix}", [["filepath", "title"], [f"images/{names[0]}", tricky],
                                                      [f"images/{names[1]}", "plain"]], delimiter=delimiter)
        assert '"a ""big"" dog,\n' in table.read_text()  # the csv module did quote it
        pairs = load_pairs(table)
        assert pairs.captions == [tricky, "plain"] and pairs.skipped == {}
    rows = [[tricky, f"images/{names[0]}"], ["plain", f"images/{names[1]}"]]  # CC3M layout
    assert load_pairs(write_table(tmp_path / "t.tsv", rows, delimiter="\t")).captions == [tricky, "plain"]


def test_bom_crlf_and_blank_lines(tmp_path):
    names = write_images(tmp_path / "images", 2)
    text = f"\ufefffilepath,title\r\nimages/{names[0]},first\r\n\r\nimages/{names[1]},second\r\n"
    (tmp_path / "t.csv").write_bytes(text.encode("utf-8"))
    pairs = load_pairs(tmp_path / "t.csv")
    assert pairs.captions == ["first", "second"] and pairs.skipped == {}


# ---- bad rows: skipped and counted --------------------------------------------------------------

def test_bad_rows_are_skipped_and_counted_exactly(tmp_path):
    names = write_images(tmp_path / "images", 4)
    img = Image.new("RGB", (8, 8), (1, 2, 3))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    (tmp_path / "images" / "bad.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # truncated
    (tmp_path / "images" / "text.jpg").write_bytes(b"not a jpeg at all")
    rows = [["filepath", "title"],
            [f"images/{names[0]}", "good 0"],           # row 1
            ["images/gone.png", "missing file"],        # row 2
            ["https://example.com/x.jpg", "a url"],     # row 3
            ["images/bad.jpg", "truncated jpeg"],       # row 4
            [f"images/{names[1]}", ""],                 # row 5
            [f"images/{names[2]}", "   "],              # row 6
            ["images/only-one-cell.png"],               # row 7
            [f"images/{names[3]}", "good 3"],           # row 8
            ["images/text.jpg", "not an image"],        # row 9
            [f"images/{names[0]}", "too", "many"],      # row 10
            ["", "no image named"]]                     # row 11
    write_table(tmp_path / "train.csv", rows)
    pairs = load_pairs(tmp_path / "train.csv")
    assert pairs.captions == ["good 0", "good 3"]
    assert pairs.skipped == {"missing image": 1, "remote image (download first)": 1, "corrupt image": 2,
                             "empty caption": 2, "bad row": 2, "no image": 1}
    assert pairs.skipped_examples == [
        "train.csv:row 2 (missing image)", "train.csv:row 3 (remote image (download first))",
        "train.csv:row 4 (corrupt image)", "train.csv:row 5 (empty caption)", "train.csv:row 6 (empty caption)",
        "train.csv:row 7 (bad row)", "train.csv:row 9 (corrupt image)", "train.csv:row 10 (bad row)",
        "train.csv:row 11 (no image)"]


def test_a_table_of_nothing_usable_is_a_data_error(tmp_path):
    write_table(tmp_path / "t.csv", [["filepath", "title"], ["gone.png", "x"], ["gone2.png", "y"]])
    with pytest.raises(DataError, match=r"no usable pairs.*missing image.*t.csv:row 1"):
        load_pairs(tmp_path / "t.csv")
    write_table(tmp_path / "t.csv", [["filepath", "title"]])
    with pytest.raises(DataError, match="no image-caption pairs"):
        load_pairs(tmp_path / "t.csv")


# ---- tables that cannot be read: DataError ------------------------------------------------------

def test_folder_with_two_tables_is_a_data_error(tmp_path):
    write_table(tmp_path / "a.csv", [["filepath", "title"]])
    write_table(tmp_path / "b.tsv", [["filepath", "title"]], delimiter="\t")
    with pytest.raises(DataError, match=r"2 caption tables \(a\.csv, b\.tsv\).*pass the one"):
        load_pairs(tmp_path)


def test_unknown_columns_are_a_data_error(tmp_path):
    write_table(tmp_path / "t.csv", [["picture", "words"], ["images/000.png", "a caption"]])
    with pytest.raises(DataError) as e:
        load_pairs(tmp_path / "t.csv")
    msg = str(e.value)
    assert "['picture', 'words']" in msg and "filepath" in msg and "title" in msg and "caption" in msg
    write_table(tmp_path / "t.csv", [["filepath", "words"], ["images/000.png", "a caption"]])  # no caption column
    with pytest.raises(DataError, match=r"\['filepath', 'words'\]"):
        load_pairs(tmp_path / "t.csv")


def test_non_utf8_table_is_a_data_error(tmp_path):
    write_images(tmp_path / "images", 1)
    (tmp_path / "t.csv").write_bytes("filepath,title\nimages/000.png,caf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"t\.csv is not UTF-8"):
        load_pairs(tmp_path / "t.csv")
    (tmp_path / "t.csv").write_bytes(b"\xff\xfe" + "filepath,title\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"t\.csv is not UTF-8"):
        load_pairs(tmp_path / "t.csv")
    rows = "".join(f"images/000.png,caption {i}\n" for i in range(2000))  # the bad byte well past the first read
    (tmp_path / "t.csv").write_bytes(f"filepath,title\n{rows}".encode() + b"images/000.png,caf\xe9\n")
    with pytest.raises(DataError, match=r"t\.csv is not UTF-8 text \(undecodable bytes at or after data row \d+\)"):
        load_pairs(tmp_path / "t.csv")


def test_missing_and_empty_tables_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(tmp_path / "nope.csv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_pairs(tmp_path / "empty.tsv")


def test_other_layouts_keep_their_meaning(tmp_path):
    # a stray CSV beside shards does not change what the folder is
    import tarfile

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (5, 6, 7)).save(buf, format="PNG")
    with tarfile.open(tmp_path / "000.tar", "w") as tar:
        for name, data in (("a.png", buf.getvalue()), ("a.txt", b"from the shard")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    write_table(tmp_path / "notes.csv", [["filepath", "title"], ["x.png", "from the csv"]])
    assert load_pairs(tmp_path).captions == ["from the shard"]


# ---- a world exported as open_clip_train's CSV --------------------------------------------------

@pytest.fixture(scope="module")
def exported(small_world, tmp_path_factory):
    from clipstudy.world import export_csv

    table = export_csv(small_world, tmp_path_factory.mktemp("csv-world") / "csv")
    return small_world, table


def test_exported_world_loads_back_identically(exported):
    world, table = exported
    assert table.read_text().splitlines()[0] == "filepath\ttitle"  # tabs in a .csv, as open_clip_train writes
    original, back = load_pairs(world), load_pairs(table.parent)
    assert back.captions == original.captions
    assert np.array_equal(back.images, np.asarray(original.images))
    assert back.skipped == {} and back.meta == [{}] * len(original)


def test_training_on_the_exported_csv(exported, tmp_path):
    from clipstudy.train import TrainConfig, train

    _, table = exported
    cfg = TrainConfig(data=str(table), out=str(tmp_path / "run"), model="vit-ti-8", samples=64, batch_size=32,
                      warmup=0, log_every=1, threads=1)  # one thread: ~0.5 s; two on a busy 2-core box: ~20 s
    threads = torch.get_num_threads()
    try:
        summary = train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)  # train() sets it for the whole process
    assert summary["steps"] == 2 and summary["samples"] == 64
    assert (tmp_path / "run" / "summary.json").is_file()
