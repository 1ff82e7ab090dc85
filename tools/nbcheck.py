"""Run a notebook once, as `nbdev.test.test_nb` does, and compare its fresh text outputs with the saved ones.

Shared by `tests/test_notebooks.py` (the test, with the stale-output check) and `tools/refresh_outputs.py`
(re-execute and save). The execution reuses nbdev's and execnb's machinery: the notebook is read with
`nbdev.process.NBProcessor` (directives parsed, not removed), cells are skipped by nbdev's own predicate
(`[tool.nbdev] tst_flags`, minus the force flags; `skip_exec` front matter; non-code cells), and run in an
`execnb.shell.CaptureShell` with the notebook's folder as working directory, `IN_TEST=1`, the repository root
on `sys.path` and the per-cell timeout from the config.

What is compared, per executed cell: stdout (all stream chunks joined, `\\r`-overwritten segments dropped),
`text/markdown` (else `text/plain`) of every rich output that has no image, and `ename: evalue` of errors.
stderr (warnings, progress bars), HTML and images are not compared. Volatile parts are masked (durations,
clock times, tqdm rates, memory addresses, temporary paths), and numbers are compared with a tolerance
(rel 2e-2, abs 1e-3: float digits differ across CPU instruction sets). A cell whose output is legitimately
random or timing-dependent opts out with the cell directive `#| varies`.
"""
import os, re, sys, tempfile, time, traceback
from dataclasses import dataclass, field
from pathlib import Path

from fastcore.basics import str2bool
from fastcore.foundation import working_directory
from nbdev.config import get_config
from nbdev.frontmatter import nb_frontmatter
from nbdev.process import NBProcessor, nb_lang
from execnb.shell import CaptureShell

OPT_OUT = "varies"  # `#| varies`: the cell's outputs are not compared
REL_TOL, ABS_TOL = 2e-2, 1e-3

try: from nbdev.test import _skip_cell  # nbdev's own predicate, so the skipped cells are exactly test_nb's
except ImportError:  # pragma: no cover - fall back on the public API if nbdev renames it
    from nbdev.test import nb_test_cells
    def _skip_cell(nb, skip_flags=None, force_flags=None):
        run = {c.idx_ for c in nb_test_cells(nb.path_, skip_flags, force_flags)}
        return lambda cell: cell.idx_ not in run


def config_flags(cfg=None):
    "(skip_flags, force_flags): `[tool.nbdev] tst_flags`, and `SIU_TEST_FLAGS` (e.g. `slow`) to run them anyway"
    cfg = cfg or get_config()
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
    return skip, os.environ.get("SIU_TEST_FLAGS", "").split()


@dataclass
class NbRun:
    "One execution of a notebook: `nb` holds the fresh outputs of the cells that ran, `saved` the outputs read from disk"
    path: Path
    nb: object = None
    saved: dict = field(default_factory=dict)  # cell index -> saved outputs
    ran: list = field(default_factory=list)    # cells executed, in order
    error: str = None                          # pretty traceback if a cell raised
    leaks: int = 0
    secs: float = 0.


def reset_display_state():
    """Undo display settings an earlier notebook in this process changed: pandas' `display.*` options, numpy's and
    torch's print options. All notebooks share one process here (as in one `nbdev-test` worker), and e.g.
    `pd.set_option("display.width", 250)` in one notebook would otherwise change the saved-looking text of the next."""
    pd, np, torch = (sys.modules.get(m) for m in ("pandas", "numpy", "torch"))
    if pd is not None: pd.reset_option(r"^display\.")
    if np is not None:
        np.set_printoptions(edgeitems=3, infstr="inf", linewidth=75, nanstr="nan", precision=8, suppress=False,
                            threshold=1000, formatter=None, sign="-", floatmode="maxprec", legacy=False)
    if torch is not None: torch.set_printoptions(profile="default", sci_mode=None)


def run_nb(fn, skip_flags=None, force_flags=None, cfg=None, cell_timeout=None, profile=None):
    "Execute notebook `fn` once with `nbdev.test.test_nb`'s semantics; returns an `NbRun` (nothing is written)"
    fn = Path(fn).resolve()
    cfg = cfg or get_config(fn.parent)
    if skip_flags is None: skip_flags, force_flags = config_flags(cfg)
    if cell_timeout is None: cell_timeout = cfg.cell_timeout
    if profile is None: profile = bool(cfg.get("exec_profile"))
    basepath = str(cfg.config_path)
    if basepath not in sys.path: sys.path.insert(0, basepath)
    res = NbRun(fn)
    # IN_TEST as under nbdev-test; a fixed terminal size, because pandas sizes its tables to the terminal
    # (`shutil.get_terminal_size`): without it a wide terminal and CI would render different saved outputs.
    env = {"IN_TEST": "1", "COLUMNS": "80", "LINES": "24"}
    prev_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start = time.time()
    try:
        nb = res.nb = NBProcessor(fn, rm_directives=False, process=True).nb
        res.saved = {c.idx_: list(c.get("outputs") or []) for c in nb.cells}
        fm = nb_frontmatter(nb)
        if str2bool(fm.get("skip_exec", False)) or nb_lang(nb) != "python": return res
        skip = _skip_cell(nb, skip_flags, force_flags)
        reset_display_state()
        k = CaptureShell(fn, profile=profile)
        try:
            with working_directory(fn.parent):
                k.run_all(nb, exc_stop=True, preproc=skip, postproc=res.ran.append, cell_timeout=cell_timeout or None)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt): raise
            res.error = k.prettytb(fname=fn) or traceback.format_exc()
        res.leaks = len(getattr(k, "leaks", None) or [])
        if hasattr(k, "close"): k.close()
        return res
    finally:
        res.secs = time.time() - start
        for name, val in prev_env.items():
            if val is None: os.environ.pop(name, None)
            else: os.environ[name] = val


# ---------------------------------------------------------------- output comparison

def _join(x): return "".join(x) if isinstance(x, (list, tuple)) else (x or "")

def _overwrite(line):
    "What a terminal shows for a line containing carriage returns: the last non-empty segment"
    segs = [s for s in line.split("\r") if s.strip()]
    return segs[-1] if segs else ""

def output_lines(outputs):
    "The comparable text of a cell's outputs, as a list of lines: stdout, then rich outputs in order, then errors"
    stdout, rich, errs = [], [], []
    for o in outputs or []:
        t = o.get("output_type")
        if t == "stream":
            if o.get("name") == "stdout": stdout.append(_join(o.get("text")))
        elif t in ("execute_result", "display_data"):
            d = o.get("data") or {}
            if any(k.startswith("image/") for k in d): continue  # a plot (its text/plain is `<Figure ...>`)
            if "text/markdown" in d: rich.append(_join(d["text/markdown"]))
            elif "text/plain" in d: rich.append(_join(d["text/plain"]))
        elif t == "error": errs.append(f"{o.get('ename')}: {o.get('evalue')}")
    lines = [_overwrite(l).rstrip() for l in "".join(stdout).split("\n")]
    for r in rich + errs: lines += [l.rstrip() for l in r.split("\n")]
    while lines and not lines[-1]: lines.pop()
    while lines and not lines[0]: lines.pop(0)
    return lines

_TMPDIRS = sorted({"/tmp", "/var/tmp", "/var/folders", "/private/var/folders", tempfile.gettempdir()}, key=len, reverse=True)
_MASKS = [
    (re.compile(r"\[\d+:\d\d(?::\d\d)?<[^\]]*\]"), "[<elapsed>]"),                                # tqdm [00:01<00:00, 3.2it/s]
    (re.compile(r"\b\d+:\d\d:\d\d(?:\.\d+)?\b|\b\d{1,2}:\d\d\.\d+\b"), "<clock>"),                  # 0:00:01, 01:02.5
    (re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:it/s|s/it|samples/s|steps/s|tokens/s|tok/s)"), "<rate>"),
    (re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?\s?(?:ms|µs|us|ns|s|sec|secs|seconds|min|mins|minutes)\b"), "<duration>"),
    (re.compile(r"0x[0-9a-fA-F]{4,}"), "0x<addr>"),
    (re.compile(r"(\[source\]\([^)#\s]*)#L\d+(?:-L\d+)?"), r"\1#L<line>"),                   # show_doc source links
    (re.compile("(?:" + "|".join(re.escape(d) for d in _TMPDIRS) + r")/[^\s'\"\)\],;]*"), "<tmp>"),
]
_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

def mask(line):
    "`line` with its volatile parts replaced by placeholders"
    for rx, rep in _MASKS: line = rx.sub(rep, line)
    return line

def _close(a, b): return a == b or abs(a - b) <= max(ABS_TOL, REL_TOL * max(abs(a), abs(b)))

def lines_match(saved, fresh):
    "Do two output lines agree once masked, numbers compared with tolerance?"
    s, f = mask(saved), mask(fresh)
    if s == f: return True
    if _NUM.split(s) != _NUM.split(f): return False
    ns, nf = _NUM.findall(s), _NUM.findall(f)
    return len(ns) == len(nf) and all(_close(float(a), float(b)) for a, b in zip(ns, nf))

def first_difference(saved_lines, fresh_lines):
    "None if the outputs agree, else (line number, saved line, fresh line); a missing line is None"
    for i in range(max(len(saved_lines), len(fresh_lines))):
        s = saved_lines[i] if i < len(saved_lines) else None
        f = fresh_lines[i] if i < len(fresh_lines) else None
        if s is None or f is None or not lines_match(s, f): return i, s, f
    return None


@dataclass
class Stale:
    "A cell whose saved outputs no longer match a fresh run"
    idx: int  # 0-based index among all cells; shown 1-based, as nbdev's "While Executing Cell #N"
    cell_id: str
    line: int
    saved: str
    fresh: str
    source: str

    def describe(self, width=160):
        cut = lambda s: "<no output>" if s is None else (repr(s) if len(s) <= width else repr(s[:width]) + "...")
        head = self.source.strip().splitlines()[0][:80] if self.source.strip() else ""
        return (f"cell #{self.idx + 1} (id {self.cell_id}, `{head}`), output line {self.line + 1}:\n"
                f"      saved: {cut(self.saved)}\n      fresh: {cut(self.fresh)}")


def stale_cells(run):
    "The cells of `run` (an `NbRun`) whose comparable outputs differ from the saved ones (opt-out: `#| varies`)"
    res = []
    for c in run.ran:
        if OPT_OUT in (getattr(c, "directives_", None) or {}): continue
        d = first_difference(output_lines(run.saved.get(c.idx_)), output_lines(c.get("outputs")))
        if d: res.append(Stale(c.idx_, c.get("id", "?"), *d, source=c.source))
    return res
