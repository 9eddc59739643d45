"""Write README.md from nbs/index.ipynb, offline: drop `#| hide` cells and `#|` directives, then nbconvert to markdown.

(nbdev_readme and nbdev_proc_nbs need quarto, which cannot be installed offline.)"""
import sys
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

root = Path(__file__).resolve().parent.parent

def is_hidden(cell) -> bool:
    "A cell nbdev leaves out of the docs."
    return any(line.strip() in ("#| hide", "#|hide") for line in cell.source.splitlines())

def strip_directives(cell):
    "The cell without its `#|` directive lines."
    cell.source = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith("#|")).strip("\n")
    return cell

notebook = nbformat.read(root / "nbs" / "index.ipynb", as_version=4)
notebook.metadata["language_info"] = {"name": "python"}  # fenced code blocks tagged python
notebook.cells = [strip_directives(c) for c in notebook.cells if not is_hidden(c)]
body, _ = MarkdownExporter().from_notebook_node(notebook)
body = body.replace("](images/", "](nbs/images/")
header = "<!-- WARNING: generated from nbs/index.ipynb by `make readme`; do not edit. -->\n\n"
(root / "README.md").write_text(header + body.strip() + "\n", encoding="utf-8")
print("wrote README.md", file=sys.stderr)
