"""A notebook that fails or hangs stops the book run with one line naming the chapter and the cell;
its half-executed copy goes to notebooks/_executed/failed/, never into book/. Two Papermill
executions of tiny synthetic notebooks (~10 s each on 2 cores: the kernel start)."""

import functools

import nbformat
import pytest

from clipstudy import book, cli


@pytest.fixture
def root(tmp_path):
    """A book root with two tiny chapters: one raises in its fourth cell (after a parameters cell,
    which Papermill follows with one more), one hangs in its second."""
    (tmp_path / "notebooks").mkdir()
    parameters = nbformat.v4.new_code_cell('profile = "laptop"', metadata={"tags": ["parameters"]})
    cells = {"01_fails": [nbformat.v4.new_markdown_cell("# Fails"), parameters, nbformat.v4.new_code_cell("x = 1"),
                          nbformat.v4.new_code_cell("\nraise ValueError(f'boom {x}')\n# never mind"),
                          nbformat.v4.new_code_cell("print('not reached')")],
             "02_hangs": [nbformat.v4.new_code_cell("y = 2"), nbformat.v4.new_code_cell("import time; time.sleep(30)")]}
    for name, nb_cells in cells.items():
        nb = nbformat.v4.new_notebook(cells=nb_cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    return tmp_path


def test_failing_cell_is_named_and_its_copy_set_aside(root):
    with pytest.raises(book.NotebookFailed) as failed:
        book.execute("smoke", "no-world", root=root, only=["01_fails"], out_dir=root / "book")
    copy = root / "notebooks" / "_executed" / "failed" / "01_fails.ipynb"
    assert str(failed.value) == (f"notebook 01_fails failed at cell 4 (\"raise ValueError(f'boom {{x}}')\"): "
                                 f"ValueError: boom 1; the half-executed copy is {copy}")
    assert not list((root / "book").iterdir())  # nothing half-executed where the book is built from
    outputs = [o for c in nbformat.read(copy, as_version=4).cells for o in c.get("outputs", [])]
    assert [o["ename"] for o in outputs if o["output_type"] == "error"] == ["ValueError"]
    assert book.notebooks(root) == sorted((root / "notebooks").glob("0*.ipynb"))  # the copy is no chapter


def test_hanging_cell_times_out_and_the_cli_exits_1(root, monkeypatch, capsys):
    monkeypatch.setattr(book, "execute", functools.partial(book.execute, root=root, out_dir=root / "book"))
    code = cli.main(["book", "run", "--profile", "smoke", "--world", "no-world", "--only", "02_hangs",
                     "--timeout", "3", "--no-html"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    copy = root / "notebooks" / "_executed" / "failed" / "02_hangs.ipynb"
    assert code == 1 and lines == [f"python -m clipstudy book: error: notebook 02_hangs failed at cell 2 "
                                   f"('import time; time.sleep(30)'): it ran past the 3 s cell timeout (--timeout); "
                                   f"the half-executed copy is {copy}"], err
    assert copy.is_file() and not list((root / "book").iterdir())
