"""The notebooks (notebooks/C2W2L0*.py, one per lecture of the course's week on optimization
methods, stored as jupytext percent-format scripts) run from top to bottom in a fresh kernel
and each draws its figures inline.

They need the ``notebooks`` extra (``pip install 'gdlab[notebooks]'``: jupytext, nbclient,
ipykernel, ipywidgets); without it the execution tests are skipped, saying so.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("C2W2L*.py"))
LECTURES = ["minibatch_gradient_descent", "understanding_minibatch_gradient_descent",
            "exponentially_weighted_averages", "understanding_exponentially_weighted_averages",
            "bias_correction", "momentum", "rmsprop", "adam", "learning_rate_decay"]
EXTRA = ("jupytext", "nbclient", "ipykernel")
MISSING = [name for name in EXTRA if importlib.util.find_spec(name) is None]


def test_one_notebook_per_lecture():
    assert [p.name for p in NOTEBOOKS] == [f"C2W2L{i:02d}_{name}.py"
                                           for i, name in enumerate(LECTURES, start=1)]
    for path in NOTEBOOKS:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ---\n# jupyter:\n"), path.name  # jupytext's header
        assert "format_name: percent" in text, path.name
        assert re.search(r"^# # C2W2L\d\d — ", text, re.M), path.name  # the lecture's title
        assert "# ## Try this" in text, path.name


@pytest.mark.skipif(bool(MISSING), reason=f"the notebooks extra is not installed (missing "
                    f"{', '.join(MISSING)}): pip install 'gdlab[notebooks]'")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    import jupytext
    import nbclient

    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} draws no figure inline"
