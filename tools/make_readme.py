"""Render `nbs/index.ipynb` to `README.md` offline (`nbdev-readme` needs Quarto, which is not installable here).

Usage: python tools/make_readme.py          # write README.md
       python tools/make_readme.py --check  # exit 1 if README.md is out of date
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_DIRECTIVE = re.compile(r"^\s*#\|\s*(\S+)")

_IMG = re.compile(r"(!\[[^\]]*\]\()(?!https?://|/)([^)]+\))")

def _src(cell): return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

def _directives(src): return {m.group(1) for line in src.splitlines() if (m := _DIRECTIVE.match(line))}

def _output_md(out):
    if out.get("output_type") == "stream": return "```\n" + "".join(out["text"]).rstrip() + "\n```"
    data = out.get("data", {})
    if "text/markdown" in data: return "".join(data["text/markdown"]).rstrip()
    if "text/plain" in data: return "```\n" + "".join(data["text/plain"]).rstrip() + "\n```"
    return None

def render(nb_path=ROOT / "nbs" / "index.ipynb") -> str:
    "Markdown for the README: markdown cells, shown code cells and their text outputs."
    parts = []
    for cell in json.loads(Path(nb_path).read_text())["cells"]:
        src = _src(cell)
        if cell["cell_type"] == "markdown": parts.append(_IMG.sub(r"\1nbs/\2", src.strip())); continue  # images live in nbs/
        if cell["cell_type"] != "code" or _directives(src) & {"hide", "default_exp", "exporti"}: continue
        code = "\n".join(l for l in src.splitlines() if not _DIRECTIVE.match(l)).strip()
        if code and "echo: false" not in src: parts.append("```python\n" + code + "\n```")
        parts += [md for o in cell.get("outputs", []) if (md := _output_md(o))]
    return "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n" + "\n\n".join(p for p in parts if p) + "\n"

if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py` and commit it.")
        print("README.md is up to date.")
    else:
        readme.write_text(text); print(f"wrote {readme}")
