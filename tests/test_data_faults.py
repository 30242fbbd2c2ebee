"""Bad data is skipped and counted, never a crash and never silent (clipstudy.data.load_pairs).

Every fixture is built here in tmp_path: tar shards with `tarfile`, images with PIL, HF datasets
with `datasets.Dataset.from_dict(...).save_to_disk`.
"""

import io
import json
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from clipstudy.data import DOTTED_KEY, DUPLICATE_KEY, DataError, load_pairs


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


PNG = encode(Image.new("RGB", (4, 4), (10, 200, 30)))


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar of the given (name, bytes) members, in order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def good(n: int, start: int = 0, png: bytes = PNG) -> list[tuple[str, bytes]]:
    """Members of `n` intact samples: <key>.png then <key>.txt."""
    return [m for i in range(start, start + n)
            for m in ((f"{i:04d}.png", png), (f"{i:04d}.txt", f"caption {i}".encode()))]


def hf_dataset(path: Path, images: list, captions: list, caption_type: str = "binary") -> Path:
    import datasets

    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value(caption_type)})
    images = [None if b is None else {"bytes": b, "path": None} for b in images]
    datasets.Dataset.from_dict({"image": images, "caption": captions}, features=features).save_to_disk(str(path))
    return path


def test_good_shards_skip_nothing(tmp_path):
    write_tar(tmp_path / "a.tar", good(3))
    pairs = load_pairs(tmp_path)
    assert len(pairs) == 3 and pairs.images.shape == (3, 4, 4, 3)
    assert pairs.skipped == {} and pairs.skipped_examples == []
    assert pairs.captions == ["caption 0", "caption 1", "caption 2"]


def test_corrupt_images_are_skipped_and_named(tmp_path):
    jpeg = encode(Image.new("RGB", (16, 16), "red"), "JPEG")
    bad = [("0003.png", PNG[: len(PNG) // 2]), ("0003.txt", b"half a png"),
           ("0004.jpg", jpeg[: len(jpeg) // 2]), ("0004.txt", b"half a jpeg"),
           ("0005.png", b"not an image at all"), ("0005.txt", b"noise")]
    write_tar(tmp_path / "s.tar", good(3) + bad + good(2, start=6))
    pairs = load_pairs(tmp_path / "s.tar")
    assert len(pairs) == 5 and pairs.captions[-1] == "caption 7"
    assert pairs.skipped == {"corrupt image": 3}
    assert pairs.skipped_examples == ["s.tar:0003 (corrupt image)", "s.tar:0004 (corrupt image)",
                                      "s.tar:0005 (corrupt image)"]


def test_bad_captions_and_missing_members_are_counted(tmp_path):
    bad = [("0002.png", PNG), ("0002.txt", b"caf\xe9 latin-1"),
           ("0003.png", PNG), ("0003.txt", b""),
           ("0004.png", PNG), ("0004.txt", b" \n\t"),
           ("0005.png", PNG),  # no caption
           ("0006.txt", b"a caption without its image"),
           ("0007.json", b"{}")]  # neither
    write_tar(tmp_path / "s.tar", good(2) + bad + good(1, start=8))
    pairs = load_pairs(tmp_path)
    assert len(pairs) == 3
    assert pairs.skipped == {"caption not UTF-8": 1, "empty caption": 2, "no caption": 1, "no image": 2}
    assert "s.tar:0002 (caption not UTF-8)" in pairs.skipped_examples
    assert "s.tar:0005 (no caption)" in pairs.skipped_examples
    assert "s.tar:0006 (no image)" in pairs.skipped_examples


def test_bad_json_sidecar_keeps_the_pair(tmp_path):
    members = [("0000.json", b'{"classes": [3]}'), ("0000.png", PNG), ("0000.txt", b"good json"),
               ("0001.json", b"{not json"), ("0001.png", PNG), ("0001.txt", b"bad json"),
               ("0002.json", b'{"x": "\xff"}'), ("0002.png", PNG), ("0002.txt", b"bad utf-8 json"),
               ("0003.json", b"[1, 2]"), ("0003.png", PNG), ("0003.txt", b"json not an object")]
    write_tar(tmp_path / "s.tar", members)
    pairs = load_pairs(tmp_path)
    assert len(pairs) == 4
    assert pairs.meta == [{"classes": [3]}, {}, {}, {}]
    assert pairs.skipped == {"bad json (pair kept)": 3}
    assert pairs.skipped_examples[0] == "s.tar:0001 (bad json (pair kept))"


@pytest.mark.parametrize("stream", [False, True])
def test_a_duplicated_key_is_skipped_not_re_paired(tmp_path, stream):
    other = encode(Image.new("RGB", (4, 4), (200, 10, 10)))
    grouped = [("0001.png", PNG), ("0001.png", other), ("0001.txt", b"first"), ("0001.txt", b"second")]
    interleaved = [("0002.png", PNG), ("0002.txt", b"first"), ("0002.png", other), ("0002.txt", b"second")]
    write_tar(tmp_path / "s.tar", good(1) + grouped + interleaved + good(1, start=3))
    pairs = load_pairs(tmp_path, image_size=4, stream=stream)
    assert pairs.captions == ["caption 0", "caption 3"]  # which image goes with which caption is unknown
    assert pairs.skipped == {DUPLICATE_KEY: 4}  # each key stood for two samples
    assert pairs.skipped_examples == [f"s.tar:0001 ({DUPLICATE_KEY})", f"s.tar:0002 ({DUPLICATE_KEY})"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_dot_in_the_key_is_named_as_the_reason(tmp_path, stream):
    dotted = [("a.b.c.png", PNG), ("a.b.c.txt", b"a dotted name")]
    write_tar(tmp_path / "s.tar", good(1) + dotted + good(1, start=1))
    pairs = load_pairs(tmp_path, image_size=4, stream=stream)
    assert len(pairs) == 2 and pairs.skipped == {DOTTED_KEY: 1}
    assert pairs.skipped_examples == [f"s.tar:a.b.c ({DOTTED_KEY})"]
    assert "webdataset" in DOTTED_KEY and "first dot" in DOTTED_KEY


def member_offsets(path: Path) -> dict[str, tuple[int, int]]:
    with tarfile.open(path) as tar:
        return {m.name: (m.offset, m.offset_data) for m in tar}


@pytest.mark.parametrize("where, kept", [
    ("data", 6),  # cut inside 0006.png's bytes: samples 0-5 were complete
    ("header", 5),  # cut at 0006.png's header: 0005 was still being read (it might have had more members), dropped
])
def test_truncated_shard_keeps_what_came_before(tmp_path, where, kept):
    shard = write_tar(tmp_path / "a.tar", good(10))
    write_tar(tmp_path / "b.tar", good(4, start=10))
    header, data = member_offsets(shard)["0006.png"]
    cut = data + 10 if where == "data" else header
    shard.write_bytes(shard.read_bytes()[:cut])
    pairs = load_pairs(tmp_path)
    assert len(pairs) == kept + 4
    assert pairs.captions[kept - 1] == f"caption {kept - 1}" and pairs.captions[kept] == "caption 10"
    assert pairs.skipped == {"truncated shard": 1}
    assert pairs.skipped_examples == ["a.tar (truncated shard)"]


def test_garbled_header_counts_as_truncated(tmp_path):
    shard = write_tar(tmp_path / "a.tar", good(5))
    header, _ = member_offsets(shard)["0003.png"]
    raw = bytearray(shard.read_bytes())
    raw[header:header + 100] = b"\x07" * 100  # tarfile would stop here quietly
    shard.write_bytes(bytes(raw))
    pairs = load_pairs(shard)
    assert len(pairs) == 2 and pairs.skipped == {"truncated shard": 1}


def test_empty_shards_are_counted(tmp_path):
    write_tar(tmp_path / "a.tar", good(3))
    write_tar(tmp_path / "b.tar", [])  # a valid tar with no members
    (tmp_path / "c.tar").write_bytes(b"")  # a zero-byte file
    pairs = load_pairs(tmp_path)
    assert len(pairs) == 3
    assert pairs.skipped == {"empty shard": 2}
    assert pairs.skipped_examples == ["b.tar (empty shard)", "c.tar (empty shard)"]


def test_shard_that_cannot_be_opened_is_one_error(tmp_path):
    write_tar(tmp_path / "a.tar", good(3))
    (tmp_path / "b.tar").write_bytes(b"this is not a tar file" * 50)
    with pytest.raises(DataError, match=r"b\.tar is not a tar file"):
        load_pairs(tmp_path)
    with pytest.raises(DataError, match=r"shard .*missing\.tar does not exist"):
        load_pairs(tmp_path / "missing.tar")
    with pytest.raises(DataError, match=r"c\.tar does not exist"):
        load_pairs(str(tmp_path / "{a,c}.tar"))


def test_everything_skipped_is_an_error_naming_the_counts(tmp_path):
    write_tar(tmp_path / "a.tar", [("0000.png", b"junk"), ("0000.txt", b"x"), ("0001.png", PNG)])
    with pytest.raises(DataError, match=r"a\.tar.*no usable pairs.*'corrupt image': 1, 'no caption': 1"):
        load_pairs(tmp_path / "a.tar")


def grey16(value: int) -> bytes:
    return encode(Image.fromarray(np.full((4, 4), value, np.uint16)))


def palette(transparent: bool) -> bytes:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 1 = red
    return encode(img, transparency=1) if transparent else encode(img)


MODES = [  # (encoded image, expected RGB of every pixel, tolerance)
    (grey16(32768), (128, 128, 128), 0),  # "I;16": mid-grey stays mid-grey, not white
    (grey16(65535), (255, 255, 255), 0),
    (grey16(0), (0, 0, 0), 0),
    (palette(False), (255, 0, 0), 0),
    (palette(True), (255, 255, 255), 0),  # the transparent index shows the white background
    (encode(Image.new("L", (4, 4), 100)), (100, 100, 100), 0),
    (encode(Image.new("LA", (4, 4), (0, 0))), (255, 255, 255), 0),
    (encode(Image.new("LA", (4, 4), (0, 255))), (0, 0, 0), 0),
    (encode(Image.new("RGBA", (4, 4), (255, 0, 0, 128))), (255, 127, 127), 1),
    (encode(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "JPEG", quality=95), (255, 255, 255), 2),
    (encode(Image.new("CMYK", (4, 4), (255, 0, 0, 0)), "JPEG", quality=95), (0, 255, 255), 2),
]


def check_modes(pairs):
    assert len(pairs) == len(MODES) and pairs.skipped == {}
    for i, (_, rgb, tol) in enumerate(MODES):
        got = pairs.images[i].reshape(-1, 3).astype(int)
        assert (np.abs(got - rgb) <= tol).all(), (i, got[0], rgb)


def test_image_modes_convert_to_rgb_in_shards(tmp_path):
    members = [m for i, (data, _, _) in enumerate(MODES) for m in ((f"{i:04d}.png", data), (f"{i:04d}.txt", b"x"))]
    check_modes(load_pairs(write_tar(tmp_path / "a.tar", members)))


def test_image_modes_convert_to_rgb_in_hf(tmp_path):
    check_modes(load_pairs(hf_dataset(tmp_path / "hf", [d for d, _, _ in MODES], [b"x"] * len(MODES))))


def test_any_size_loads_at_image_size(tmp_path):
    sizes = [(1, 1), (5000, 20), (20, 5000), (33, 17), (8, 8)]
    members = []
    for i, (w, h) in enumerate(sizes):
        members += [(f"{i:04d}.png", encode(Image.new("RGB", (w, h), (200, 10, 10)))), (f"{i:04d}.txt", b"x")]
    write_tar(tmp_path / "a.tar", members)
    pairs = load_pairs(tmp_path, image_size=8)
    assert pairs.images.shape == (5, 8, 8, 3) and pairs.skipped == {}
    assert (pairs.images[0] == (200, 10, 10)).all()  # 1x1 scaled up
    with pytest.raises(DataError, match=r"1x1 px at a\.tar:0000, 5000x20 px at a\.tar:0001.*pass image_size"):
        load_pairs(tmp_path)


def test_hf_rows_are_skipped_and_counted(tmp_path):
    images = [PNG, b"junk", None, PNG, PNG, PNG, PNG]
    captions = [b"one", b"two", b"three", b"\xff\xfe", b"  ", None, b"seven"]
    path = hf_dataset(tmp_path / "hf", images, captions)
    pairs = load_pairs(path)
    assert pairs.captions == ["one", "seven"]
    assert pairs.skipped == {"corrupt image": 1, "no image": 1, "caption not UTF-8": 1, "empty caption": 1,
                             "no caption": 1}
    assert pairs.skipped_examples[:2] == ["HF row 1 (corrupt image)", "HF row 2 (no image)"]
    assert load_pairs(path, limit=1).captions == ["one"]


def test_hf_string_captions_and_sizes(tmp_path):
    images = [encode(Image.new("RGB", (1, 1), "blue")), encode(Image.new("RGB", (5000, 20), "blue"))]
    path = hf_dataset(tmp_path / "hf", images, ["a", "b"], caption_type="string")
    assert load_pairs(path, image_size=8).images.shape == (2, 8, 8, 3)
    with pytest.raises(DataError, match="pass image_size"):
        load_pairs(path)


@pytest.mark.parametrize("damage", ["truncated arrow", "bad state.json", "missing arrow"])
def test_damaged_hf_folder_is_one_error(tmp_path, damage):
    path = hf_dataset(tmp_path / "hf", [PNG] * 3, [b"a", b"b", b"c"])
    arrow = next(path.glob("*.arrow"))
    if damage == "truncated arrow":
        arrow.write_bytes(arrow.read_bytes()[:100])
    elif damage == "bad state.json":
        (path / "state.json").write_text("{bad")
    else:
        arrow.unlink()
    with pytest.raises(DataError, match=r"cannot read the HF dataset at .*hf: \w+") as e:
        load_pairs(path)
    assert "\n" not in str(e.value)


def write_world(path: Path, n_images: int, lines: list[str], size: int = 8) -> Path:
    path.mkdir(parents=True)
    np.save(path / "images.npy", np.full((n_images, size, size, 3), 7, np.uint8))
    (path / "meta.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_world_with_fewer_captions_than_images_is_an_error(tmp_path):
    path = write_world(tmp_path / "w", 64, [json.dumps({"caption": f"c{i}"}) for i in range(10)])
    with pytest.raises(DataError, match="64 images but 10 caption rows"):
        load_pairs(path)


def test_world_with_a_malformed_meta_line_is_an_error(tmp_path):
    lines = ['{"caption": "a"}', '{"caption": "b"}', '{"caption": "c"', '{"caption": "d"}']
    with pytest.raises(DataError, match=r"meta\.jsonl line 3 is not JSON"):
        load_pairs(write_world(tmp_path / "w", 4, lines))
    with pytest.raises(DataError, match=r"line 2 has no \"caption\" string"):
        load_pairs(write_world(tmp_path / "w2", 2, ['{"caption": "a"}', '{"classes": [1]}']))


def test_world_ignores_a_different_image_size(tmp_path):
    path = write_world(tmp_path / "w", 3, [json.dumps({"caption": f"c{i}"}) for i in range(3)])
    pairs = load_pairs(path, image_size=32)
    assert pairs.images.shape == (3, 8, 8, 3) and pairs.skipped == {} and pairs.skipped_examples == []
    assert len(load_pairs(path, limit=2)) == 2


def test_progress_bar(tmp_path, capsys):
    write_tar(tmp_path / "a.tar", good(3) + [("0003.png", b"junk"), ("0003.txt", b"x")])
    assert len(load_pairs(tmp_path, progress=True)) == 3
    assert "reading" in capsys.readouterr().err


# Property tests: whatever bytes a shard or a HF dataset holds, the reader either returns pairs that
# account for every sample written, or stops with a DataError.

def damaged_png(data: st.DataObject) -> bytes:
    raw = bytearray(PNG)
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    return bytes(raw)


images = st.one_of(st.none(), st.binary(max_size=300), st.just(PNG),
                   st.integers(0, len(PNG)).map(lambda n: PNG[:n]))  # truncated PNGs
captions = st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=20).map(str.encode))


def account_for_all(load, n: int):
    try:
        pairs = load()
    except DataError as e:
        assert "no usable pairs" in str(e)
        return
    assert len(pairs) + sum(pairs.skipped.values()) == n
    assert pairs.images.shape == (len(pairs), 8, 8, 3) and len(pairs.captions) == len(pairs.meta) == len(pairs)


@settings(max_examples=25, deadline=None)
@given(samples=st.lists(st.tuples(images, captions), min_size=1, max_size=8), data=st.data())
def test_any_bytes_in_a_shard(samples, data):
    if data.draw(st.booleans()):
        samples.append((damaged_png(data), b"a flipped byte"))
    members = []
    for i, (image, caption) in enumerate(samples):
        members += [(f"{i:04d}.png", image)] if image is not None else []
        members += [(f"{i:04d}.txt", caption)] if caption is not None else []
    with tempfile.TemporaryDirectory() as tmp:
        shard = write_tar(Path(tmp) / "s.tar", members)
        # a sample with neither member leaves no trace in the tar: it was never written
        written = sum(image is not None or caption is not None for image, caption in samples)
        account_for_all(lambda: load_pairs(shard, image_size=8), written)


@settings(max_examples=25, deadline=None)
@given(samples=st.lists(st.tuples(images, captions), min_size=1, max_size=8))
def test_any_bytes_in_a_hf_dataset(samples):
    with tempfile.TemporaryDirectory() as tmp:
        path = hf_dataset(Path(tmp) / "hf", [i for i, _ in samples], [c for _, c in samples])
        account_for_all(lambda: load_pairs(path, image_size=8), len(samples))


@settings(max_examples=25, deadline=None)
@given(cut=st.floats(0, 1))
def test_a_shard_cut_anywhere_is_never_silent(cut):
    with tempfile.TemporaryDirectory() as tmp:
        shard = write_tar(Path(tmp) / "a.tar", good(6))
        write_tar(Path(tmp) / "b.tar", good(2, start=6))
        raw = shard.read_bytes()
        shard.write_bytes(raw[:int(cut * len(raw))])
        try:
            pairs = load_pairs(tmp)
        except DataError as e:  # cut inside the first header: not recognisable as a tar
            assert "a.tar is not a tar file" in str(e) and 0 < cut * len(raw) < 512
            return
        from_a = len(pairs) - 2
        assert pairs.captions[from_a:] == ["caption 6", "caption 7"]
        if from_a < 6:  # a lost sample is always accounted for
            assert pairs.skipped in ({"truncated shard": 1}, {"empty shard": 1})


@pytest.mark.parametrize("stream", [False, True])
def test_exif_orientation_is_applied(tmp_path, stream):
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[:8] = (255, 0, 0)  # stored: red on top, blue below
    pixels[8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view", as phones write portrait photos
    jpeg = encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())
    pairs = load_pairs(write_tar(tmp_path / "s.tar", [("0.jpg", jpeg), ("0.txt", b"a turned photo")]),
                       image_size=16, stream=stream)
    viewed = np.asarray(pairs.images[0]).astype(int)
    assert pairs.skipped == {}
    assert (np.abs(viewed[8, 12] - (255, 0, 0)) < 30).all() and (np.abs(viewed[8, 3] - (0, 0, 255)) < 30).all()


@pytest.mark.parametrize("fmt, ext", [("WEBP", "webp"), ("JPEG", "jpg"), ("GIF", "png"), ("BMP", "png"), ("TIFF", "png")])
def test_every_web_image_format_decodes(tmp_path, fmt, ext):
    # CC12M / DataComp shards hold .webp and .jpg; a member's bytes decide the decoder, not its extension
    img = Image.fromarray(np.full((8, 8, 3), 100, np.uint8))
    pairs = load_pairs(write_tar(tmp_path / "s.tar", [(f"0.{ext}", encode(img, fmt)), ("0.txt", b"a grey square")]))
    assert pairs.skipped == {} and abs(int(pairs.images[0].mean()) - 100) <= 2
