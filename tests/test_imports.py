"""The import graph runs one way: import-linter's contracts in pyproject.toml (layers, the
EmojiWorld's own layers, no cycles) hold, and a planted upward import breaks them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def lint(package_root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the clipstudy package found first under `package_root`."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=package_root,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    shutil.copytree(ROOT / "clipstudy", tmp_path / "clipstudy", ignore=shutil.ignore_patterns("__pycache__"))
    config = tmp_path / "clipstudy" / "config.py"  # the bottom layer ...
    config.write_text(config.read_text() + "\nfrom clipstudy import study  # noqa: E402  (planted)\n")  # ... importing a chapter module
    result = lint(tmp_path)
    assert result.returncode == 1
    assert "clipstudy.config -> clipstudy.study" in result.stdout and "BROKEN" in result.stdout


def test_a_cycle_in_the_world_breaks_its_contracts(tmp_path):
    shutil.copytree(ROOT / "clipstudy", tmp_path / "clipstudy", ignore=shutil.ignore_patterns("__pycache__"))
    classes = tmp_path / "clipstudy" / "world" / "classes.py"  # the cycle issue 19 cut: classes <-> styles
    classes.write_text(classes.read_text() + "\nfrom clipstudy.world.styles import STYLES  # noqa: E402  (planted)\n")
    result = lint(tmp_path)
    assert result.returncode == 1
    assert "EmojiWorld" in result.stdout and "no import cycles" in result.stdout and "2 broken" in result.stdout
