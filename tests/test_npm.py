"""npm packages (widget JavaScript, two art styles): pinned integrity, flattened files, one fetch."""

import base64
import hashlib
import io
import json
import os
import tarfile

import pytest

from clipstudy import npm
from clipstudy.world import styles
from clipstudy.world.classes import load_classes


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """An `npm` on PATH whose `pack` writes a fixed tarball; -> (its integrity, calls file)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {"package/dist/a.js": "A", "package/dist/b.css": "B", "package/README.md": "R"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    tgz = tmp_path / "pkg.tgz"
    tgz.write_bytes(buf.getvalue())
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
while [ "$1" != "--pack-destination" ]; do shift; done
cp {tgz} "$2/pkg-1.0.0.tgz"
echo '[{{"filename": "pkg-1.0.0.tgz"}}]'
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CLIPSTUDY_CACHE", str(tmp_path / "cache"))
    return "sha512-" + base64.b64encode(hashlib.sha512(buf.getvalue()).digest()).decode(), calls


def test_unpack_keeps_matching_files_once(fake_npm):
    integrity, calls = fake_npm
    folder = npm.unpack("pkg@1.0.0", integrity, ["dist/*.js"], "a test")
    assert sorted(p.name for p in folder.iterdir()) == ["a.js", npm.STAMP]
    assert (folder / "a.js").read_text() == "A"
    npm.unpack("pkg@1.0.0", integrity, ["dist/*.js"], "a test")  # already there: npm not called again
    assert len(calls.read_text().splitlines()) == 1


def test_unpack_refuses_a_tarball_of_other_integrity(fake_npm):
    with pytest.raises(RuntimeError, match="not the pinned"):
        npm.unpack("pkg@1.0.0", "sha512-AAAA", ["dist/*.js"], "a test")
    assert not npm.folder("pkg@1.0.0").exists()  # nothing half-fetched looks complete


def test_unpack_without_npm_says_what_needs_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CLIPSTUDY_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="npm is needed .* the 'x' emoji art"):
        npm.unpack("pkg@1.0.0", "sha512-AAAA", ["*"], "the 'x' emoji art")


def test_noto_colour_finds_icons_by_code_points_and_aliases(tmp_path):
    square = '<rect width="10" height="10" fill="#f00"/>'
    (tmp_path / "icons.json").write_text(json.dumps({
        "prefix": "noto", "width": 10, "height": 10, "icons": {"dog": {"body": square}},
        "aliases": {"dog-face": {"parent": "dog"}}}))
    dog = next(c for c in load_classes() if c.name == "dog face")
    heart = next(c for c in load_classes() if c.key.endswith("-fe0f"))
    (tmp_path / "chars.json").write_text(json.dumps({dog.key: "dog-face", heart.key.replace("-fe0f", ""): "dog"}))
    styles._iconify.cache_clear()
    for cls in (dog, heart):  # an alias; a key without the presentation selector
        img = styles._noto_color(tmp_path, cls, 8)
        assert img.size == (16, 16) and img.convert("RGB").getpixel((8, 8)) == (255, 0, 0)
    other = next(c for c in load_classes() if c.key not in (dog.key, heart.key))
    assert styles._noto_color(tmp_path, other, 8) is None
    styles._iconify.cache_clear()
