"""Run every notebook's tests once, one pytest item per notebook, and check that its saved outputs are not stale.

Each notebook is executed once, with the semantics of nbdev's `test_nb` (`tools/nbcheck.py`): the cells carrying a
`[tool.nbdev] tst_flags` directive (`notest slow cuda`) are skipped unless forced with `SIU_TEST_FLAGS` (e.g.
`SIU_TEST_FLAGS=slow`), `IN_TEST=1`, the notebook's folder as working directory, `cell_timeout` from the config.
`nbdev-test` prints only `Success.`; this wrapper gives the usual `N passed` summary and per-notebook failures.

Then the text outputs of every cell that ran (stdout, text/plain, text/markdown, errors; not stderr, HTML or images)
are compared with the saved ones, durations, addresses and temporary paths masked and numbers compared with a
tolerance. A cell whose output is legitimately random opts out with `#| varies`. `SIU_CHECK_OUTPUTS=0` turns the
comparison off.
"""
import os, sys
from pathlib import Path
import pytest
from nbdev.config import get_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from nbcheck import config_flags, run_nb as _run_nb, stale_cells  # aliased so pytest does not collect it

CFG = get_config()
ROOT = Path(CFG.config_path)
NOTEBOOKS = sorted(p for p in Path(CFG.nbs_path).rglob("*.ipynb")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(CFG.nbs_path).parts))
FLAGS, FORCE = config_flags(CFG)
CHECK_OUTPUTS = os.environ.get("SIU_CHECK_OUTPUTS", "1").strip().lower() not in ("0", "false", "no", "off")
MAX_LISTED = 10


def _rel(p):
    try: return str(Path(p).resolve().relative_to(ROOT.resolve()))
    except ValueError: return str(p)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook(nb):
    cwd = os.getcwd()
    try: run = _run_nb(nb, skip_flags=FLAGS, force_flags=FORCE, cfg=CFG, cell_timeout=CFG.cell_timeout)
    finally: os.chdir(cwd)
    force = f"--flags '{' '.join(FORCE)}' " if FORCE else ""
    if run.error:
        pytest.fail(f"{nb.name} failed:\n{run.error}\n\nreproduce from the repository root with "
                    f"`nbdev-test {force}{_rel(nb)}`", pytrace=False)
    if run.leaks: sys.stderr.write(f"{nb.name}: {run.leaks} leaked task(s) survived cancellation\n")
    if not CHECK_OUTPUTS: return
    stale = stale_cells(run)
    if stale:
        listed = "\n".join("  " + s.describe() for s in stale[:MAX_LISTED])
        more = f"\n  ... and {len(stale) - MAX_LISTED} more" if len(stale) > MAX_LISTED else ""
        env = f"SIU_TEST_FLAGS='{' '.join(FORCE)}' " if FORCE else ""
        pytest.fail(f"{_rel(nb)}: the saved outputs of {len(stale)} cell(s) differ from a fresh run:\n{listed}{more}\n\n"
                    f"refresh them from the repository root with `{env}python tools/refresh_outputs.py {_rel(nb)}` "
                    f"and commit; or mark a cell whose output is legitimately random or timing-dependent `#| varies`; "
                    f"SIU_CHECK_OUTPUTS=0 skips this check", pytrace=False)
