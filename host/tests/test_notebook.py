"""The board notebook (host/notebooks/sqz_board.ipynb) executes end to end against the simulated board (nbclient)."""
import os

import nbformat
from nbclient import NotebookClient

from host.tests.conftest import ROOT


def test_notebook_runs_on_the_simulated_board(folders, monkeypatch):
    monkeypatch.setenv("SQZ_NOTEBOOK_BITSTREAM", str(folders["kv260"]))
    monkeypatch.setenv("SQZ_ROOT", str(ROOT))
    monkeypatch.setenv("SQZ_NOTEBOOK_SIM", "1")
    nb = nbformat.read(ROOT / "host" / "notebooks" / "sqz_board.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "host" / "notebooks")}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "bit-exact" in text and "images_per_s" in text and "manifest" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images == 4
    assert "False" not in text.split("bit-exact", 1)[1].split("frames", 1)[0]
