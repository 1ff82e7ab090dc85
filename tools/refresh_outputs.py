#!/usr/bin/env python
"""Re-execute notebooks in place and save their fresh outputs, then `nbdev-clean` them.

    OMP_NUM_THREADS=1 python tools/refresh_outputs.py nbs/06_loss.ipynb [NB ...]

Runs each notebook once exactly as the tests do (`tools/nbcheck.py`: nbdev's skip rules for the
`[tool.nbdev] tst_flags` cells, `SIU_TEST_FLAGS` to force some of them, `IN_TEST=1`, the notebook's folder as
working directory, the configured cell timeout). Cells that are skipped keep their saved outputs; every cell
that ran gets its fresh outputs. A notebook whose run raises is left untouched (exit status 1).
"""
import os, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")
from nbcheck import run_nb, stale_cells  # noqa: E402
from fastcore.nbio import write_nb  # noqa: E402


def refresh(fn):
    "Re-execute `fn`, write it back with fresh outputs and clean it; True on success"
    run = run_nb(fn)
    if run.error:
        sys.stderr.write(f"{fn}: a cell failed, notebook left unchanged\n{run.error}\n")
        return False
    changed = stale_cells(run)
    write_nb(run.nb, run.path)
    subprocess.run(["nbdev-clean", "--fname", str(run.path)], check=True, cwd=run.path.parent)
    print(f"{fn}: {len(run.ran)} cells run in {run.secs:.1f} s; {len(changed)} had stale text outputs"
          + (f" (cells #{', #'.join(str(s.idx + 1) for s in changed)})" if changed else ""))
    return True


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip()); return 0 if argv else 2
    ok = True
    for fn in argv:
        if not Path(fn).is_file(): sys.stderr.write(f"{fn}: no such notebook\n"); ok = False; continue
        ok = refresh(fn) and ok
    return 0 if ok else 1


if __name__ == "__main__": sys.exit(main())
