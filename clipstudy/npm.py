"""Files from npm packages, fetched once with `npm pack` and checked against a pinned integrity.

The book serves widget JavaScript from npm (clipstudy.book) and two emoji art styles come from
npm (clipstudy.world.styles): both go through `unpack`. npm's cache serves a refetch offline.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

STAMP = "package.txt"  # in a package's folder: the spec whose files it holds


def folder(spec: str) -> Path:
    """Where `unpack` puts package `spec`: $CLIPSTUDY_CACHE/npm/<spec>, default data/cache/npm."""
    return Path(os.environ.get("CLIPSTUDY_CACHE", "data/cache")) / "npm" / spec.replace("/", "+")


def unpack(spec: str, integrity: str, patterns: list[str], why: str) -> Path:
    """The folder (`folder(spec)`) holding the files of npm package `spec` (e.g. "requirejs@2.3.8")
    that match `patterns` (paths inside the package), flattened to their names; fetched only when
    absent. The tarball must have the pinned `integrity` (sha512, as package-lock.json writes
    it). `why` completes the error when npm is missing: "npm is needed to fetch <why>"."""
    dest = folder(spec)
    stamp = dest / STAMP
    if stamp.is_file() and stamp.read_text().strip() == spec:
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed (once) to fetch {why} ({spec}); install it, e.g. `apt-get install npm`")
    tmp_dest = dest.with_name(f"{dest.name}.tmp")
    shutil.rmtree(tmp_dest, ignore_errors=True)
    tmp_dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([npm, "pack", spec, "--prefer-offline", "--json", "--pack-destination", tmp],
                             check=True, capture_output=True, text=True).stdout
        tgz = Path(tmp) / json.loads(out)[0]["filename"]
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        if digest != integrity:
            raise RuntimeError(f"{spec} from npm has integrity {digest}, not the pinned {integrity}")
        with tarfile.open(tgz) as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("package/")
                if member.isfile() and any(fnmatch.fnmatch(name, p) for p in patterns):
                    (tmp_dest / Path(name).name).write_bytes(tar.extractfile(member).read())
    (tmp_dest / STAMP).write_text(spec + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp_dest.rename(dest)  # a half-fetched package never looks complete
    return dest
