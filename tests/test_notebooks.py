"""Run every notebook's tests with nbdev's own test runner, one pytest item per notebook.

`nbdev-test` prints only `Success.`; this wrapper gives the usual `N passed` summary and per-notebook
failures. It uses the `[tool.nbdev]` settings (`tst_flags`, `cell_timeout`), like `nbdev-test`.
"""
import os
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as _run_nb  # aliased so pytest does not collect it

CFG = get_config()
NOTEBOOKS = sorted(p for p in Path(CFG.nbs_path).rglob("*.ipynb")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(CFG.nbs_path).parts))
FLAGS = CFG.tst_flags.split() if isinstance(CFG.tst_flags, str) else list(CFG.tst_flags)
FORCE = os.environ.get("SIU_TEST_FLAGS", "").split()  # e.g. SIU_TEST_FLAGS=slow to run the slow cells too

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook(nb):
    cwd = os.getcwd()
    try: ok, secs = _run_nb(nb, skip_flags=FLAGS, force_flags=FORCE, basepath=CFG.config_path, cell_timeout=CFG.cell_timeout)
    finally: os.chdir(cwd)
    assert ok, f"{nb.name} failed (see the traceback above); run `nbdev-test --path {nb}` to reproduce"
